// "Ask a question": the form in a category (posting there) and on the home
// page (with a category picker). The draft is kept per place (../composer.js).

import { api } from '../api.js';
import { draftFields, draftStatus, markdownTools } from '../composer.js';
import { h } from '../dom.js';
import { formMessage, showFormMessage, submitOnCtrlEnter } from '../ui.js';
import { lengthGuard } from '../composing.js';
import { checkAll, clearAll, RULES, showServerError } from '../validate.js';
import { LIMITS } from '../limits.js';
import { similarBox, tagField } from '../tags.js';

/** The ask form's fields and their rules, in the words of their labels. */
function askFields(picker, title, body) {
  return [
    [picker, [(v) => (v ? '' : 'Choose where your question belongs.')]],
    [title, [(v) => (v.trim() ? '' : 'Give your question a title.'), RULES.notBlank('the title'),
      RULES.length('the title', 1, LIMITS.title_max)]],
    [body, [(v) => (v.trim() ? '' : 'Describe your question.'), RULES.notBlank('your question'),
      RULES.length('your question', 1, LIMITS.body_max)]],
  ];
}

/** Every category, depth first, as [{slug, label}] ("Discussion › Questions"). */
export function flatten(categories, trail = []) {
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
  // One question draft per person on the server (key `ask`, its category inside), kept per place in this tab.
  const slot = draftFields(`parley:draft:ask:${category ? category.slug : '*'}`, 'ask');
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
  const tags = tagField(saved.tags || '');
  const similar = similarBox(title, body);
  const msg = formMessage();
  const tools = markdownTools(body, 'your question');
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'ask-submit' }, 'Post question');
  const form = h('form', { class: 'ask-form', novalidate: true, 'data-testid': 'ask-form' },
    picker ? [h('label', { for: 'ask-category' }, 'Category'), picker] : null,
    h('label', { for: 'ask-title' }, 'Title'), title, similar,
    h('label', { for: 'ask-body' }, 'Your question'), tools.bar, body, tools.preview,
    h('p', { class: 'hint' }, 'Markdown works: **bold**, _italic_, `code`, [links](https://example.com). Ctrl+B, I, E, K format; Ctrl+Enter posts.'),
    tags.label, tags.input, tags.list, tags.hint,
    msg, h('div', { class: 'form-actions' }, submit));
  draftStatus(form, slot, () => body.value || title.value);
  const details = h('details', { class: 'ask card', open: saved.title || saved.body ? true : null },
    h('summary', { class: 'btn btn-primary', 'data-testid': 'ask-open' }, 'Ask a question'), form);
  const save = () => slot.set({ title: title.value, body: body.value, tags: tags.input.value,
    category: picker ? picker.value : category.slug });
  // Written in another tab or on another device (or posted there: all empty).
  slot.watch((fields) => {
    title.value = fields.title || '';
    body.value = fields.body || '';
    tags.input.value = fields.tags || '';
    if (picker && fields.category !== undefined) picker.value = fields.category;
    if (fields.title || fields.body) details.open = true;
  });
  title.addEventListener('input', save);
  tags.input.addEventListener('input', save);
  body.addEventListener('input', save);
  if (picker) picker.addEventListener('change', save);
  submitOnCtrlEnter(body, form);
  lengthGuard(body, form);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearAll([picker, title, body, tags.input]);
    showFormMessage(msg, '');
    if (!checkAll(askFields(picker, title, body).map(([input, rules]) => ({ input, rules })), msg)) return;
    submit.disabled = true;
    slot.hold();
    try {
      const slug = category ? category.slug : picker.value;
      const d = await api('POST', '/api/threads', { category: slug, title: title.value, body: body.value,
        tags: tags.value() });
      slot.clear();
      ctx.navigate(`/t/${d.thread.id}`);
    } catch (err) {
      save(); // not sent: keep saving it
      const [[, pickRules], [, titleRules], [, bodyRules]] = askFields(picker, title, body);
      showServerError(err, {
        category: picker && { input: picker, label: 'the category', rules: pickRules },
        title: { input: title, label: 'the title', rules: titleRules },
        body: { input: body, label: 'your question', rules: bodyRules },
        tags: { input: tags.input, label: 'a tag', rules: [] },
      }, msg);
    } finally {
      submit.disabled = false;
    }
  });
  return details;
}
