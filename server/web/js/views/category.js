// A category: breadcrumb, subcategories, threads, and the "new question" form.

import { api } from '../api.js';
import { draftFields } from '../composer.js';
import { h } from '../dom.js';
import {
  breadcrumb, errorPanel, fieldError, formMessage, loading, showFormMessage, submitOnCtrlEnter, threadList,
} from '../ui.js';
import { addMore } from './home.js';

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
      askBox(cat, ctx), feed));

    const loadPage = (before) => api('GET', `/api/categories/${encodeURIComponent(cat.slug)}/threads?limit=20${
      before ? `&before=${encodeURIComponent(before)}` : ''}`);
    try {
      const d = await loadPage(null);
      if (!alive) return;
      const list = threadList(d.threads || [], 'No questions here yet. Ask the first one!');
      feed.replaceChildren(list);
      await addMore(feed, list, d.next, loadPage, ctx, () => alive);
    } catch (e) {
      if (alive) feed.replaceChildren(errorPanel('Could not load threads', e.message));
    }
    if (alive) ctx.ready();
  }).catch((e) => {
    if (!alive) return;
    ctx.setTitle('Could not load the forum');
    main.replaceChildren(errorPanel('Could not load the forum', e.message));
    ctx.ready();
  });
  return () => { alive = false; };
}

function askBox(cat, ctx) {
  if (!ctx.me) {
    return h('div', { class: 'ask-cta' },
      h('a', { class: 'btn btn-primary', href: `/signin?next=${encodeURIComponent(location.pathname)}`,
        'data-testid': 'ask-signin' }, 'Sign in to ask a question'));
  }
  const slot = draftFields(`parley:draft:ask:${cat.slug}`);
  const saved = slot.get();
  const title = h('input', { id: 'ask-title', name: 'title', type: 'text', maxlength: '200', required: true,
    autocomplete: 'off', 'data-testid': 'ask-title', dir: 'auto', value: saved.title || '' });
  const body = h('textarea', { id: 'ask-body', name: 'body', rows: '6', required: true, 'data-testid': 'ask-body', dir: 'auto',
    value: saved.body || '' });
  const msg = formMessage();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'ask-submit' }, 'Post question');
  const form = h('form', { class: 'ask-form', novalidate: true, 'data-testid': 'ask-form' },
    h('label', { for: 'ask-title' }, 'Title'), title,
    h('label', { for: 'ask-body' }, 'Your question'), body,
    h('p', { class: 'hint' }, 'Markdown works: **bold**, _italic_, `code`, [links](https://example.com). Ctrl+Enter posts.'),
    msg, h('div', { class: 'form-actions' }, submit));
  const details = h('details', { class: 'ask card', open: saved.title || saved.body ? true : null },
    h('summary', { class: 'btn btn-primary', 'data-testid': 'ask-open' }, 'Ask a question'), form);
  const save = () => slot.set({ title: title.value, body: body.value });
  title.addEventListener('input', save);
  body.addEventListener('input', save);
  submitOnCtrlEnter(body, form);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    fieldError(title, '');
    fieldError(body, '');
    showFormMessage(msg, '');
    if (!title.value.trim()) { fieldError(title, 'Give your question a title.'); title.focus(); return; }
    if (!body.value.trim()) { fieldError(body, 'Describe your question.'); body.focus(); return; }
    submit.disabled = true;
    try {
      const d = await api('POST', '/api/threads', { category: cat.slug, title: title.value, body: body.value });
      slot.clear();
      ctx.navigate(`/t/${d.thread.id}`);
    } catch (err) {
      const target = err.field === 'title' ? title : err.field === 'body' ? body : null;
      if (target) { fieldError(target, err.message); target.focus(); } else showFormMessage(msg, err.message);
    } finally {
      submit.disabled = false;
    }
  });
  return details;
}
