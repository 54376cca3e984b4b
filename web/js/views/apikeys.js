// The settings page's API keys: the user's keys (name, scopes, made, last used), a form that makes one and shows
// its token once, and deleting one (it stops working at once; contract "API keys").

import { api } from '../api.js';
import { h } from '../dom.js';
import { confirmDialog, fieldError, formMessage, showFormMessage, timeEl } from '../ui.js';
import { LIMITS } from '../limits.js';

const SCOPES = [['read', 'Read only', ['read']], ['write', 'Read and write', ['read', 'write']]];

export function apiKeysCard(ctx) {
  const list = h('ul', { class: 'api-keys', 'data-testid': 'api-keys' });
  const listMsg = formMessage();
  const render = (keys) => {
    list.replaceChildren(...(keys.length ? keys.map(item) : [h('li', { class: 'hint' }, 'No API keys yet.')]));
  };
  let keys = [];
  const load = () => api('GET', '/api/me/api-keys').then((d) => { keys = d.api_keys; render(keys); },
    (err) => showFormMessage(listMsg, err.message));
  function item(key) {
    const del = h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'api-key-delete' },
      'Delete', h('span', { class: 'sr-only' }, ` the key ${key.name}`));
    del.addEventListener('click', async () => {
      if (!await confirmDialog('Delete this API key?', `"${key.name}" stops working at once.`)) return;
      try {
        await api('DELETE', `/api/me/api-keys/${key.id}`);
        keys = keys.filter((k) => k.id !== key.id);
        render(keys);
        ctx.announce('API key deleted.');
      } catch (err) {
        showFormMessage(listMsg, err.message);
      }
    });
    return h('li', { class: 'api-key', 'data-testid': 'api-key' },
      h('strong', { dir: 'auto' }, key.name), ' · ',
      key.scopes.includes('write') ? 'read and write' : 'read only', ' · made ', timeEl(key.created_at),
      ' · ', key.last_used_at ? ['last used ', timeEl(key.last_used_at)] : 'never used', ' ', del);
  }

  const name = h('input', { id: 'api-key-name', name: 'name', required: true, maxlength: LIMITS.display_name_max, autocomplete: 'off',
    'data-testid': 'api-key-name' });
  const scopes = h('fieldset', null, h('legend', null, 'What it may do'),
    SCOPES.map(([value, label], i) => h('label', { class: 'choice' },
      h('input', { type: 'radio', name: 'api-key-scope', value, checked: i === 0, 'data-testid': `api-key-scope-${value}` }),
      label)));
  const shown = h('div', { 'data-testid': 'api-key-token-box', hidden: true });
  const msg = formMessage();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'api-key-submit' }, 'Make a key');
  const form = h('form', { class: 'settings-form prefs-form', novalidate: true, 'data-testid': 'api-key-form' },
    h('label', { for: 'api-key-name' }, 'Name'), name, scopes, msg, h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    fieldError(name, '');
    showFormMessage(msg, '');
    if (!name.value.trim()) { fieldError(name, 'Give the key a name.'); name.focus(); return; }
    const scope = form.querySelector('input[name="api-key-scope"]:checked').value;
    submit.disabled = true;
    try {
      const d = await api('POST', '/api/me/api-keys', { name: name.value, scopes: SCOPES.find((s) => s[0] === scope)[2] });
      keys = [d.api_key, ...keys];
      render(keys);
      form.reset();
      const token = h('input', { id: 'api-key-token', readonly: true, value: d.token, 'data-testid': 'api-key-token' });
      shown.replaceChildren(h('label', { for: 'api-key-token' }, 'Your new key: copy it now, it is shown only once'),
        token, h('p', { class: 'hint' }, 'Send it as the header Authorization: Bearer KEY.'));
      shown.hidden = false;
      token.focus();
      token.select();
      ctx.announce('API key made. Copy it now: it is shown only once.');
    } catch (err) {
      if (err.field === 'name') { fieldError(name, err.message); name.focus(); } else showFormMessage(msg, err.message);
    } finally {
      submit.disabled = false;
    }
  });
  load();
  return h('section', { class: 'card settings-card', 'aria-labelledby': 'api-keys-title' },
    h('h2', { id: 'api-keys-title' }, 'API keys'),
    h('p', { class: 'hint' }, 'For scripts and bots that act as you. A read-only key cannot post, vote or change anything.'),
    list, listMsg, shown, form);
}
