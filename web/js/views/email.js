// The pages mail links lead to: "Forgot password?", the reset and verify pages, and the unsubscribe
// confirmation (contract "E-mail"). None needs a session; the token in the link is what counts. Each page
// changes nothing until its button is pressed: link scanners that open mail links change nothing.

import { api } from '../api.js';
import { h } from '../dom.js';
import { fieldError, formMessage, showFormMessage, toast } from '../ui.js';
import { checkAll, humanize, newPasswordRules } from '../validate.js';
import { LIMITS } from '../limits.js';

function token() {
  return new URLSearchParams(location.search).get('token') || '';
}

function panel(main, title, ...children) {
  main.append(h('section', { class: 'panel auth', 'aria-labelledby': 'page-title' },
    h('h1', { id: 'page-title' }, title), ...children));
}

function field(id, label, attrs, hint) {
  const input = h('input', { id, name: id, ...attrs, 'data-testid': id });
  return { input, els: [h('label', { for: id }, label), input, hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null] };
}

function noToken(main, title) {
  panel(main, title, h('p', null, 'This link has lost its token. Open the link from the mail again, or ask for a new one.'),
    h('a', { class: 'btn', href: '/forgot-password' }, 'Ask for a new link'));
}

/** /forgot-password: ask for a reset link. The answer is the same whether or not the address is known. */
export function renderForgot(main, params, ctx) {
  ctx.setTitle('Forgot password');
  const email = field('reset-email', 'E-mail address', { type: 'email', autocomplete: 'email', required: true,
    maxlength: LIMITS.email_max, 'aria-describedby': 'reset-email-hint' }, 'The verified address of your account.');
  const msg = formMessage();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', 'data-testid': 'reset-request' },
    'Send me a link');
  const form = h('form', { class: 'auth-form', novalidate: true }, email.els, msg, submit);
  panel(main, 'Forgot your password?',
    h('p', null, 'Enter the verified e-mail address of your account, and we will send you a link to choose a new password.'),
    form, h('p', { class: 'auth-switch' }, h('a', { href: '/signin' }, 'Back to sign in')));
  email.input.focus();
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    fieldError(email.input, '');
    showFormMessage(msg, '');
    const address = email.input.value.trim();
    if (!address) { fieldError(email.input, 'Enter your e-mail address.'); email.input.focus(); return; }
    submit.disabled = true;
    try {
      await api('POST', '/api/password-reset', { email: address });
      showFormMessage(msg, `If ${address} is the verified address of an account, a link is on its way. It works once, for one hour.`, 'info');
      ctx.announce('Reset link requested.');
    } catch (err) {
      if (err.field === 'email') { fieldError(email.input, err.message); email.input.focus(); } else showFormMessage(msg, err.message);
    } finally {
      submit.disabled = false;
    }
  });
  return null;
}

/** /reset-password?token=T: choose a new password (signs in; every other session ends). */
export function renderReset(main, params, ctx) {
  ctx.setTitle('Choose a new password');
  const t = token();
  if (!t) { noToken(main, 'Choose a new password'); return null; }
  const pw = field('reset-password', 'New password', { type: 'password', autocomplete: 'new-password', required: true,
    minlength: LIMITS.password_min, 'aria-describedby': 'reset-password-hint' }, `At least ${LIMITS.password_min} characters. Every other session of yours will be signed out.`);
  const again = field('reset-password-again', 'New password, again', { type: 'password', autocomplete: 'new-password', required: true });
  const msg = formMessage();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', 'data-testid': 'reset-submit' },
    'Set the new password');
  const form = h('form', { class: 'auth-form', novalidate: true }, pw.els, again.els, msg, submit);
  panel(main, 'Choose a new password', form);
  pw.input.focus();
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    fieldError(pw.input, '');
    fieldError(again.input, '');
    showFormMessage(msg, '');
    if (!checkAll([
      { input: pw.input, rules: newPasswordRules(LIMITS).map((r) => (v) => r(v).replace(/your password/i, 'Your new password')) },
      { input: again.input, rules: [(v) => (v === pw.input.value ? '' : 'The two passwords differ.')] },
    ], msg)) return;
    submit.disabled = true;
    try {
      const d = await api('POST', '/api/password-reset/confirm', { token: t, new_password: pw.input.value });
      await ctx.setMe(d.user);
      toast('Your password is changed, and you are signed in.');
      ctx.navigate('/', { replace: true });
    } catch (err) {
      if (err.field === 'new_password') {
        fieldError(pw.input, humanize(err.message, err.field, 'your new password'));
        pw.input.focus();
      } else showFormMessage(msg, err.message);
    } finally {
      submit.disabled = false;
    }
  });
  return null;
}

/** /verify-email?token=T: confirm an address (the button does it: opening the link changes nothing). */
export function renderVerify(main, params, ctx) {
  ctx.setTitle('Confirm your e-mail address');
  const t = token();
  if (!t) { noToken(main, 'Confirm your e-mail address'); return null; }
  const msg = formMessage();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', 'data-testid': 'verify-submit' },
    'Confirm my address');
  const form = h('form', { class: 'auth-form', novalidate: true }, msg, submit);
  panel(main, 'Confirm your e-mail address', h('p', null, 'Press the button to confirm that this address is yours.'), form);
  submit.focus();
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormMessage(msg, '');
    submit.disabled = true;
    try {
      const d = await api('POST', '/api/email/verify', { token: t });
      if (ctx.me && ctx.me.id === d.user.id) ctx.me = d.user;
      submit.remove();
      showFormMessage(msg, `Thank you: ${d.user.email} is confirmed.`, 'info');
      ctx.announce('Address confirmed.');
    } catch (err) {
      showFormMessage(msg, err.message);
      submit.disabled = false;
    }
  });
  return null;
}

/** /unsubscribe?token=T: the confirmation page of a mail's unsubscribe link. A GET (this page) changes
 * nothing; the button sends the same one-click POST a mail client sends (RFC 8058). */
export function renderUnsubscribe(main, params, ctx) {
  ctx.setTitle('Unsubscribe');
  const t = token();
  if (!t) { noToken(main, 'Unsubscribe'); return null; }
  const msg = formMessage();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', 'data-testid': 'unsubscribe-submit' },
    'Unsubscribe');
  const form = h('form', { class: 'auth-form', novalidate: true }, msg, submit);
  panel(main, 'Unsubscribe', h('p', null, 'Stop the mails this link came with? You can turn them on again in your settings.'), form);
  submit.focus();
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormMessage(msg, '');
    submit.disabled = true;
    try {
      const res = await fetch(`/unsubscribe?token=${encodeURIComponent(t)}`, { method: 'POST', credentials: 'omit',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: 'List-Unsubscribe=One-Click' });
      const data = await res.json().catch(() => null);
      if (!res.ok) throw new Error((data && data.error && data.error.message) || `Something went wrong (${res.status}).`);
      submit.remove();
      showFormMessage(msg, 'Done: you will get no more of these mails.', 'info');
      ctx.announce('Unsubscribed.');
    } catch (err) {
      showFormMessage(msg, err.message === 'Failed to fetch' ? "Couldn't reach Parley. Try again." : err.message);
      submit.disabled = false;
    }
  });
  return null;
}
