// The review queue (/review, moderators): each flagged post once, in context — its thread, its
// text, every flag with its reason and note, the author's recent posts — with the actions a
// moderator takes from here: delete, lock, suspend the author, then Resolve; or Dismiss.

import { api } from '../api.js';
import { h } from '../dom.js';
import { confirmDialog, errorPanel, isolatedName, loading, openDialog, timeEl, toast, userLink } from '../ui.js';
import { excerpt, permalink } from './profile.js';
import { failedPanel } from '../failed.js';
import { LIMITS } from '../limits.js';

const REASON = { spam: 'Spam', rude: 'Rude or abusive', off_topic: 'Off topic', other: 'Other' };

/** Flags (newest first) grouped by post, in order of each post's newest flag. */
export function groupByPost(flags) {
  const groups = new Map();
  for (const f of flags) {
    if (!groups.has(f.post_id)) groups.set(f.post_id, []);
    groups.get(f.post_id).push(f);
  }
  return [...groups.entries()].map(([postId, list]) => ({ postId, flags: list }));
}

function suspendForm(author, onDone) {
  const id = `suspend-${author.id}`;
  const days = h('select', { id: `${id}-days`, name: 'days' },
    [1, 3, 7, 30, 365].map((d) => h('option', { value: String(d) }, d === 1 ? '1 day' : `${d} days`)));
  const reason = h('input', { id: `${id}-reason`, name: 'reason', maxlength: LIMITS.note_max, autocomplete: 'off' });
  const msg = h('p', { class: 'form-msg', 'aria-live': 'polite' });
  const form = h('form', { class: 'stack', 'data-testid': 'suspend-form' },
    h('label', { for: days.id }, 'Suspend for'), days,
    h('label', { for: reason.id }, 'Reason (public, in the moderation log)'), reason, msg,
    h('div', { class: 'dialog-actions' }, h('button', { type: 'submit', class: 'btn btn-danger' }, 'Suspend')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const until = new Date(Date.now() + Number(days.value) * 86400e3).toISOString();
    try {
      await api('PUT', `/api/users/${encodeURIComponent(author.username)}/suspension`,
        { until, reason: reason.value.trim() || null });
      onDone();
    } catch (err) {
      msg.textContent = err.message;
    }
  });
  return form;
}

/** Ask for a suspension of `author` in a dialog; resolves true once it is in place. */
export function suspendDialog(author) {
  return new Promise((resolve) => {
    let done = false;
    const dlg = openDialog(`Suspend ${isolatedName(author)}`, suspendForm(author, () => { done = true; dlg.close(); }),
      'suspend-dialog');
    dlg.addEventListener('close', () => resolve(done));
  });
}

function queueItem(group, ctx, onSettled) {
  const item = h('li', { class: 'card review-item', 'data-testid': 'review-item', dataset: { postId: group.postId } },
    loading());
  const settle = async (status) => {
    await api('PUT', `/api/flags/${group.flags[0].id}`, { status });
    item.remove();
    onSettled();
  };
  Promise.all([api('GET', `/api/posts/${group.postId}`), Promise.resolve(group.flags)]).then(async ([{ post, thread }]) => {
    let history = [];
    try {
      history = (await api('GET', `/api/users/${encodeURIComponent(post.author.username)}/posts?limit=3`)).posts || [];
    } catch { /* the queue works without it */ }
    const act = (label, testid, fn, cls = 'btn') => {
      const b = h('button', { type: 'button', class: cls, 'data-testid': testid }, label);
      b.addEventListener('click', async () => {
        b.disabled = true;
        try { await fn(); } catch (err) { toast(err.message); } finally { b.disabled = false; }
      });
      return b;
    };
    item.replaceChildren(
      h('h2', { class: 'review-title' }, h('a', { href: permalink(post), dir: 'auto' }, thread.title)),
      h('p', { class: 'review-meta' }, post.kind, ' by ', userLink(post.author), ' · ', timeEl(post.created_at, 'relative'),
        post.deleted ? h('span', { class: 'badge' }, 'deleted') : null),
      post.deleted ? '' : h('blockquote', { class: 'review-body', 'data-testid': 'review-body' }, excerpt(post.body, 600)),
      h('h3', null, `${group.flags.length} flag${group.flags.length === 1 ? '' : 's'}`),
      h('ul', { class: 'review-flags' }, group.flags.map((f) => h('li', { 'data-testid': 'review-flag' },
        h('strong', null, REASON[f.reason] || f.reason), ' from ', userLink(f.flagger), ' · ',
        timeEl(f.created_at, 'relative'), f.note ? h('span', { class: 'review-note' }, ` — “${f.note}”`) : null))),
      history.length ? h('details', null, h('summary', null, `Recent posts by ${isolatedName(post.author)}`),
        h('ul', null, history.map((p) => h('li', null, h('a', { href: permalink(p) }, excerpt(p.body, 120)))))) : null,
      h('div', { class: 'review-actions' },
        post.deleted ? null : act('Delete post', 'review-delete', async () => {
          if (!await confirmDialog('Delete this post?', 'It keeps its place, its text is gone for everyone.')) return;
          await api('DELETE', `/api/posts/${post.id}`);
          await settle('resolved');
        }, 'btn btn-danger'),
        thread.locked ? null : act('Lock thread', 'review-lock', async () => {
          await api('PATCH', `/api/threads/${thread.id}`, { locked: true });
          await settle('resolved');
        }),
        post.author.id === (ctx.me && ctx.me.id) ? null : act('Suspend author', 'review-suspend', async () => {
          if (await suspendDialog(post.author)) await settle('resolved');
        }),
        act('Resolve', 'review-resolve', () => settle('resolved'), 'btn btn-primary'),
        act('Dismiss', 'review-dismiss', () => settle('dismissed'))));
  }).catch((e) => {
    item.replaceChildren(h('p', null, `Post ${group.postId}: ${e.message}`),
      h('button', { type: 'button', class: 'btn', onclick: () => settle('dismissed').catch((err) => toast(err.message)) },
        'Dismiss'));
  });
  return item;
}

export function renderFlags(main, params, ctx) {
  let alive = true;
  ctx.setTitle('Review queue');
  if (!ctx.me || !ctx.me.is_moderator) {
    main.replaceChildren(errorPanel('Review queue', 'Only moderators can see the review queue.',
      h('a', { class: 'btn btn-primary', href: '/modlog' }, 'See the public moderation log')));
    return () => {};
  }
  main.append(loading());
  const load = () => api('GET', '/api/flags?status=open&limit=100').then((d) => {
    if (!alive) return;
    const groups = groupByPost(d.flags);
    const count = h('p', { class: 'muted', 'data-testid': 'review-count', 'aria-live': 'polite' });
    const list = h('ol', { class: 'review-list', 'data-testid': 'review-list' });
    const update = () => {
      const n = list.children.length;
      count.textContent = n ? `${n} post${n === 1 ? '' : 's'} to review` : 'Nothing to review. Thank you!';
    };
    for (const g of groups) list.append(queueItem(g, ctx, update));
    update();
    main.replaceChildren(h('section', { 'aria-labelledby': 'review-title' },
      h('h1', { id: 'review-title' }, 'Review queue'), count, list,
      h('p', null, h('a', { href: '/modlog' }, 'The public moderation log'))));
    if (ctx.ready) ctx.ready();
  }).catch((e) => {
    if (alive) main.replaceChildren(failedPanel(ctx, 'Could not load the review queue', e));
  });
  load();
  return () => { alive = false; };
}

/** The "Flag" action of a post: a dialog with the reasons, keyboard-usable. */
export function flagDialog(post) {
  const name = `flag-reason-${post.id}`;
  const radios = Object.entries(REASON).map(([value, label], i) => {
    const id = `${name}-${value}`;
    return h('div', { class: 'radio' },
      h('input', { type: 'radio', name, id, value, checked: i === 0 ? true : null }),
      h('label', { for: id }, label));
  });
  const note = h('textarea', { id: `${name}-note`, maxlength: LIMITS.note_max, rows: '3' });
  const msg = h('p', { class: 'form-msg', 'aria-live': 'polite', 'data-testid': 'flag-error' });
  const form = h('form', { class: 'stack', 'data-testid': 'flag-form' },
    h('fieldset', null, h('legend', null, 'Why should a moderator look at this?'), radios),
    h('label', { for: note.id }, 'Anything else (optional)'), note, msg,
    h('div', { class: 'dialog-actions' }, h('button', { type: 'submit', class: 'btn btn-primary',
      'data-testid': 'flag-submit' }, 'Flag for moderators')));
  const dlg = openDialog('Flag this post', form, 'flag-dialog');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const reason = form.querySelector(`input[name="${name}"]:checked`).value;
    try {
      await api('POST', `/api/posts/${post.id}/flags`, { reason, note: note.value.trim() || null });
      dlg.close();
      toast('Thanks — a moderator will take a look.');
    } catch (err) {
      msg.textContent = err.code === 'already_flagged' ? 'You have already flagged this post.' : err.message;
    }
  });
  return dlg;
}
