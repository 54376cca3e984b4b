// The search page's filters: category (its descendants included) and author (a username), each a labelled
// field beside "Order", kept in the URL (?category=&author=) as GET /api/search takes them.

import { h } from './dom.js';
import { LIMITS } from './limits.js';

/** Every category, depth first, as [{slug, label}] ("Discussion › Questions"). */
function flatten(categories, trail = []) {
  const out = [];
  for (const c of categories) {
    const path = [...trail, c.name];
    out.push({ slug: c.slug, label: path.join(' › ') });
    out.push(...flatten(c.children || [], path));
  }
  return out;
}

/** A label above its control. */
export function field(id, label, control) {
  return h('div', { class: 'search-field' }, h('label', { for: id }, label), control);
}

/**
 * The filter fields for the current URL's values. Returns {fields: [element…], params(): "&category=…&author=…",
 * inputs: [controls]}: the page submits on a change of any of them.
 */
export function searchFilters(ctx, qs) {
  const slug = qs.get('category') || '';
  const author = (qs.get('author') || '').trim();
  const category = h('select', { id: 'search-category', name: 'category', 'data-testid': 'search-category' },
    h('option', { value: '' }, 'All categories'),
    slug ? h('option', { value: slug, selected: true }, slug) : null);
  ctx.categories().then((cats) => {
    const options = flatten(cats).map((c) => h('option', { value: c.slug, selected: c.slug === slug }, c.label));
    category.replaceChildren(h('option', { value: '' }, 'All categories'), ...options);
    category.value = slug;
  }).catch(() => { /* the slug stays as given */ });
  const who = h('input', { id: 'search-author', name: 'author', type: 'text', value: author, maxlength: LIMITS.username_max,
    autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', placeholder: 'username',
    'data-testid': 'search-author' });
  return {
    fields: [field('search-category', 'Category', category), field('search-author', 'Author', who)],
    inputs: { category, who },
    params() {
      const p = new URLSearchParams();
      if (category.value) p.set('category', category.value);
      const name = who.value.trim().replace(/^@/, '');
      if (name) p.set('author', name);
      const s = p.toString();
      return s ? `&${s}` : '';
    },
  };
}
