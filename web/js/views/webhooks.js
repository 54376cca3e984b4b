// The settings page's "Webhooks" card, for moderators (contract "Webhooks"): the webhooks (URL, events), a form
// that makes one and shows its signing secret once, each one's recent deliveries, and deleting one after a
// confirmation.

import { api } from '../api.js';
import { h } from '../dom.js';
import { confirmDialog, fieldError, formMessage, showFormMessage, timeEl } from '../ui.js';

const EVENTS = [['thread.created', 'New threads'], ['post.created', 'New responses and comments'],
  ['post.edited', 'Edits'], ['post.deleted', 'Deletions'], ['vote.changed', 'Votes'], ['thread.updated', 'Thread changes']];

export function webhooksCard(ctx) {
  const list = h('ul', { class: 'api-keys', 'data-testid': 'webhooks' });
  const listMsg = formMessage();
  let hooks = [];
  const render = () => {
    list.replaceChildren(...(hooks.length ? hooks.map(item) : [h('li', { class: 'hint' }, 'No webhooks yet.')]));
  };
  const load = () => api('GET', '/api/webhooks').then((d) => { hooks = d.webhooks; render(); },
    (err) => showFormMessage(listMsg, err.message));

  function item(hook) {
    const log = h('ul', { class: 'webhook-log', 'data-testid': 'webhook-log', hidden: true });
    const show = h('button', { type: 'button', class: 'btn btn-sm', 'aria-expanded': 'false', 'data-testid': 'webhook-show-log' },
      'Recent deliveries', h('span', { class: 'sr-only' }, ` to ${hook.url}`));
    show.addEventListener('click', async () => {
      const open = log.hidden;
      log.hidden = !open;
      show.setAttribute('aria-expanded', String(open));
      if (!open) return;
      try {
        const d = await api('GET', `/api/webhooks/${hook.id}/deliveries?limit=20`);
        log.replaceChildren(...(d.deliveries.length ? d.deliveries.map((x) => h('li', { 'data-testid': 'webhook-delivery' },
          `${x.type} · thread ${x.thread} · seq ${x.seq} · ${x.status}`,
          x.last_status ? ` (${x.last_status})` : '', x.last_error && x.status !== 'delivered' ? ` · ${x.last_error}` : '',
          ' · ', timeEl(x.created_at))) : [h('li', { class: 'hint' }, 'Nothing delivered yet.')]));
      } catch (err) {
        log.replaceChildren(h('li', null, err.message));
      }
    });
    const del = h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'webhook-delete' },
      'Delete', h('span', { class: 'sr-only' }, ` the webhook to ${hook.url}`));
    del.addEventListener('click', async () => {
      if (!await confirmDialog('Delete this webhook?', `${hook.url} hears nothing more; its pending deliveries are dropped.`)) return;
      try {
        await api('DELETE', `/api/webhooks/${hook.id}`);
        hooks = hooks.filter((x) => x.id !== hook.id);
        render();
        ctx.announce('Webhook deleted.');
      } catch (err) {
        showFormMessage(listMsg, err.message);
      }
    });
    return h('li', { class: 'api-key', 'data-testid': 'webhook' },
      h('strong', { dir: 'ltr' }, hook.url), ' · ', hook.events.join(', '), ' · made ', timeEl(hook.created_at), ' ',
      show, ' ', del, log);
  }

  const url = h('input', { id: 'webhook-url', name: 'url', type: 'url', required: true, autocomplete: 'off',
    placeholder: 'https://', 'data-testid': 'webhook-url' });
  const events = h('fieldset', { 'data-testid': 'webhook-events' }, h('legend', null, 'Events to send'),
    EVENTS.map(([value, label], i) => h('label', { class: 'choice' },
      h('input', { type: 'checkbox', name: 'webhook-event', value, checked: i < 2, 'data-testid': `webhook-event-${value}` }),
      label)));
  const shown = h('div', { 'data-testid': 'webhook-secret-box', hidden: true });
  const msg = formMessage();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'webhook-submit' }, 'Add webhook');
  const form = h('form', { class: 'settings-form prefs-form', novalidate: true, 'data-testid': 'webhook-form' },
    h('label', { for: 'webhook-url' }, 'URL'), url, events, msg, h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    fieldError(url, '');
    showFormMessage(msg, '');
    if (!url.value.trim()) { fieldError(url, 'Enter the URL to send events to.'); url.focus(); return; }
    const names = [...form.querySelectorAll('input[name="webhook-event"]:checked')].map((x) => x.value);
    if (!names.length) { showFormMessage(msg, 'Choose at least one event.'); return; }
    submit.disabled = true;
    try {
      const d = await api('POST', '/api/webhooks', { url: url.value.trim(), events: names });
      hooks = [d.webhook, ...hooks];
      render();
      form.reset();
      const secret = h('input', { id: 'webhook-secret', readonly: true, value: d.secret, 'data-testid': 'webhook-secret' });
      shown.replaceChildren(h('label', { for: 'webhook-secret' }, 'Signing secret: copy it now, it is shown only once'),
        secret, h('p', { class: 'hint' }, 'Verify each delivery with a Standard Webhooks library and this secret.'));
      shown.hidden = false;
      secret.focus();
      secret.select();
      ctx.announce('Webhook added. Copy its secret now: it is shown only once.');
    } catch (err) {
      if (err.field === 'url') { fieldError(url, err.message); url.focus(); } else showFormMessage(msg, err.message);
    } finally {
      submit.disabled = false;
    }
  });
  load();
  return h('section', { class: 'card settings-card', 'aria-labelledby': 'webhooks-title' },
    h('h2', { id: 'webhooks-title' }, 'Webhooks'),
    h('p', { class: 'hint' }, 'Every event of every thread you choose is POSTed, signed, to each URL, in order per thread.'),
    list, listMsg, shown, form);
}
