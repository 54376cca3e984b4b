// The thread's composers: the response box at the bottom (or the sign-in
// call for guests) and the "Add a comment…" box under each response.

import { postReply } from '../../api.js';
import { markdownTools, wireComposer } from '../../composer.js';
import { imageUploads } from '../../uploads.js';
import { h, icon } from '../../dom.js';
import { formMessage } from '../../ui.js';
import { enterPosts, lengthGuard } from '../../composing.js';
import { LIMITS } from '../../limits.js';

const HINT = 'Markdown works: **bold**, _italic_, `code`, [links](https://example.com). Ctrl+B, I, E, K format; Ctrl+Enter posts.';

export function draftKey(threadId, suffix) { return `parley:draft:t:${threadId}:${suffix}`; }

/** The response box (or, for a guest, the invitation to sign in). */
export function buildReply(view) {
  if (!view.me) {
    const next = encodeURIComponent(`${location.pathname}#reply`); // back at the reply box (permalink.js)
    return h('section', { class: 'reply-box card reply-guest', 'aria-label': 'Respond' },
      h('p', null, 'Know the answer or have something to add?'),
      h('div', { class: 'welcome-actions' },
        h('a', { class: 'btn btn-primary', href: `/signin?next=${next}`, 'data-testid': 'reply-signin' }, 'Sign in to respond'),
        h('a', { class: 'btn', href: `/signup?next=${next}` }, 'Create an account')));
  }
  const ta = h('textarea', { id: 'reply-body', name: 'body', rows: '5', maxlength: LIMITS.body_max, 'data-testid': 'reply-input',
    dir: 'auto', placeholder: 'Write a helpful response…' });
  const msg = formMessage();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'reply-submit' }, 'Post response');
  const tools = markdownTools(ta, 'your response');
  const form = h('form', { class: 'reply-form', novalidate: true, 'data-testid': 'reply-form' },
    h('label', { for: 'reply-body', class: 'reply-label' }, 'Your response'),
    tools.bar, ta, tools.preview, h('p', { class: 'hint' }, HINT),
    msg, h('div', { class: 'form-actions' }, submit));
  wire(view, form, ta, submit, msg, null, 'reply', tools.reset);
  lengthGuard(ta, form);
  return h('section', { class: 'reply-box card', 'aria-label': 'Respond' }, form,
    h('p', { class: 'locked-note' }, icon('lock', 'icon icon-sm'), 'This thread is locked. New responses and comments are closed.'));
}

/** The comment box under a response (none for guests). */
export function buildCommentForm(view, responseId) {
  if (!view.me) return null;
  const id = `comment-${responseId}`;
  const ta = h('textarea', { id, class: 'comment-input', rows: '1', maxlength: LIMITS.body_max, 'data-testid': 'comment-input',
    dir: 'auto', placeholder: 'Add a comment… (Enter posts, Shift+Enter: new line)', 'aria-label': 'Add a comment' });
  const msg = formMessage();
  const submit = h('button', { type: 'submit', class: 'btn btn-sm', 'data-testid': 'comment-submit' }, 'Comment');
  // Images may be pasted or dropped here too (no toolbar in a comment box: ../../uploads.js).
  const uploads = imageUploads(ta, (el) => { el.dispatchEvent(new Event('input', { bubbles: true })); el.focus(); });
  const form = h('form', { class: 'comment-form', novalidate: true, 'data-testid': 'comment-box' },
    h('div', { class: 'comment-row' }, ta, submit), uploads.list, msg);
  lengthGuard(ta, form);
  enterPosts(ta, form);
  wire(view, form, ta, submit, msg, responseId, `c:${responseId}`);
  return form;
}

function wire(view, form, ta, submit, msg, parentId, suffix, reset = () => {}) {
  wireComposer({
    form, ta, submit, msg,
    draftKey: draftKey(view.id, suffix),
    serverKey: parentId ? `comment:${parentId}` : `thread:${view.id}`,
    emptyText: parentId ? 'Write a comment first.' : 'Write a response first.',
    queuedText: `You're offline: your ${parentId ? 'comment' : 'response'} is kept here and will be posted once `
      + 'the connection is back.',
    send: (text, key) => postReply(view.id, text, parentId, key),
    onInput: (text) => { if (text.trim()) view.typed(parentId); },
    onPosted: (post) => { reset(); view.posted(post); },
    onSignedOut: () => view.ctx.sessionEnded(),
  });
}
