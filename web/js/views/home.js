// Home: the category tree and the most active threads.

import { api } from '../api.js';
import { h, icon } from '../dom.js';
import { currentTab, listTabs } from '../listtabs.js';
import { followFeed } from '../livelist.js';
import { loading, threadItem, threadList } from '../ui.js';
import { askBox } from './ask.js';
import { failedPanel, moreFailedLabel } from '../failed.js';

export function categoryTree(categories, currentSlug = null) {
  const node = (c) => h('li', null,
    h('a', { href: `/c/${encodeURIComponent(c.slug)}`, 'aria-current': c.slug === currentSlug ? 'page' : null },
      icon('folder', 'icon icon-sm'), c.name),
    c.children && c.children.length ? h('ul', null, c.children.map(node)) : null);
  return h('ul', { class: 'cat-tree', 'data-testid': 'category-tree' }, categories.map(node));
}

export function renderHome(main, params, ctx) {
  ctx.setTitle('');
  let alive = true;
  // On a phone the tree is folded (it would push the threads 1.5 screens down); open on wider screens.
  const wide = window.matchMedia('(min-width: 861px)').matches;
  const side = h('aside', { class: 'sidebar', 'aria-label': 'Categories' },
    h('details', { class: 'card cat-card', open: wide, 'data-testid': 'categories-box' },
      h('summary', { class: 'card-title' }, 'Categories'), h('div', { class: 'card' }, loading())));
  const feed = h('section', { class: 'feed', 'aria-labelledby': 'feed-title' },
    h('div', { class: 'section-head' }, h('h1', { id: 'feed-title' }, currentTab().heading)), listTabs(), loading());
  const intro = ctx.me ? null : h('section', { class: 'welcome' },
    h('h2', { class: 'welcome-title' }, 'Questions, answered live.'),
    h('p', null, 'Parley is a community Q&A where every response, comment and vote shows up the moment it happens.'),
    h('div', { class: 'welcome-actions' },
      h('a', { class: 'btn btn-primary', href: '/signup' }, 'Join the discussion'),
      h('a', { class: 'btn', href: '/signin' }, 'Sign in')));
  const askSlot = h('div', { class: 'ask-slot' });
  main.append(h('div', { class: 'page-home' }, intro, askSlot, h('div', { class: 'layout' }, feed, side)));

  const slot = side.querySelector('details > div');
  ctx.categories().then((cats) => {
    if (!alive) return;
    slot.replaceChildren(cats.length ? categoryTree(cats) : h('p', { class: 'empty' }, 'No categories yet.'));
    if (ctx.me && cats.length) askSlot.replaceChildren(askBox(ctx, { categories: cats }));
  }).catch((e) => {
    if (alive) slot.replaceChildren(h('p', { class: 'form-msg is-error' }, e.message));
  });

  const loadPage = async (before) => {
    const q = (before ? `?limit=20&before=${encodeURIComponent(before)}` : '?limit=20') + currentTab().query;
    return api('GET', `/api/threads${q}`);
  };
  let first = true; // a reload (the feed after a reconnect) neither scrolls nor moves focus
  const load = () => loadPage(null).then(async (d) => {
    if (!alive) return;
    for (const el of feed.querySelectorAll('.loading, .thread-list, .empty, .more')) el.remove();
    const list = threadList(d.threads || [], 'No threads yet — be the first to ask.');
    feed.append(list);
    await addMore(feed, list, d.next, loadPage, ctx, () => alive);
    if (alive && first) { first = false; ctx.ready(); }
  }).catch((e) => {
    if (alive) { feed.replaceChildren(failedPanel(ctx, 'Could not load threads', e, { heading: 'h2' })); if (first) ctx.ready(); }
  });
  load();
  // Live: new threads and activity arrive without a reload (the Active tab reorders; others update in place).
  const stopFeed = followFeed(ctx, 'all', () => feed.querySelector('.thread-list'), load, currentTab().key === 'active');
  return () => { alive = false; stopFeed(); };
}

/**
 * A "Show more" button that pages a thread list by cursor. The number of rows
 * shown is kept in the history entry, so Back brings the list back as long as
 * it was (the promise resolves once those rows are there again).
 */
export async function addMore(container, list, next, loadPage, ctx, isAlive = () => true) {
  if (!next || !list.matches('ol')) return;
  const btn = h('button', { type: 'button', class: 'btn btn-block more', 'data-testid': 'more-threads' }, 'Show more');
  const more = async () => {
    btn.disabled = true;
    btn.textContent = 'Loading…';
    try {
      const d = await loadPage(next);
      if (!isAlive()) return false;
      for (const t of d.threads || []) list.append(threadItem(t));
      next = d.next;
      btn.disabled = false;
      btn.textContent = 'Show more';
      if (!next) btn.remove();
      return true;
    } catch (e) {
      btn.disabled = false;
      btn.textContent = moreFailedLabel(e);
      return false;
    }
  };
  btn.addEventListener('click', async () => {
    if (await more()) ctx.saveViewState({ rows: list.children.length });
  });
  container.append(btn);
  const want = Number(ctx.viewState().rows) || 0;
  while (next && list.children.length < want && isAlive()) {
    if (!await more()) break;
  }
}
