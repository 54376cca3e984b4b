// Composers: drafts kept in sessionStorage (they survive reloads and sign-outs),
// Ctrl+Enter to post, and a submit that keeps the text on any error and reuses
// its Idempotency-Key on a retry of the same text. Used by the thread's reply
// and comment boxes and by the category's "Ask a question" form.

import { ApiError, newIdempotencyKey } from './api.js';
import { showFormMessage, submitOnCtrlEnter } from './ui.js';

/** A draft slot: get() → string ('' if none), set(text) (empty removes it), clear(). */
export function draft(key) {
  return {
    key,
    get() { try { return sessionStorage.getItem(key) || ''; } catch { return ''; } },
    set(text) {
      try { if (text) sessionStorage.setItem(key, text); else sessionStorage.removeItem(key); } catch { /* full */ }
    },
    clear() { try { sessionStorage.removeItem(key); } catch { /* unavailable */ } },
  };
}

/** A draft of several fields stored as JSON: get() → object, set(obj), clear(). */
export function draftFields(key) {
  const slot = draft(key);
  return {
    get() { try { return JSON.parse(slot.get() || '{}') || {}; } catch { return {}; } },
    set(fields) { slot.set(Object.values(fields).some(Boolean) ? JSON.stringify(fields) : ''); },
    clear: slot.clear,
  };
}

/**
 * Wire a one-textarea composer.
 * opts: {form, ta, submit, msg, draftKey, emptyText, send(text, key) → Promise<post>,
 *        onInput(text)?, onPosted(post), onSignedOut()? (a 401: the session ended; the draft stays)}
 */
export function wireComposer({ form, ta, submit, msg, draftKey, emptyText, send, onInput, onPosted, onSignedOut }) {
  const slot = draft(draftKey);
  ta.value = slot.get();
  ta.addEventListener('input', () => {
    slot.set(ta.value);
    if (onInput) onInput(ta.value);
  });
  submitOnCtrlEnter(ta, form);
  let attempt = null; // {key, text}: a retry of the same text reuses its Idempotency-Key
  const label = submit.textContent;
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
    try {
      const d = await send(text, attempt.key);
      attempt = null;
      if (ta.value === text) ta.value = '';
      slot.clear();
      onPosted(d.post);
    } catch (err) {
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
