// Composers: drafts kept on the server and in sessionStorage (./drafts.js: they follow the person to their
// other tabs and devices, and survive reloads and sign-outs),
// Ctrl+Enter to post, and a submit that keeps the text on any error and reuses
// its Idempotency-Key on a retry of the same text. Used by the thread's reply
// and comment boxes and by the category's "Ask a question" form.

import { api, ApiError, newIdempotencyKey } from './api.js';
import { h, setPostHtml } from './dom.js';
import { showFormMessage, submitOnCtrlEnter } from './ui.js';
import { imageUploads } from './uploads.js';
import { draftSlot } from './drafts.js';

/** A draft of several fields stored as one JSON text: get() → object, set(obj), clear(), watch(fn(obj)). */
export function draftFields(key, serverKey = null) {
  const slot = draftSlot(key, serverKey);
  const parse = (text) => { try { return JSON.parse(text || '{}') || {}; } catch { return {}; } };
  return {
    get() { return parse(slot.get()); },
    set(fields) { slot.set(Object.values(fields).some(Boolean) ? JSON.stringify(fields) : ''); },
    clear: slot.clear,
    hold: slot.hold,
    onStatus: slot.onStatus,
    watch: (fn) => slot.watch((text) => fn(parse(text))),
  };
}

/**
 * Wire a one-textarea composer.
 * opts: {form, ta, submit, msg, draftKey, serverKey (ask, thread:ID, comment:ID), emptyText,
 *        send(text, key) → Promise<post>, onInput(text)?, onPosted(post),
 *        onSignedOut()? (a 401: the session ended; the draft stays), queuedText? (said while it waits offline)}
 */
export function wireComposer({ form, ta, submit, msg, draftKey, serverKey = null, emptyText, send, onInput, onPosted,
  onSignedOut, queuedText = "You're offline: this is kept with its place in line and sent once the connection is back." }) {
  const slot = draftSlot(draftKey, serverKey);
  ta.value = slot.get();
  draftStatus(form, slot, () => ta.value);
  // Typed in another tab or on another device (or sent there: empty), and nothing unsaved here.
  slot.watch((text) => { if (ta.value !== text) ta.value = text; });
  ta.addEventListener('input', () => {
    slot.set(ta.value);
    if (onInput) onInput(ta.value);
  });
  submitOnCtrlEnter(ta, form);
  let attempt = null; // {key, text}: a retry of the same text reuses its Idempotency-Key
  const label = submit.textContent;
  // Offline (or Parley unreachable) when sent: the post waits here with its key, and goes once by itself when
  // the browser or the live connection is back; the same key makes it one post even if the first try landed.
  let queued = false;
  const resend = () => {
    if (!queued) return;
    queued = false;
    window.removeEventListener('online', resend);
    window.removeEventListener('parley:back', resend);
    if (form.isConnected && attempt && ta.value === attempt.text) form.requestSubmit();
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = ta.value;
    if (!text.trim()) {
      showFormMessage(msg, emptyText);
      ta.focus();
      return;
    }
    if (!attempt || attempt.text !== text) attempt = { key: newIdempotencyKey(), text };
    showFormMessage(msg, '');
    submit.disabled = true;
    submit.textContent = 'Posting…';
    slot.hold();
    try {
      const d = await send(text, attempt.key);
      attempt = null;
      if (ta.value === text) ta.value = '';
      slot.clear();
      onPosted(d.post);
    } catch (err) {
      slot.set(ta.value); // not sent: keep saving it
      if (err instanceof ApiError && err.status === 0 && attempt) {
        queued = true;
        window.addEventListener('online', resend);
        window.addEventListener('parley:back', resend);
        showFormMessage(msg, queuedText, 'info');
        return;
      }
      if (!(err instanceof ApiError) || !err.retryable) attempt = null;
      if (err.status === 401 && onSignedOut) { onSignedOut(); return; }
      showFormMessage(msg, err.message);
      ta.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = label;
    }
  });
}

const DRAFT_TEXT = {
  saving: 'Saving draft…',
  saved: 'Draft saved',
  unsaved: "Draft not saved yet: it is kept in this tab and saved once Parley can be reached.",
};

/** A quiet line in the form saying whether the draft is on the server (not a live region: it changes as one types). */
export function draftStatus(form, slot, text) {
  const el = h('p', { class: 'draft-status hint', 'data-testid': 'draft-status' });
  form.append(el);
  slot.onStatus((state) => { el.textContent = state === 'saved' && !text() ? '' : (DRAFT_TEXT[state] || ''); });
  return el;
}

const TOOLS = [
  // [label, key (Ctrl+key), what it does]
  ['Bold', 'b', (ta) => wrap(ta, '**', '**', 'bold text')],
  ['Italic', 'i', (ta) => wrap(ta, '_', '_', 'italic text')],
  ['Code', 'e', (ta) => wrap(ta, '`', '`', 'code')],
  ['Link', 'k', (ta) => wrap(ta, '[', '](https://)', 'link text')],
  ['Quote', null, (ta) => prefixLines(ta, '> ')],
  ['List', null, (ta) => prefixLines(ta, '- ')],
];
const TOOL_TEXT = { Bold: 'B', Italic: 'I', Code: '</>', Link: 'Link', Quote: '❝', List: '•' };

function changed(ta) { ta.dispatchEvent(new Event('input', { bubbles: true })); ta.focus(); }

/** Put `before`/`after` around the selection (or a placeholder, then selected). */
function wrap(ta, before, after, placeholder) {
  const { selectionStart: s, selectionEnd: e, value } = ta;
  const inner = value.slice(s, e) || placeholder;
  ta.setRangeText(before + inner + after, s, e, 'end');
  ta.setSelectionRange(s + before.length, s + before.length + inner.length);
  changed(ta);
}

/** Start every selected line (or the current one) with `prefix`. */
function prefixLines(ta, prefix) {
  const { selectionStart: s, selectionEnd: e, value } = ta;
  const start = value.lastIndexOf('\n', s - 1) + 1;
  const block = value.slice(start, e);
  const next = block.split('\n').map((line) => prefix + line).join('\n');
  ta.setRangeText(next, start, e, 'end');
  changed(ta);
}

/**
 * A Markdown toolbar (bold, italic, code, link, quote, list; Ctrl+B/I/E/K in the box) and a
 * Preview toggle that renders the text with the server's own renderer (POST /api/render),
 * so the preview is exactly what will be posted. Returns {bar, preview} to place around `ta`
 * and reset() to go back to writing (after posting).
 */
export function markdownTools(ta, label) {
  const buttons = TOOLS.map(([name, key, act]) => h('button', {
    type: 'button', class: 'md-btn', 'aria-label': key ? `${name} (Ctrl+${key.toUpperCase()})` : name,
    title: key ? `${name} (Ctrl+${key.toUpperCase()})` : name, 'data-testid': `md-${name.toLowerCase()}`,
    onClick: () => act(ta),
  }, TOOL_TEXT[name]));
  // Images: paste or drop one on the box, or pick one with this button (./uploads.js).
  const uploads = imageUploads(ta, changed);
  buttons.push(h('button', { type: 'button', class: 'md-btn', 'aria-label': 'Add an image (or paste or drop one)',
    title: 'Add an image (or paste or drop one)', 'data-testid': 'md-image', onClick: uploads.pick }, 'Image'));
  ta.addEventListener('keydown', (e) => {
    if (!(e.ctrlKey || e.metaKey) || e.altKey || e.shiftKey) return;
    const tool = TOOLS.find(([, key]) => key && key === e.key.toLowerCase());
    if (tool) { e.preventDefault(); tool[2](ta); }
  });
  const preview = h('div', { class: 'md-preview prose', 'data-testid': 'md-preview', dir: 'auto', hidden: true,
    'aria-live': 'polite', tabindex: '-1' });
  const toggle = h('button', { type: 'button', class: 'btn btn-sm btn-quiet md-toggle', 'aria-pressed': 'false',
    'data-testid': 'md-preview-toggle' }, 'Preview');
  const tools = h('div', { class: 'md-tools', role: 'toolbar', 'aria-label': `Formatting for ${label}` }, buttons);
  const show = (on) => {
    toggle.setAttribute('aria-pressed', String(on));
    toggle.textContent = on ? 'Edit' : 'Preview';
    preview.hidden = !on;
    ta.hidden = on;
    for (const b of buttons) b.disabled = on;
    if (!on) ta.focus();
  };
  toggle.addEventListener('click', async () => {
    if (toggle.getAttribute('aria-pressed') === 'true') { show(false); return; }
    const text = ta.value;
    if (!text.trim()) {
      preview.replaceChildren(h('p', { class: 'empty' }, 'Nothing to preview yet.'));
    } else {
      preview.replaceChildren(h('p', { class: 'empty' }, 'Rendering…'));
      try {
        const d = await api('POST', '/api/render', { body: text });
        setPostHtml(preview, d.html);
      } catch (err) {
        preview.replaceChildren(h('p', { class: 'form-msg is-error' }, err.message));
      }
    }
    show(true);
    preview.focus();
  });
  return { bar: h('div', { class: 'md-bar' }, tools, toggle, uploads.list), preview,
    reset: () => { if (ta.hidden) show(false); } };
}
