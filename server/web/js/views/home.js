// Home: the category tree and the most active threads.

import { api } from '../api.js';
import { h, icon } from '../dom.js';
import { currentTab, listTabs } from '../listtabs.js';
import { followFeed } from '../livelist.js';
import { errorPanel, loading, threadItem, threadList } from '../ui.js';

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
  const side = h('aside', { class: 'sidebar', 'aria-label': 'Categories' },
    h('section', { class: 'card' }, h('h2', { class: 'card-title' }, 'Categories'), loading()));
  const feed = h('section', { class: 'feed', 'aria-labelledby': 'feed-title' },
    h('div', { class: 'section-head' }, h('h1', { id: 'feed-title' }, currentTab().heading)), listTabs(), loading());
  const intro = ctx.me ? null : h('section', { class: 'welcome' },
    h('h1', null, 'Questions, answered live.'),
    h('p', null, 'Parley is a community Q&A where every response, comment and vote shows up the moment it happens.'),
    h('div', { class: 'welcome-actions' },
      h('a', { class: 'btn btn-primary', href: '/signup' }, 'Join the discussion'),
      h('a', { class: 'btn', href: '/signin' }, 'Sign in')));
  main.append(h('div', { class: 'page-home' }, intro, h('div', { class: 'layout' }, feed, side)));

  ctx.categories().then((cats) => {
    if (!alive) return;
    const card = side.querySelector('.card');
    card.replaceChildren(h('h2', { class: 'card-title' }, 'Categories'),
      cats.length ? categoryTree(cats) : h('p', { class: 'empty' }, 'No categories yet.'));
  }).catch((e) => {
    if (alive) side.querySelector('.card').replaceChildren(h('p', { class: 'form-msg is-error' }, e.message));
  });

  const loadPage = async (before) => {
    const q = (before ? `?limit=20&before=${encodeURIComponent(before)}` : '?limit=20') + currentTab().query;
    return api('GET', `/api/threads${q}`);
  };
  const load = () => loadPage(null).then((d) => {
    if (!alive) return;
    for (const el of feed.querySelectorAll('.loading, .thread-list, .empty, .more')) el.remove();
    const list = threadList(d.threads || [], 'No threads yet — be the first to ask.');
    feed.append(list);
    addMore(feed, list, d.next, loadPage);
  }).catch((e) => {
    if (alive) feed.replaceChildren(errorPanel('Could not load threads', e.message));
  });
  load();
  // Live: new threads and activity arrive without a reload (the Active tab reorders; others update in place).
  const stopFeed = followFeed(ctx, 'all', () => feed.querySelector('.thread-list'), load, currentTab().key === 'active');
  return () => { alive = false; stopFeed(); };
}

/** A "Show more" button that pages a thread list by cursor. */
export function addMore(container, list, next, loadPage) {
  if (!next) return;
  const btn = h('button', { type: 'button', class: 'btn btn-block more', 'data-testid': 'more-threads' }, 'Show more');
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    btn.textContent = 'Loading…';
    try {
      const d = await loadPage(next);
      for (const t of d.threads || []) list.append(threadItem(t));
      next = d.next;
      btn.disabled = false;
      btn.textContent = 'Show more';
      if (!next) btn.remove();
    } catch (e) {
      btn.disabled = false;
      btn.textContent = `Show more (${e.message})`;
    }
  });
  container.append(btn);
}
