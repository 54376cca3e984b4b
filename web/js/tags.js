// Tags and similar questions in the page: tag chips, the ask form's tag field with completion (a <datalist>
// filled from GET /api/tags?q=), and the "may already have your answer" list shown while a title is typed.

import { api } from './api.js';
import { h } from './dom.js';

/** The page of one tag: the search for it (the operator lists its questions newest first). */
export function tagHref(name) {
  return `/search?q=${encodeURIComponent(`tag:${name}`)}`;
}

/** A list of tag chips, or null when there are none. */
export function tagChips(tags) {
  if (!tags || !tags.length) return null;
  return h('ul', { class: 'tag-list', 'aria-label': 'Tags', 'data-testid': 'thread-tags' },
    tags.map((t) => h('li', null, h('a', { class: 'tag', href: tagHref(t), 'data-testid': 'tag' }, t))));
}

/** The names typed in a tag field: split on commas and spaces, folded, each once. */
export function parseTags(text) {
  const out = [];
  for (const raw of text.split(/[\s,]+/)) {
    const name = raw.trim().toLowerCase();
    if (name && !out.includes(name)) out.push(name);
  }
  return out;
}

/** Call fn at most once per `ms` of quiet. */
function debounce(fn, ms) {
  let timer = 0;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

/**
 * The ask form's tag field: a text input whose last word completes from the tags in use.
 * Returns {label, input, hint, list, value()}.
 */
export function tagField(saved = '') {
  const list = h('datalist', { id: 'ask-tags-list', 'data-testid': 'ask-tags-list' });
  const input = h('input', { id: 'ask-tags', name: 'tags', type: 'text', autocomplete: 'off', list: 'ask-tags-list',
    'aria-describedby': 'ask-tags-hint', 'data-testid': 'ask-tags', value: saved, spellcheck: 'false' });
  const hint = h('p', { class: 'hint', id: 'ask-tags-hint' }, 'Up to 5 tags, separated by spaces or commas: lower-case letters, digits and + # . -');
  let asked = '';
  const complete = debounce(async () => {
    const words = input.value.split(/[\s,]+/);
    const last = (words.pop() || '').toLowerCase();
    if (!last || last === asked) return;
    asked = last;
    try {
      const d = await api('GET', `/api/tags?q=${encodeURIComponent(last)}&limit=8`);
      const before = words.filter(Boolean).join(' ');
      list.replaceChildren(...d.tags.map((t) => h('option', { value: before ? `${before} ${t.name}` : t.name },
        `${t.name} (${t.count})`)));
    } catch {
      // Completion is a help only: the field works without it.
    }
  }, 200);
  input.addEventListener('input', complete);
  return { label: h('label', { for: 'ask-tags' }, 'Tags'), input, hint, list, value: () => parseTags(input.value) };
}

/**
 * "Questions that may already have your answer": refreshed (debounced) while the title is typed.
 * Returns the section; it stays hidden while there is nothing to show.
 */
export function similarBox(title, body) {
  const list = h('ul', { class: 'similar-list', 'data-testid': 'similar-list' });
  const box = h('section', { class: 'similar', 'aria-labelledby': 'similar-title', 'aria-live': 'polite',
    'data-testid': 'similar' },
  h('h2', { id: 'similar-title', class: 'similar-title' }, 'Questions that may already have your answer'), list);
  box.hidden = true;
  let asked = '';
  const refresh = debounce(async () => {
    const t = title.value.trim();
    if (t.length < 8) { box.hidden = true; return; }
    const key = `${t}\n${body.value.slice(0, 300)}`;
    if (key === asked) return;
    asked = key;
    try {
      const d = await api('GET', `/api/threads/similar?title=${encodeURIComponent(t)}&body=${encodeURIComponent(body.value.slice(0, 300))}`);
      if (key !== asked) return;
      list.replaceChildren(...d.threads.map((s) => h('li', { 'data-testid': 'similar-item' },
        h('a', { href: `/t/${s.id}`, target: '_blank', rel: 'noopener', dir: 'auto' }, s.title),
        s.accepted_id ? h('span', { class: 'badge badge-answered' }, '✓ answered') : null)));
      box.hidden = d.threads.length === 0;
    } catch {
      box.hidden = true;
    }
  }, 400);
  title.addEventListener('input', refresh);
  return box;
}
