// A profile (/u/USERNAME): who they are, their stats, and their posts newest first, each a permalink.

import { api } from '../api.js';
import { h } from '../dom.js';
import { formatDate, plural } from '../format.js';
import { avatar, displayName, errorPanel, loading, timeEl, toast } from '../ui.js';
import { failedPanel, moreFailedLabel } from '../failed.js';

const KIND = { question: 'Asked', response: 'Answered', comment: 'Commented on' };

/** The text of a post, shortened, as plain text (never HTML). */
export function excerpt(body, max = 180) {
  const text = (body || '').replace(/\s+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The permalink of a post: its thread, at the post. */
export function permalink(post) {
  return `/t/${post.thread_id}#post-${post.id}`;
}

function postItem(p) {
  return h('li', { class: 'profile-post', dataset: { postId: p.id, kind: p.kind }, 'data-testid': 'profile-post' },
    h('div', { class: 'profile-post-head' },
      h('span', { class: 'profile-kind' }, KIND[p.kind] || p.kind, ' '),
      h('a', { href: permalink(p), 'data-testid': 'profile-post-link', dir: 'auto' },
        p.thread ? p.thread.title : `thread ${p.thread_id}`),
      ' ', timeEl(p.created_at, 'relative'),
      p.score ? h('span', { class: 'meta-score' }, ` · ${plural(p.score, 'vote')}`) : null),
    h('p', { class: 'profile-excerpt' }, excerpt(p.body)));
}

/** A moderator's controls on someone else's profile: suspend, or lift a suspension. */
function moderation(user, ctx) {
  if (!ctx.me || !ctx.me.is_moderator || ctx.me.id === user.id) return null;
  const button = h('button', { type: 'button', class: user.suspended_until ? 'btn' : 'btn btn-danger',
    'data-testid': user.suspended_until ? 'profile-unsuspend' : 'profile-suspend' },
  user.suspended_until ? 'Lift suspension' : 'Suspend');
  button.addEventListener('click', async () => {
    try {
      if (user.suspended_until) {
        await api('PUT', `/api/users/${encodeURIComponent(user.username)}/suspension`, { until: null });
      } else {
        const { suspendDialog } = await import('./flags.js');
        if (!await suspendDialog(user)) return;
      }
      ctx.navigate(`/u/${encodeURIComponent(user.username)}`, { replace: true });
    } catch (e) {
      toast(e.message);
    }
  });
  return h('p', { class: 'profile-actions' }, button);
}

/** A moderator's silence toggle (an auto-silenced member's posts are hidden until it is lifted). */
function silenceControl(user, ctx) {
  if (!ctx.me || !ctx.me.is_moderator || ctx.me.id === user.id || user.is_moderator) return null;
  const button = h('button', { type: 'button', class: user.silenced ? 'btn' : 'btn btn-danger',
    'data-testid': user.silenced ? 'profile-unsilence' : 'profile-silence' },
  user.silenced ? 'Lift silence' : 'Silence');
  button.addEventListener('click', async () => {
    try {
      await api('PUT', `/api/users/${encodeURIComponent(user.username)}/silence`, { silenced: !user.silenced });
      ctx.navigate(`/u/${encodeURIComponent(user.username)}`, { replace: true });
    } catch (e) {
      toast(e.message);
    }
  });
  return button;
}

/** Ignore or stop ignoring a member (never a moderator, never oneself): their posts collapse, no notifications. */
function ignoreControl(user, ctx) {
  if (!ctx.me || ctx.me.id === user.id || user.is_moderator) return null;
  let ignored = Boolean(user.ignored); // the server says whether I ignore them already
  const button = h('button', { type: 'button', class: 'btn', 'aria-pressed': String(ignored),
    'data-testid': 'profile-ignore' }, ignored ? 'Stop ignoring' : 'Ignore');
  button.addEventListener('click', async () => {
    try {
      const r = await api('PUT', `/api/users/${encodeURIComponent(user.username)}/ignored`, { ignored: !ignored });
      ignored = r.ignored;
      button.setAttribute('aria-pressed', String(ignored));
      button.textContent = ignored ? 'Stop ignoring' : 'Ignore';
      toast(ignored ? `You will no longer hear from ${displayName(user)}; their posts are collapsed.`
        : `You will hear from ${displayName(user)} again.`);
    } catch (e) {
      toast(e.message);
    }
  });
  return button;
}

export function renderProfile(main, { username }, ctx) {
  let alive = true;
  ctx.setTitle(username);
  main.append(loading());
  const base = `/api/users/${encodeURIComponent(username)}`;
  const own = ctx.me && ctx.me.username.toLowerCase() === username.toLowerCase();
  Promise.all([api('GET', base), api('GET', `${base}/posts?limit=20`),
    own ? api('GET', '/api/me/bookmarks?limit=50') : null]).then(([{ user }, first, marks]) => {
    if (!alive) return;
    ctx.setTitle(displayName(user));
    const s = user.stats;
    const stat = (n, label, key) => h('div', { class: 'stat', 'data-testid': `stat-${key}` },
      h('dt', null, label), h('dd', null, String(n)));
    const list = h('ol', { class: 'profile-posts', 'data-testid': 'profile-posts' }, (first.posts || []).map(postItem));
    const section = h('section', { class: 'card', 'aria-labelledby': 'profile-posts-title' },
      h('h2', { id: 'profile-posts-title', class: 'card-title' }, 'Questions, responses and comments'),
      first.posts && first.posts.length ? list : h('p', { class: 'empty' }, 'Nothing posted yet.'));
    let next = first.next;
    if (next) {
      const more = h('button', { type: 'button', class: 'btn btn-block more', 'data-testid': 'more-posts' }, 'Show more');
      more.addEventListener('click', async () => {
        more.disabled = true;
        try {
          const d = await api('GET', `${base}/posts?limit=20&before=${encodeURIComponent(next)}`);
          for (const p of d.posts || []) list.append(postItem(p));
          next = d.next;
          if (!next) more.remove();
        } catch (e) {
          more.textContent = moreFailedLabel(e);
        } finally {
          more.disabled = false;
        }
      });
      section.append(more);
    }
    main.replaceChildren(h('div', { class: 'page-profile' },
      h('section', { class: 'profile-head', 'aria-labelledby': 'profile-name' },
        avatar(user, 'lg'),
        h('div', null,
          h('h1', { id: 'profile-name', 'data-testid': 'profile-name', dir: 'auto' }, displayName(user)),
          h('p', { class: 'profile-meta' }, h('span', { dir: 'ltr', 'data-testid': 'profile-username' }, `@${user.username}`),
            user.is_moderator ? h('span', { class: 'badge badge-op' }, 'Moderator') : null,
            ` · joined ${formatDate(user.created_at)}`,
            user.last_seen_at ? [' · last seen ', timeEl(user.last_seen_at, 'relative')] : null),
          user.suspended_until ? h('p', { class: 'profile-suspended', 'data-testid': 'profile-suspended' },
            'Suspended until ', timeEl(user.suspended_until)) : null,
          user.silenced ? h('p', { class: 'profile-suspended', 'data-testid': 'profile-silenced' },
            'Silenced: their posts are hidden until a moderator looks at them.') : null,
          moderation(user, ctx),
          h('p', { class: 'profile-actions' }, silenceControl(user, ctx), ' ', ignoreControl(user, ctx)))),
      h('dl', { class: 'profile-stats', 'aria-label': 'Stats' },
        stat(s.questions, 'Questions', 'questions'), stat(s.responses, 'Responses', 'responses'),
        stat(s.comments, 'Comments', 'comments'), stat(s.accepted, 'Accepted', 'accepted'),
        stat(s.score, 'Score', 'score'), stat(user.reputation, 'Reputation', 'reputation')),
      section,
      marks ? h('section', { class: 'card', 'aria-labelledby': 'profile-bookmarks-title', 'data-testid': 'bookmarks' },
        h('h2', { id: 'profile-bookmarks-title', class: 'card-title' }, 'Bookmarks'),
        marks.posts.length ? h('ol', { class: 'profile-posts' }, marks.posts.map(postItem))
          : h('p', { class: 'empty' }, 'No bookmarks yet: “Bookmark” under a post keeps it here.')) : null));
    ctx.ready();
  }).catch((e) => {
    if (!alive) return;
    ctx.setTitle(e.status === 404 ? 'Not found' : 'Could not load the profile');
    main.replaceChildren(e.status === 404 ? errorPanel('No such user', `There is nobody called ${username} here.`,
      h('a', { class: 'btn btn-primary', href: '/' }, 'Back to the forum'))
      : failedPanel(ctx, 'Could not load the profile', e));
    ctx.ready();
  });
  return () => { alive = false; };
}
