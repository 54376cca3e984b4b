// The settings page's "Delete your account" card (contract "Leaving", DELETE /api/me): the password, whether to
// erase the text of every post too, and a confirmation. Afterwards every session of the account is over: the page
// starts again as a guest.

import { api } from '../api.js';
import { h } from '../dom.js';
import { confirmDialog, fieldError, formMessage, showFormMessage } from '../ui.js';

export function leavingCard(ctx) {
  const pw = h('input', { id: 'delete-password', name: 'password', type: 'password', autocomplete: 'current-password',
    'aria-describedby': 'delete-password-hint', 'data-testid': 'delete-password' });
  // An account made by signing in with a provider has no password: it confirms with an empty one (the server
  // checks; a password account is refused with wrong_password). Said only where single sign-on is set up.
  const pwHint = h('p', { class: 'hint', id: 'delete-password-hint', hidden: true });
  api('GET', '/auth/oidc/config').then((c) => {
    if (c && c.name) {
      pwHint.textContent = `Signed up with ${c.name} and never set a password? Leave it empty.`;
      pwHint.hidden = false;
    }
  }).catch(() => {});
  const erase = h('input', { id: 'delete-erase', name: 'erase_posts', type: 'checkbox', 'data-testid': 'delete-erase',
    'aria-describedby': 'delete-erase-hint' });
  const msg = formMessage();
  const submit = h('button', { type: 'submit', class: 'btn btn-danger', 'data-testid': 'delete-submit' }, 'Delete my account');
  const form = h('form', { class: 'settings-form', novalidate: true, 'data-testid': 'delete-form' },
    h('label', { for: 'delete-password' }, 'Current password'), pw, pwHint,
    h('label', { class: 'choice', for: 'delete-erase' }, erase, 'Also erase the text of everything I posted'),
    h('p', { class: 'hint', id: 'delete-erase-hint' }, 'Without this, your posts stay, under the name deleted-user. '
      + 'With it, they stay as deleted posts; threads you started stay for the answers in them.'),
    msg, h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    fieldError(pw, '');
    showFormMessage(msg, '');
    const detail = erase.checked ? 'Your account goes, and the text of every post of yours is erased. This cannot be undone.'
      : 'Your account goes; your posts stay under the name deleted-user. This cannot be undone.';
    if (!await confirmDialog('Delete your account?', detail)) return;
    submit.disabled = true;
    try {
      // Every session ends, this tab's too (its socket closes with 4001): start again as a guest.
      const leaving = api('DELETE', '/api/me', { password: pw.value, erase_posts: erase.checked });
      ctx.credentialChange = leaving;
      await leaving;
      window.location.assign('/');
    } catch (err) {
      ctx.credentialChange = null;
      const text = err.code !== 'wrong_password' ? err.message
        : (pw.value ? 'That is not your current password.' : 'Enter your current password.');
      if (err.code === 'wrong_password') { fieldError(pw, text); pw.focus(); } else showFormMessage(msg, text);
      submit.disabled = false;
    }
  });
  return h('section', { class: 'card settings-card', 'aria-labelledby': 'delete-title' },
    h('h2', { id: 'delete-title' }, 'Delete your account'),
    h('p', null, 'Your username is freed and your profile disappears. Download your data first if you want to keep it.'),
    form);
}
