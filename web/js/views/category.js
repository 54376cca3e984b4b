// A category: breadcrumb, subcategories, threads, and the "new question" form.

import { api } from '../api.js';
import { h } from '../dom.js';
import { breadcrumb, errorPanel, loading, threadList } from '../ui.js';
import { askBox } from './ask.js';
import { addMore } from './home.js';
import { currentTab, listTabs } from '../listtabs.js';
import { followFeed } from '../livelist.js';
import { failedPanel } from '../failed.js';

function findCategory(list, slug) {
  for (const c of list) {
    if (c.slug === slug) return c;
    const inner = findCategory(c.children || [], slug);
    if (inner) return inner;
  }
  return null;
}

export function renderCategory(main, { slug }, ctx) {
  let alive = true;
  let stopFeed = null;
  main.append(loading());
  ctx.categories().then(async (cats) => {
    let cat = findCategory(cats, slug);
    if (!cat) cat = findCategory(await ctx.categories(true), slug);
    if (!alive) return;
    if (!cat) {
      ctx.setTitle('Category not found');
      main.replaceChildren(errorPanel('Category not found', 'There is no category by that name.',
        h('a', { class: 'btn btn-primary', href: '/' }, 'Back to the forum')));
      ctx.ready();
      return;
    }
    ctx.setTitle(cat.name);
    const path = cat.path && cat.path.length ? cat.path : [{ slug: cat.slug, name: cat.name }];
    const feed = h('section', { class: 'feed', 'aria-label': 'Threads' }, loading());
    const head = h('div', { class: 'section-head' }, h('h1', { dir: 'auto' }, cat.name));
    const children = (cat.children || []).length
      ? h('ul', { class: 'subcats', 'aria-label': 'Subcategories' },
        cat.children.map((c) => h('li', null, h('a', { class: 'chip chip-lg', href: `/c/${encodeURIComponent(c.slug)}` }, c.name))))
      : null;
    main.replaceChildren(h('div', { class: 'page-category' }, breadcrumb(path), head, children,
      askBox(ctx, { category: cat }), listTabs(), feed));

    const loadPage = (before) => api('GET', `/api/categories/${encodeURIComponent(cat.slug)}/threads?limit=20${
      before ? `&before=${encodeURIComponent(before)}` : ''}${currentTab().query}`);
    const load = async () => {
      try {
        const d = await loadPage(null);
        if (!alive) return;
        const list = threadList(d.threads || [], 'No questions here yet. Ask the first one!');
        feed.replaceChildren(list);
        await addMore(feed, list, d.next, loadPage, ctx, () => alive);
      } catch (e) {
        if (alive) feed.replaceChildren(failedPanel(ctx, 'Could not load threads', e, { heading: 'h2' }));
      }
    };
    await load();
    if (alive) {
      // Live: new threads and activity arrive without a reload (the Active tab reorders; others in place).
      stopFeed = followFeed(ctx, `category:${cat.slug}`, () => feed.querySelector('.thread-list'), load,
        currentTab().key === 'active');
    }
    if (alive) ctx.ready();
  }).catch((e) => {
    if (!alive) return;
    ctx.setTitle('Could not load the forum');
    main.replaceChildren(failedPanel(ctx, 'Could not load the forum', e));
    ctx.ready();
  });
  return () => { alive = false; if (stopFeed) stopFeed(); };
}
