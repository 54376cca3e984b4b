// "Ask a question": the form in a category (posting there) and on the home
// page (with a category picker). The draft is kept per place (../composer.js).

import { api } from '../api.js';
import { draftFields, markdownTools } from '../composer.js';
import { h } from '../dom.js';
import { fieldError, formMessage, showFormMessage, submitOnCtrlEnter } from '../ui.js';
import { LIMITS } from '../limits.js';

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

/**
 * The ask box: {category} posts there; {categories} (home) adds a picker.
 * Guests get a sign-in link instead.
 */
export function askBox(ctx, { category = null, categories = null } = {}) {
  if (!ctx.me) {
    return h('div', { class: 'ask-cta' },
      h('a', { class: 'btn btn-primary', href: `/signin?next=${encodeURIComponent(location.pathname)}`,
        'data-testid': 'ask-signin' }, 'Sign in to ask a question'));
  }
  const slot = draftFields(`parley:draft:ask:${category ? category.slug : '*'}`);
  const saved = slot.get();
  let picker = null;
  if (!category) {
    picker = h('select', { id: 'ask-category', name: 'category', required: true, 'data-testid': 'ask-category' },
      h('option', { value: '' }, 'Choose a category…'),
      flatten(categories || []).map((c) => h('option', { value: c.slug, selected: c.slug === saved.category }, c.label)));
  }
  const title = h('input', { id: 'ask-title', name: 'title', type: 'text', maxlength: LIMITS.title_max, required: true,
    autocomplete: 'off', 'data-testid': 'ask-title', dir: 'auto', value: saved.title || '' });
  const body = h('textarea', { id: 'ask-body', name: 'body', rows: '6', required: true, maxlength: LIMITS.body_max, 'data-testid': 'ask-body', dir: 'auto',
    value: saved.body || '' });
  const msg = formMessage();
  const tools = markdownTools(body, 'your question');
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'ask-submit' }, 'Post question');
  const form = h('form', { class: 'ask-form', novalidate: true, 'data-testid': 'ask-form' },
    picker ? [h('label', { for: 'ask-category' }, 'Category'), picker] : null,
    h('label', { for: 'ask-title' }, 'Title'), title,
    h('label', { for: 'ask-body' }, 'Your question'), tools.bar, body, tools.preview,
    h('p', { class: 'hint' }, 'Markdown works: **bold**, _italic_, `code`, [links](https://example.com). Ctrl+B, I, E, K format; Ctrl+Enter posts.'),
    msg, h('div', { class: 'form-actions' }, submit));
  const details = h('details', { class: 'ask card', open: saved.title || saved.body ? true : null },
    h('summary', { class: 'btn btn-primary', 'data-testid': 'ask-open' }, 'Ask a question'), form);
  const save = () => slot.set({ title: title.value, body: body.value, ...(picker ? { category: picker.value } : {}) });
  title.addEventListener('input', save);
  body.addEventListener('input', save);
  if (picker) picker.addEventListener('change', save);
  submitOnCtrlEnter(body, form);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const el of [picker, title, body]) if (el) fieldError(el, '');
    showFormMessage(msg, '');
    if (picker && !picker.value) { fieldError(picker, 'Choose where your question belongs.'); picker.focus(); return; }
    if (!title.value.trim()) { fieldError(title, 'Give your question a title.'); title.focus(); return; }
    if (!body.value.trim()) { fieldError(body, 'Describe your question.'); body.focus(); return; }
    submit.disabled = true;
    try {
      const slug = category ? category.slug : picker.value;
      const d = await api('POST', '/api/threads', { category: slug, title: title.value, body: body.value });
      slot.clear();
      ctx.navigate(`/t/${d.thread.id}`);
    } catch (err) {
      const target = err.field === 'title' ? title : err.field === 'body' ? body : err.field === 'category' ? picker : null;
      if (target) { fieldError(target, err.message); target.focus(); } else showFormMessage(msg, err.message);
    } finally {
      submit.disabled = false;
    }
  });
  return details;
}
