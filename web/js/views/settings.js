// Account settings: who you are, a password change (which ends every earlier
// session, this one too; the answer brings this tab a new one: contract `PUT /api/me/password`), and signing out.

import { api } from '../api.js';
import { h } from '../dom.js';
import { displayName, fieldError, formMessage, showFormMessage } from '../ui.js';

export function renderSettings(main, params, ctx) {
  ctx.setTitle('Account settings');
  if (!ctx.me) {
    main.append(h('section', { class: 'panel' }, h('h1', null, 'Account settings'),
      h('p', null, 'Sign in to see your account.'),
      h('a', { class: 'btn btn-primary', href: '/signin?next=/settings', 'data-testid': 'settings-signin' }, 'Sign in')));
    ctx.ready();
    return null;
  }
  const me = ctx.me;
  const profile = h('section', { class: 'card settings-card', 'aria-labelledby': 'profile-title' },
    h('h2', { id: 'profile-title' }, 'Profile'),
    h('dl', { class: 'settings-facts' },
      h('dt', null, 'Username'), h('dd', { 'data-testid': 'settings-username', dir: 'auto' }, me.username),
      h('dt', null, 'Display name'), h('dd', { dir: 'auto' }, displayName(me))),
    h('p', { class: 'hint' }, 'Your display name is shown next to your posts. It is chosen when you sign up.'));

  const field = (id, label, autocomplete) => {
    const input = h('input', { id, name: id, type: 'password', autocomplete, required: true, 'data-testid': id });
    return { input, els: [h('label', { for: id }, label), input] };
  };
  const oldPw = field('old-password', 'Current password', 'current-password');
  const newPw = field('new-password', 'New password', 'new-password');
  const again = field('new-password-again', 'New password, again', 'new-password');
  const msg = formMessage();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'password-submit' }, 'Change password');
  const form = h('form', { class: 'settings-form', novalidate: true, 'data-testid': 'password-form' },
    oldPw.els, newPw.els, h('p', { class: 'hint' }, 'At least 8 characters. Changing it signs you out everywhere else.'),
    again.els, msg, h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const f of [oldPw, newPw, again]) fieldError(f.input, '');
    showFormMessage(msg, '');
    if (!oldPw.input.value) { fieldError(oldPw.input, 'Enter your current password.'); oldPw.input.focus(); return; }
    if (newPw.input.value.length < 8) { fieldError(newPw.input, 'Use at least 8 characters.'); newPw.input.focus(); return; }
    if (newPw.input.value !== again.input.value) {
      fieldError(again.input, 'The two new passwords differ.');
      again.input.focus();
      return;
    }
    submit.disabled = true;
    try {
      // Every session made before ends, this tab's too: its socket closes (4001) and comes back with the
      // new cookie of the answer (app.js, sessionClosed waits for this).
      const change = api('PUT', '/api/me/password', { old_password: oldPw.input.value, new_password: newPw.input.value });
      ctx.credentialChange = change;
      try { await change; } finally { if (ctx.credentialChange === change) ctx.credentialChange = null; }
      form.reset();
      showFormMessage(msg, 'Password changed. Every other session of yours has been signed out.', 'info');
      ctx.announce('Password changed.');
    } catch (err) {
      const wrong = err.status === 401 || err.status === 403 || err.field === 'old_password';
      const target = wrong ? oldPw.input : err.field === 'new_password' ? newPw.input : null;
      const text = wrong && !err.field ? 'That is not your current password.' : err.message;
      if (target) { fieldError(target, text); target.focus(); } else showFormMessage(msg, text);
    } finally {
      submit.disabled = false;
    }
  });
  const password = h('section', { class: 'card settings-card', 'aria-labelledby': 'password-title' },
    h('h2', { id: 'password-title' }, 'Password'), form);

  const session = h('section', { class: 'card settings-card', 'aria-labelledby': 'session-title' },
    h('h2', { id: 'session-title' }, 'Sessions'),
    h('p', null, 'Sign out of this browser. To sign out everywhere else too, change your password above.'),
    h('button', { type: 'button', class: 'btn', 'data-testid': 'settings-sign-out', onClick: () => ctx.signOut() }, 'Sign out'));

  main.append(h('div', { class: 'page-settings' }, h('h1', null, 'Account settings'), profile, password, session));
  ctx.ready();
  return null;
}
