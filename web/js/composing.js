// Small manners of the text boxes: a post's length limit said out loud (a counter near 20,000 characters and a
// clear refusal past it, never text silently cut by `maxlength`), and Enter posting a comment (Shift+Enter for a
// new line), as on Stack Overflow.

import { h } from './dom.js';
import { LIMITS } from './limits.js';

const BODY_MAX = LIMITS.body_max; // a post body's most characters after trimming (server/limits.py)
const SHOW_FROM = 0.9; // the counter appears at 90 % of the limit

/** Characters as the server counts them: code points of the trimmed text. */
export function bodyLength(text) {
  return [...String(text).trim()].length;
}

/** The counter's words for a length, or '' while far from the limit. */
export function counterText(n, max = BODY_MAX) {
  if (n < max * SHOW_FROM) return '';
  const fmt = (x) => x.toLocaleString('en');
  if (n <= max) return `${fmt(n)} of ${fmt(max)} characters`;
  return `${fmt(n)} of ${fmt(max)} characters: ${fmt(n - max)} too many. Shorten it to post; nothing was cut.`;
}

/**
 * Guard a post's textarea: no `maxlength` (a paste past it would be cut without a word), a live counter under it
 * near the limit, and a submit past the limit refused with the counter as the reason (the form's own submit
 * handler never runs then).
 */
export function lengthGuard(ta, form, max = BODY_MAX) {
  ta.removeAttribute('maxlength');
  const id = `${ta.id || 'body'}-count`;
  const counter = h('p', { class: 'char-count', id, 'data-testid': 'char-count', 'aria-live': 'polite', hidden: true });
  ta.insertAdjacentElement('afterend', counter);
  let over = false; // aria-invalid is ours to clear only when we set it
  const update = () => {
    const n = bodyLength(ta.value);
    const text = counterText(n, max);
    if (counter.textContent !== text) counter.textContent = text;
    counter.hidden = !text;
    counter.classList.toggle('is-over', n > max);
    if (n > max) { ta.setAttribute('aria-invalid', 'true'); over = true; }
    else if (over) { ta.removeAttribute('aria-invalid'); over = false; }
    const describedBy = new Set((ta.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean));
    if (text) describedBy.add(id); else describedBy.delete(id);
    if (describedBy.size) ta.setAttribute('aria-describedby', [...describedBy].join(' '));
    else ta.removeAttribute('aria-describedby');
  };
  ta.addEventListener('input', update);
  // Capture: before the form's own submit handler, which then never sees an over-long text.
  form.addEventListener('submit', (e) => {
    if (bodyLength(ta.value) <= max) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    update();
    counter.classList.remove('is-flash');
    counter.setAttribute('role', 'alert');
    void counter.offsetWidth; // restart the flash
    counter.classList.add('is-flash');
    ta.focus();
  }, true);
  update();
  return update;
}

/** Enter posts (Shift+Enter, or Enter while composing characters, is a new line); a hint says so. */
export function enterPosts(ta, form) {
  ta.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || e.shiftKey || e.altKey || e.ctrlKey || e.metaKey || e.isComposing || e.defaultPrevented) return;
    e.preventDefault();
    form.requestSubmit();
  });
  ta.setAttribute('aria-keyshortcuts', 'Enter');
  if (!ta.getAttribute('title')) ta.setAttribute('title', 'Enter posts · Shift+Enter for a new line');
}

/**
 * A thread locked while the reader writes: the boxes with text stay on screen, read-only, with a note saying
 * why and that the text is kept (their drafts stay in sessionStorage); empty ones go as before. Unlocked: back
 * to normal.
 */
export function keepTextWhenLocked(root, locked) {
  for (const form of root.querySelectorAll('.reply-form, .comment-form')) {
    const ta = form.querySelector('textarea');
    if (!ta) continue;
    const keep = locked && !!ta.value.trim();
    form.classList.toggle('has-locked-text', keep);
    ta.readOnly = keep;
    for (const b of form.querySelectorAll('button[type="submit"]')) b.disabled = keep;
    let note = form.querySelector('.locked-text-note');
    if (keep && !note) {
      note = h('p', { class: 'locked-text-note', role: 'status', 'data-testid': 'locked-text-note' },
        'This thread was locked while you were writing, so it cannot be posted. Your text is kept here: copy it if you want it elsewhere.');
      ta.insertAdjacentElement('beforebegin', note);
    } else if (!keep && note) {
      note.remove();
    }
  }
}
