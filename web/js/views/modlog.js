// The public moderation log (/modlog): what moderators did to other people's content, newest
// first. Entries name their target and link to it; they never show deleted text.

import { api } from '../api.js';
import { h } from '../dom.js';
import { loading, timeEl, userLink } from '../ui.js';
import { failedPanel, moreFailedLabel } from '../failed.js';

const ACTION = {
  'post.edited': 'edited',
  'post.deleted': 'deleted',
  'thread.renamed': 'renamed',
  'thread.locked': 'locked',
  'thread.unlocked': 'unlocked',
  'thread.moved': 'moved',
  'thread.accepted': 'accepted an answer in',
  'user.suspended': 'suspended',
  'user.unsuspended': 'lifted the suspension of',
  'flag.resolved': 'resolved a flag on',
  'flag.dismissed': 'dismissed a flag on',
  'user.silenced': 'silenced',
  'user.unsilenced': 'lifted the silence of',
};

// Thread titles for the entries (the log names threads by id): read once per thread, a few at a time.
const titles = new Map(); // thread id -> Promise<title|null> (null: the thread is gone)
const TITLE_READS = 4;
let reading = 0;
const waiting = [];

function titleOf(id) {
  if (!titles.has(id)) {
    titles.set(id, new Promise((resolve) => { waiting.push([id, resolve]); pump(); }));
  }
  return titles.get(id);
}

function pump() {
  while (reading < TITLE_READS && waiting.length) {
    const [id, resolve] = waiting.shift();
    reading += 1;
    api('GET', `/api/threads/${id}?limit=1`).then((d) => resolve(d.thread.title), (e) => {
      if (e.status !== 404) titles.delete(id); // try again next time
      resolve(null);
    }).finally(() => { reading -= 1; pump(); });
  }
}

/** Where an entry points: the post in its thread (by title), the thread, or the member. */
function target(t) {
  const parts = [];
  if (t.thread_id) {
    const href = t.post_id ? `/t/${t.thread_id}#post-${t.post_id}` : `/t/${t.thread_id}`;
    const name = h('span', { dir: 'auto', class: 'modlog-title' }, `thread ${t.thread_id}`);
    const link = h('a', { href, 'data-testid': 'modlog-target' }, t.post_id ? ['a post in ', name] : name);
    titleOf(t.thread_id).then((title) => {
      if (title) name.textContent = title;
      else name.textContent = 'a thread that was deleted';
    });
    parts.push(link);
  }
  if (t.username) {
    if (parts.length) parts.push(' by ');
    parts.push(userLink({ username: t.username, display_name: `@${t.username}` }));
  }
  return parts;
}

function entryItem(e) {
  return h('li', { class: 'modlog-entry', 'data-testid': 'modlog-entry', dataset: { action: e.action } },
    h('p', null, e.moderator ? userLink(e.moderator) : 'Parley (three members flagged spam)', ' ',
      ACTION[e.action] || e.action, ' ', target(e.target), ' · ',
      timeEl(e.created_at, 'relative')),
    e.reason ? h('p', { class: 'modlog-reason' }, 'Reason: ', e.reason) : null);
}

export function renderModlog(main, params, ctx) {
  let alive = true;
  ctx.setTitle('Moderation log');
  main.append(loading());
  api('GET', '/api/modlog?limit=50').then((first) => {
    if (!alive) return;
    const list = h('ol', { class: 'modlog', 'data-testid': 'modlog' }, first.entries.map(entryItem));
    const section = h('section', { class: 'card', 'aria-labelledby': 'modlog-title' },
      h('h1', { id: 'modlog-title', class: 'card-title' }, 'Moderation log'),
      h('p', { class: 'muted' }, 'Every action a moderator takes on someone else\'s post, thread or account, '
        + 'newest first. Deleted text is never shown here.'),
      first.entries.length ? list : h('p', { class: 'empty' }, 'Nothing has been moderated yet.'));
    let next = first.next;
    if (next) {
      const more = h('button', { type: 'button', class: 'btn btn-block more', 'data-testid': 'more-modlog' }, 'Show more');
      more.addEventListener('click', async () => {
        more.disabled = true;
        try {
          const d = await api('GET', `/api/modlog?limit=50&before=${encodeURIComponent(next)}`);
          for (const e of d.entries) list.append(entryItem(e));
          next = d.next;
          if (!next) more.remove();
        } catch (err) {
          more.textContent = moreFailedLabel(err);
        } finally {
          more.disabled = false;
        }
      });
      section.append(more);
    }
    main.replaceChildren(section);
    if (ctx.ready) ctx.ready();
  }).catch((e) => {
    if (!alive) return;
    main.replaceChildren(failedPanel(ctx, 'Could not load the moderation log', e));
  });
  return () => { alive = false; };
}
