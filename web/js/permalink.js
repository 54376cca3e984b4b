// Permalinks on the thread page (/t/ID#post-PID): once the post is on the page, scroll to it and
// highlight it. A post that is not on the loaded page, or was deleted, is said so in a toast.

import { api } from './api.js';
import { toast } from './ui.js';

const WAIT_MS = 4000;

/** Watch `main` for the post named by location.hash; returns a function that stops watching. */
export function followPermalink(main) {
  if (location.hash === '#reply') return followReplyBox(main);
  const m = location.hash.match(/^#post-(\d+)$/);
  if (!m) return () => {};
  const id = m[1];
  let done = false;
  const found = () => {
    const el = main.querySelector(`[data-post-id="${id}"]`);
    if (!el) return false;
    done = true;
    observer.disconnect();
    el.classList.add('is-permalinked');
    el.dataset.permalinked = '1';
    el.scrollIntoView({ block: 'center' });
    el.focus({ preventScroll: true });
    return true;
  };
  const observer = new MutationObserver(() => { if (!done) found(); });
  observer.observe(main, { childList: true, subtree: true });
  found();
  const timer = setTimeout(async () => {
    if (done) return;
    observer.disconnect();
    try {
      const d = await api('GET', `/api/posts/${id}`);
      toast(d.post.deleted ? 'That post was deleted.' : 'That post is further down the thread: use “Show more”.');
    } catch {
      toast('That post no longer exists.');
    }
  }, WAIT_MS);
  return () => { done = true; observer.disconnect(); clearTimeout(timer); };
}

/** /t/ID#reply (where "Sign in to respond" comes back to): once the reply box is there, put the reader in it. */
function followReplyBox(main) {
  let done = false;
  const found = () => {
    const ta = main.querySelector('#reply-body');
    if (!ta) return false;
    done = true;
    observer.disconnect();
    ta.scrollIntoView({ block: 'center' });
    ta.focus({ preventScroll: true });
    return true;
  };
  const observer = new MutationObserver(() => { if (!done) found(); });
  observer.observe(main, { childList: true, subtree: true });
  found();
  const timer = setTimeout(() => { done = true; observer.disconnect(); }, WAIT_MS);
  return () => { done = true; observer.disconnect(); clearTimeout(timer); };
}
