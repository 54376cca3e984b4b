// Search results (/search?q=&sort=): each result opens its post's permalink.

import { api } from '../api.js';
import { h } from '../dom.js';
import { loading, timeEl, userLink } from '../ui.js';
import { permalink } from './profile.js';
import { field, searchFilters } from '../searchfilters.js';
import { failedPanel, moreFailedLabel } from '../failed.js';
import { LIMITS } from '../limits.js';

const ENTITIES = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#x27;': "'" };

/** The server's snippet (escaped text with <mark> tags) as DOM nodes: text nodes and <mark>s, never HTML. */
export function snippetNodes(snippet) {
  const text = (s) => s.replace(/&(amp|lt|gt|quot|#x27);/g, (m) => ENTITIES[m]);
  const out = [];
  (snippet || '').split(/(<mark>[^<]*<\/mark>)/).forEach((part) => {
    const m = part.match(/^<mark>([^<]*)<\/mark>$/);
    if (m) out.push(h('mark', null, text(m[1])));
    else if (part) out.push(text(part));
  });
  return out;
}

function resultItem(r) {
  const p = r.post;
  return h('li', { class: 'search-result', 'data-testid': 'search-result', dataset: { postId: p.id } },
    h('a', { class: 'thread-link', href: permalink(p), 'data-testid': 'search-result-link', dir: 'auto' }, r.thread.title),
    h('p', { class: 'search-snippet' }, snippetNodes(r.snippet)),
    h('div', { class: 'thread-meta' },
      r.thread.category ? h('a', { class: 'chip', href: `/c/${encodeURIComponent(r.thread.category.slug)}` },
        r.thread.category.name) : null,
      h('span', null, p.kind === 'question' ? 'asked by ' : p.kind === 'response' ? 'answered by ' : 'comment by ',
        userLink(p.author)),
      timeEl(p.created_at, 'relative')));
}

export function renderSearch(main, params, ctx) {
  let alive = true;
  const qs = new URLSearchParams(location.search);
  const q = (qs.get('q') || '').trim();
  const sort = qs.get('sort') === 'newest' ? 'newest' : 'relevance';
  ctx.setTitle(q ? `Search: ${q}` : 'Search');
  const input = h('input', { id: 'search-q', name: 'q', type: 'search', maxlength: LIMITS.search_q_max, value: q,
    'data-testid': 'search-input', autocomplete: 'off' });
  const order = h('select', { id: 'search-sort', name: 'sort', 'data-testid': 'search-sort' },
    h('option', { value: 'relevance', selected: sort === 'relevance' }, 'Relevance'),
    h('option', { value: 'newest', selected: sort === 'newest' }, 'Newest'));
  const filters = searchFilters(ctx, qs); // category and author (searchfilters.js)
  const form = h('form', { class: 'search-form', role: 'search', 'aria-label': 'Search the forum', 'data-testid': 'search-form' },
    h('div', { class: 'search-main' }, h('label', { for: 'search-q' }, 'Search questions and answers'),
      h('div', { class: 'search-row' }, input, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Search'))),
    h('p', { class: 'hint' }, 'Words must all match; "a phrase", -word to exclude, or.'),
    h('div', { class: 'search-filters', 'data-testid': 'search-filters' }, filters.fields,
      field('search-sort', 'Order', order)));
  const submit = (e) => {
    if (e) e.preventDefault();
    const v = input.value.trim();
    if (v) ctx.navigate(`/search?q=${encodeURIComponent(v)}${order.value === 'newest' ? '&sort=newest' : ''}${filters.params()}`);
  };
  form.addEventListener('submit', submit);
  order.addEventListener('change', submit);
  filters.inputs.category.addEventListener('change', submit);
  const results = h('section', { class: 'feed', 'aria-label': 'Results' });
  main.append(h('div', { class: 'page-search' }, h('h1', null, 'Search'), form, results));
  if (!q) { ctx.ready(); return () => { alive = false; }; }
  results.append(loading('Searching…'));
  const load = (before) => api('GET', `/api/search?q=${encodeURIComponent(q)}&sort=${sort}${filters.params()}&limit=20${
    before ? `&before=${encodeURIComponent(before)}` : ''}`);
  load(null).then((d) => {
    if (!alive) return;
    if (!d.results.length) {
      results.replaceChildren(h('p', { class: 'empty', 'data-testid': 'search-empty' }, `Nothing found for “${q}”.`));
      ctx.ready();
      return;
    }
    const list = h('ol', { class: 'search-results', 'data-testid': 'search-results' }, d.results.map(resultItem));
    results.replaceChildren(list);
    let next = d.next;
    if (next) {
      const more = h('button', { type: 'button', class: 'btn btn-block more', 'data-testid': 'more-results' }, 'Show more');
      more.addEventListener('click', async () => {
        more.disabled = true;
        try {
          const page = await load(next);
          for (const r of page.results) list.append(resultItem(r));
          next = page.next;
          if (!next) more.remove();
        } catch (e) {
          more.textContent = moreFailedLabel(e);
        } finally {
          more.disabled = false;
        }
      });
      results.append(more);
    }
    ctx.announce(`${d.results.length}${d.next ? '+' : ''} results`);
    ctx.ready();
  }).catch((e) => {
    if (alive) { results.replaceChildren(failedPanel(ctx, 'Search failed', e, { heading: 'h2' })); ctx.ready(); }
  });
  return () => { alive = false; };
}
