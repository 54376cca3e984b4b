// Form checks in people's words: every field is checked at once, each message sits under its field and
// names it as its label does ("Your question", never "body"); the server's 422 (which names a field in
// API words, sometimes in a validator's) is put the same way.

import { fieldError, showFormMessage } from './ui.js';

const INVISIBLE = /^[\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0]*$/u;

/** Rules, each (value) → message or ''. `label` is the field's words in a sentence ("your username"). */
export const RULES = {
  required: (what) => (v) => (v.trim() ? '' : `Enter ${what}.`),
  notBlank: (what) => (v) => (v && INVISIBLE.test(v) ? `${cap(what)} can't be only spaces or invisible characters.` : ''),
  length: (what, low, high, trim = true) => (v) => {
    const n = [...(trim ? v.trim() : v)].length;
    if (!n) return '';
    if (n < low) return `${cap(what)} needs at least ${low} characters (it has ${n}).`;
    if (n > high) return `${cap(what)} can be at most ${high.toLocaleString('en')} characters (it has ${n.toLocaleString('en')}).`;
    return '';
  },
  pattern: (re, text) => (v) => (v.trim() && !re.test(v.trim()) ? text : ''),
};

// The numbers come from the server (/static/js/limits.js, passed in as `L`): no limit is typed in the page.
export const usernameRules = (L) => [RULES.required('a username'), RULES.length('your username', L.username_min, L.username_max),
  RULES.pattern(/^[A-Za-z0-9_.-]+$/, 'A username can hold only letters, digits, dots (.), dashes (-) and underscores (_), no spaces.')];
export const newPasswordRules = (L) => [(v) => (v ? '' : 'Choose a password.'), RULES.notBlank('your password'),
  RULES.length('your password', L.password_min, L.password_max, false)];
export const EMAIL_RULES = [RULES.pattern(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, 'That is not an e-mail address: it looks like name@example.org.')];

/**
 * Check every field; show each message under its field, a summary in `msg`, and focus the first.
 * fields: [{input, rules: [rule…]}]. Returns true when all are fine.
 */
export function checkAll(fields, msg) {
  let first = null;
  let bad = 0;
  for (const { input, rules } of fields) {
    if (!input) continue;
    const text = rules.map((r) => r(input.value)).find(Boolean) || '';
    fieldError(input, text);
    if (text) { bad += 1; first = first || input; }
  }
  if (msg) showFormMessage(msg, bad > 1 ? `Please fix the ${bad} fields marked in red.` : '');
  if (first) first.focus();
  return !first;
}

/** Clear every field's message. */
export function clearAll(inputs) {
  for (const input of inputs) if (input) fieldError(input, '');
}

/**
 * A server error in the words of the form: a 422 naming a field goes under that field with the field's
 * label instead of its API name, and a validator's raw text (`Expected \`str\` matching regex …`) becomes the
 * field's own rule. Returns the input it was shown under (or null: shown in `msg`).
 * inputs: {apiField: {input, label, rules?}}.
 */
export function showServerError(err, inputs, msg) {
  const target = err.field && inputs[err.field];
  if (!target) { showFormMessage(msg, err.message); return null; }
  const fromRules = (target.rules || []).map((r) => r(target.input.value)).find(Boolean);
  fieldError(target.input, fromRules || humanize(err.message, err.field, target.label));
  target.input.focus();
  return target.input;
}

/** "display_name must be 1–64 characters" → "Display name must be 1–64 characters"; raw validator text → plain. */
export function humanize(message, field, label) {
  const text = String(message || '');
  if (/Expected `|regex|\$\.|`/.test(text)) return `${cap(label)} is not in a form Parley accepts.`;
  if (field && text.startsWith(`${field} `)) return `${cap(label)}${text.slice(field.length)}`;
  return text;
}

function cap(s) { return s ? s[0].toUpperCase() + s.slice(1) : s; }
