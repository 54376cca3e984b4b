// The public moderation log (/modlog): what moderators did to other people's content, newest
// first. Entries name their target and link to it; they never show deleted text.

import { api } from '../api.js';
import { h } from '../dom.js';
import { errorPanel, loading, timeEl, userLink } from '../ui.js';

const ACTION = {
  'post.edited': 'edited a post',
  'post.deleted': 'deleted a post',
  'thread.renamed': 'renamed a thread',
  'thread.locked': 'locked a thread',
  'thread.unlocked': 'unlocked a thread',
  'thread.moved': 'moved a thread',
  'thread.accepted': 'accepted an answer',
  'user.suspended': 'suspended',
  'user.unsuspended': 'lifted the suspension of',
  'flag.resolved': 'resolved a flag',
  'flag.dismissed': 'dismissed a flag',
};

/** Where an entry points: the post in its thread, the thread, or the member. */
function target(t) {
  const parts = [];
  if (t.thread_id) {
    const href = t.post_id ? `/t/${t.thread_id}#post-${t.post_id}` : `/t/${t.thread_id}`;
    parts.push(h('a', { href, 'data-testid': 'modlog-target' }, t.post_id ? `post ${t.post_id} in thread ${t.thread_id}`
      : `thread ${t.thread_id}`));
  }
  if (t.username) {
    if (parts.length) parts.push(' by ');
    parts.push(userLink({ username: t.username, display_name: `@${t.username}` }));
  }
  return parts;
}

function entryItem(e) {
  return h('li', { class: 'modlog-entry', 'data-testid': 'modlog-entry', dataset: { action: e.action } },
    h('p', null, userLink(e.moderator), ' ', ACTION[e.action] || e.action, ' ', target(e.target), ' · ',
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
          more.textContent = `Show more (${err.message})`;
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
    main.replaceChildren(errorPanel('Could not load the moderation log', e.message));
  });
  return () => { alive = false; };
}
