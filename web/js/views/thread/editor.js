// Editing a post in place (and the thread title, for its author or a
// moderator), with edit conflicts: a live edit by someone else is announced
// in the open editor, and a 409 on save shows their version and keeps ours.

import { api, ApiError } from '../../api.js';
import { markdownTools } from '../../composer.js';
import { findPost, mergePost, updatePost } from '../../apply.js';
import { h, setPostHtml } from '../../dom.js';
import { lengthGuard } from '../../composing.js';
import { fieldError, isolatedName, formMessage, showFormMessage, submitOnCtrlEnter } from '../../ui.js';
import { LIMITS } from '../../limits.js';
import { draftSlot } from '../../drafts.js';

export function openEditor(view, id, text = null, baseRevision = null) {
  const r = view.refs.get(id);
  const found = findPost(view.state, id);
  if (!r || !found) return;
  if (view.editors.has(id)) { view.editors.get(id).ta.focus(); return; }
  const post = found.post;
  const isQuestion = post.kind === 'question';
  const taId = `edit-${id}`;
  const ta = h('textarea', { id: taId, class: 'editor-input', rows: post.kind === 'comment' ? '2' : '7',
    maxlength: LIMITS.body_max, 'data-testid': 'edit-input', dir: 'auto' });
  // An edit left unsaved here or on another device comes back (drafts.js: key edit:ID).
  const draft = draftSlot(`parley:draft:edit:${id}`, view.me ? `edit:${id}` : null);
  const restored = text === null && draft.get() && draft.get() !== post.body ? draft.get() : null;
  ta.value = text ?? restored ?? post.body;
  ta.addEventListener('input', () => draft.set(ta.value === post.body ? '' : ta.value));
  let titleInput = null;
  const me = view.me;
  if (isQuestion && me && (me.is_moderator || (post.author && post.author.id === me.id))) {
    titleInput = h('input', { id: `edit-title-${id}`, name: 'title', type: 'text', maxlength: LIMITS.title_max,
      'data-testid': 'edit-title', dir: 'auto', value: view.state.thread.title });
  }
  const msg = formMessage();
  const tools = markdownTools(ta, 'the edit');
  const save = h('button', { type: 'submit', class: 'btn btn-primary btn-sm', 'data-testid': 'edit-save' }, 'Save changes');
  const cancel = h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'edit-cancel' }, 'Cancel');
  const form = h('form', { class: 'editor', novalidate: true, 'data-testid': 'editor' },
    titleInput ? [h('label', { for: titleInput.id }, 'Title'), titleInput] : null,
    h('label', { for: taId, class: titleInput ? '' : 'sr-only' }, 'Edit post'), tools.bar, ta, tools.preview, msg,
    h('div', { class: 'form-actions' }, cancel, save));
  const ed = { form, ta, titleInput, msg, save, draft, baseRevision: baseRevision ?? post.revision };
  if (restored) showFormMessage(msg, 'Your unsaved edit is back. Save it, or Cancel to throw it away.', 'info');
  view.editors.set(id, ed);
  const cancelled = () => { draft.discard(); closeEditor(view, id); };
  cancel.addEventListener('click', cancelled);
  form.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.preventDefault(); cancelled(); } });
  // No typing notice here: "is replying…" is for new responses and comments, not edits.
  submitOnCtrlEnter(ta, form);
  lengthGuard(ta, form);
  form.addEventListener('submit', (e) => { e.preventDefault(); saveEdit(view, id); });
  r.body.hidden = true;
  r.actions.hidden = true;
  r.editorSlot.replaceChildren(form);
  // Open at the top of the text (a long post's caret would otherwise land, and scroll, at the end).
  ta.setSelectionRange(0, 0);
  ta.focus({ preventScroll: true });
  ta.scrollTop = 0;
  form.scrollIntoView({ block: 'nearest' });
}

export function closeEditor(view, id) {
  const r = view.refs.get(id);
  view.editors.delete(id);
  if (!r) return;
  r.editorSlot.replaceChildren();
  r.body.hidden = false;
  r.body.classList.remove('is-conflict');
  view.refreshPost(id);
  const edit = r.actions.querySelector('[data-testid="edit"]');
  if (edit) edit.focus();
}

/** A live edit by someone else while our editor is open. */
export function editedUnderEditor(view, id) {
  const ed = view.editors.get(id);
  if (!ed) return;
  const post = findPost(view.state, id).post;
  showFormMessage(ed.msg,
    `${isolatedName(post.edited_by)} just edited this post. Saving will ask you to review their version first.`, 'info');
}

async function saveEdit(view, id) {
  const ed = view.editors.get(id);
  if (!ed) return;
  const text = ed.ta.value;
  if (!text.trim()) { showFormMessage(ed.msg, "A post can't be empty."); ed.ta.focus(); return; }
  if (ed.titleInput) fieldError(ed.titleInput, '');
  showFormMessage(ed.msg, '');
  ed.save.disabled = true;
  ed.draft.hold();
  try {
    if (ed.titleInput && ed.titleInput.value.trim() !== view.state.thread.title) {
      if (!ed.titleInput.value.trim()) throw new ApiError(422, 'invalid', 'The title cannot be empty.', 'title');
      const d = await api('PATCH', `/api/threads/${view.id}`, { title: ed.titleInput.value });
      view.state = { ...view.state, thread: { ...view.state.thread, ...d.thread, seq: view.state.thread.seq } };
      view.renderThreadHead();
    }
    const current = findPost(view.state, id);
    if (current && text.trim() !== (current.post.body || '').trim()) {
      const d = await api('PATCH', `/api/posts/${id}`, { body: text, revision: ed.baseRevision });
      view.state = updatePost(view.state, id, (p) => ((d.post.revision || 0) >= (p.revision || 0) ? mergePost(p, d.post) : p));
    }
    ed.draft.clear(); // the edit that succeeded deleted its draft on the server
    closeEditor(view, id);
    view.ctx.announce('Your changes were saved.');
  } catch (e) {
    ed.draft.set(text === (findPost(view.state, id) || { post: {} }).post.body ? '' : text); // not saved: keep it
    if (e.status === 409 && !/lock/i.test(e.code)) {
      await staleEdit(view, id, ed);
    } else if (e.field === 'title' && ed.titleInput) {
      fieldError(ed.titleInput, e.message);
      ed.titleInput.focus();
    } else {
      showFormMessage(ed.msg, e.message);
      ed.ta.focus();
    }
  } finally {
    ed.save.disabled = false;
  }
}

/** 409 on save: show the latest version above the editor, keep the typed text, rebase on it. */
async function staleEdit(view, id, ed) {
  let latest = null;
  try {
    const d = await api('GET', `/api/posts/${id}/revisions`);
    latest = (d.revisions || [])[d.revisions.length - 1] || null;
  } catch { /* keep the old base; the message still explains */ }
  const r = view.refs.get(id);
  if (latest) {
    ed.baseRevision = latest.revision;
    if (r) setPostHtml(r.body, latest.html);
  }
  if (r) { r.body.hidden = false; r.body.classList.add('is-conflict'); }
  const who = latest && latest.edited_by ? isolatedName(latest.edited_by) : 'Someone else';
  showFormMessage(ed.msg, `${who} edited this post while you were writing. Their version is shown above; `
    + 'your text is kept here. Save again to replace theirs.');
  ed.ta.focus();
}
