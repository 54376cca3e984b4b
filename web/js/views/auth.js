// Sign in and sign up.

import { api } from '../api.js';
import { h } from '../dom.js';
import { fieldError, formMessage, showFormMessage } from '../ui.js';
import { localizeSuspension } from '../signedout.js';
import { checkAll, clearAll, EMAIL_RULES, newPasswordRules, RULES, showServerError, usernameRules } from '../validate.js';
import { LIMITS } from '../limits.js';

const DISPLAY_RULES = [RULES.length('your display name', 1, LIMITS.display_name_max),
  (v) => (v.trim() && RULES.notBlank('your display name')(v.trim()) ? 'A display name must show something: leave it empty to use your username.' : '')];

function safeNext() {
  const next = new URLSearchParams(location.search).get('next') || '/';
  // Only same-origin paths, as the URL parser sees them: "/\\example.org" and "//example.org" are other hosts.
  let url;
  try {
    url = new URL(next, location.origin);
  } catch {
    return '/';
  }
  if (url.origin !== location.origin || !next.startsWith('/') || /^\/(signin|signup)/.test(url.pathname)) return '/';
  return url.pathname + url.search + url.hash;
}

export function renderAuth(main, { mode }, ctx) {
  const signup = mode === 'signup';
  ctx.setTitle(signup ? 'Sign up' : 'Sign in');
  if (ctx.me) {
    main.append(h('section', { class: 'panel auth' }, h('h1', null, "You're signed in"),
      h('p', null, 'Carry on where you left off.'), h('a', { class: 'btn btn-primary', href: safeNext() }, 'Continue')));
    return null;
  }
  const field = (id, label, attrs, hint) => {
    const input = h('input', { id, name: id, ...attrs });
    return [h('label', { for: id }, label), input, hint ? h('p', { class: 'hint' }, hint) : null];
  };
  const username = field('username', 'Username', { type: 'text', autocomplete: 'username', required: true,
    minlength: LIMITS.username_min, maxlength: LIMITS.username_max, autocapitalize: 'none', spellcheck: 'false', 'data-testid': 'auth-username' },
    signup ? `${LIMITS.username_min}–${LIMITS.username_max} letters, digits, dots, dashes or underscores.` : null);
  const display = signup ? field('display_name', 'Display name', { type: 'text', autocomplete: 'nickname',
    maxlength: LIMITS.display_name_max, 'data-testid': 'auth-display-name' }, 'Shown next to your posts. Optional.') : [];
  const email = signup ? field('email', 'E-mail address', { type: 'email', autocomplete: 'email', maxlength: LIMITS.email_max,
    'data-testid': 'auth-email' }, 'Optional. For a forgotten password and mail about replies; we send a link to confirm it.') : [];
  const password = field('password', 'Password', { type: 'password', required: true, minlength: signup ? LIMITS.password_min : null,
    autocomplete: signup ? 'new-password' : 'current-password', 'data-testid': 'auth-password' },
    signup ? `At least ${LIMITS.password_min} characters.` : null);
  const msg = formMessage();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', 'data-testid': 'auth-submit' },
    signup ? 'Create account' : 'Sign in');
  const forgot = signup ? null
    : h('p', { class: 'auth-forgot' }, h('a', { href: '/forgot-password', 'data-testid': 'auth-forgot' }, 'Forgot password?'));
  const form = h('form', { class: 'auth-form', novalidate: true }, username, display, email, password, forgot, msg, submit);
  const other = signup
    ? h('p', { class: 'auth-switch' }, 'Already a member? ', h('a', { href: `/signin${location.search}` }, 'Sign in'))
    : h('p', { class: 'auth-switch' }, 'New here? ', h('a', { href: `/signup${location.search}` }, 'Create an account'));
  const sso = h('div', { class: 'auth-sso', hidden: true, 'data-testid': 'auth-sso-box' });
  main.append(h('section', { class: 'panel auth' }, h('h1', null, signup ? 'Join Parley' : 'Welcome back'), sso, form, other));
  const inputs = Object.fromEntries([...form.querySelectorAll('input')].map((i) => [i.name, i]));
  inputs.username.focus();
  // Single sign-on (contract "Single sign-on"): a "Sign in with …" button when the site has a provider; with
  // PARLEY_SSO_ONLY the password form goes (the server refuses it: 403 sso_only).
  api('GET', '/auth/oidc/config').then((c) => {
    if (!c.login_url) return;
    const href = `${c.login_url}?next=${encodeURIComponent(safeNext())}`;
    sso.replaceChildren(h('a', { class: 'btn btn-block', href, 'data-testid': 'auth-sso' }, `Sign in with ${c.name}`),
      c.sso_only ? h('p', { class: 'hint' }, `This site signs everyone in through ${c.name}.`)
        : h('p', { class: 'auth-or' }, 'or with a password'));
    sso.hidden = false;
    if (c.sso_only) { form.hidden = true; other.hidden = true; }
  }, () => { /* offline: the password form is there */ });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearAll(Object.values(inputs));
    showFormMessage(msg, '');
    const body = { username: inputs.username.value.trim(), password: inputs.password.value };
    // Every field at once, in the words of its label (validate.js).
    const ok = checkAll(signup ? [
      { input: inputs.username, rules: usernameRules(LIMITS) },
      { input: inputs.display_name, rules: DISPLAY_RULES },
      { input: inputs.email, rules: EMAIL_RULES },
      { input: inputs.password, rules: newPasswordRules(LIMITS) },
    ] : [
      { input: inputs.username, rules: [RULES.required('your username')] },
      { input: inputs.password, rules: [(v) => (v ? '' : 'Enter your password.')] },
    ], msg);
    if (!ok) return;
    if (signup && inputs.display_name.value.trim()) body.display_name = inputs.display_name.value.trim();
    if (signup && inputs.email.value.trim()) body.email = inputs.email.value.trim();
    submit.disabled = true;
    try {
      const d = signup ? await api('POST', '/api/users', body) : await api('POST', '/api/session', body);
      await ctx.setMe(d.user);
      ctx.navigate(safeNext(), { replace: true });
    } catch (err) {
      if (!signup && err.status === 401) {
        fieldError(inputs.password, 'That username and password don’t match.');
        inputs.password.focus();
      } else if (err.code === 'suspended') {
        showFormMessage(msg, localizeSuspension(err.message));
      } else if (signup && err.status === 409 && !err.field) {
        fieldError(inputs.username, err.message);
        inputs.username.focus();
      } else {
        showServerError(err, {
          username: { input: inputs.username, label: 'your username', rules: signup ? usernameRules(LIMITS) : [] },
          display_name: inputs.display_name && { input: inputs.display_name, label: 'your display name', rules: DISPLAY_RULES },
          email: inputs.email && { input: inputs.email, label: 'your e-mail address', rules: EMAIL_RULES },
          password: { input: inputs.password, label: 'your password', rules: signup ? newPasswordRules(LIMITS) : [] },
        }, msg);
      }
    } finally {
      submit.disabled = false;
    }
  });
  return null;
}
