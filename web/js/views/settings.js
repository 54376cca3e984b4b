// Account settings: who you are, your e-mail address and mail preferences, a password change (which ends every
// earlier session, this one too; the answer brings this tab a new one: contract `PUT /api/me/password`), and
// signing out.

import { api } from '../api.js';
import { h } from '../dom.js';
import { avatar, displayName, fieldError, formMessage, showFormMessage } from '../ui.js';
import { checkAll, humanize, newPasswordRules } from '../validate.js';
import { LIMITS } from '../limits.js';
import { apiKeysCard } from './apikeys.js';
import { leavingCard } from './leaving.js';
import { webhooksCard } from './webhooks.js';
import { IMAGE_TYPES, uploadFile } from '../uploads.js';

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
    oldPw.els, newPw.els, h('p', { class: 'hint' }, `At least ${LIMITS.password_min} characters. Changing it signs you out everywhere else.`),
    again.els, msg, h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const f of [oldPw, newPw, again]) fieldError(f.input, '');
    showFormMessage(msg, '');
    // Every field at once, in the words of its label (validate.js).
    if (!checkAll([
      { input: oldPw.input, rules: [(v) => (v ? '' : 'Enter your current password.')] },
      { input: newPw.input, rules: newPasswordRules(LIMITS).map((r) => (v) => r(v).replace(/your password/i, 'Your new password')) },
      { input: again.input, rules: [(v) => (v === newPw.input.value ? '' : 'The two new passwords differ.')] },
    ], msg)) return;
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
      const text = wrong && !err.field ? 'That is not your current password.'
        : humanize(err.message, err.field, err.field === 'new_password' ? 'your new password' : 'your current password');
      if (target) { fieldError(target, text); target.focus(); } else showFormMessage(msg, text);
    } finally {
      submit.disabled = false;
    }
  });
  const password = h('section', { class: 'card settings-card', 'aria-labelledby': 'password-title' },
    h('h2', { id: 'password-title' }, 'Password'), form);

  const picture = pictureCard(ctx);
  const mail = emailCard(ctx);
  const prefs = preferencesCard(ctx);

  const session = h('section', { class: 'card settings-card', 'aria-labelledby': 'session-title' },
    h('h2', { id: 'session-title' }, 'Sessions'),
    h('p', null, 'Sign out of this browser. To sign out everywhere else too, change your password above.'),
    h('button', { type: 'button', class: 'btn', 'data-testid': 'settings-sign-out', onClick: () => ctx.signOut() }, 'Sign out'));

  const data = h('section', { class: 'card settings-card', 'aria-labelledby': 'data-title' },
    h('h2', { id: 'data-title' }, 'Your data'),
    h('p', null, 'Everything you wrote and set here (posts with their history, votes, follows, bookmarks, notifications, '
      + 'preferences) as one JSON file.'),
    h('a', { class: 'btn', href: '/api/me/export', download: '', 'data-testid': 'settings-export' }, 'Download your data'));

  main.append(h('div', { class: 'page-settings' }, h('h1', null, 'Account settings'), profile, picture, mail, prefs, password,
    apiKeysCard(ctx), me.is_moderator ? webhooksCard(ctx) : null, data, session, leavingCard(ctx)));
  ctx.ready();
  return null;
}

/** The avatar (CONTRACT "Pictures"): an image of mine, cropped square by the server, or initials. */
function pictureCard(ctx) {
  const current = h('div', { class: 'settings-avatar', 'data-testid': 'settings-avatar' });
  const show = (user) => current.replaceChildren(avatar(user, 'lg'));
  show(ctx.me);
  const msg = formMessage();
  const input = h('input', { id: 'avatar-file', type: 'file', accept: IMAGE_TYPES.join(','), 'data-testid': 'avatar-file',
    'aria-describedby': 'avatar-hint' });
  const progress = h('progress', { max: '1', value: '0', hidden: true, 'aria-label': 'Uploading your picture' });
  const remove = h('button', { type: 'button', class: 'btn', 'data-testid': 'avatar-remove' }, 'Remove picture');
  remove.hidden = !ctx.me.avatar_url;
  const set = async (uploadId, done) => {
    const d = await api('PUT', '/api/me/avatar', { upload_id: uploadId });
    ctx.me = d.user;
    show(d.user);
    remove.hidden = !d.user.avatar_url;
    showFormMessage(msg, done, 'info');
    ctx.announce(done);
  };
  input.addEventListener('change', async () => {
    const file = input.files && input.files[0];
    if (!file) return;
    showFormMessage(msg, '');
    progress.hidden = false;
    try {
      const up = await uploadFile(file, (f) => { progress.value = f; });
      await set(up.id, 'Picture saved.');
    } catch (err) {
      showFormMessage(msg, err.message);
    } finally {
      progress.hidden = true;
      input.value = '';
    }
  });
  remove.addEventListener('click', async () => {
    try { await set(null, 'Picture removed: your initials are shown.'); } catch (err) { showFormMessage(msg, err.message); }
  });
  return h('section', { class: 'card settings-card', 'aria-labelledby': 'picture-title' },
    h('h2', { id: 'picture-title' }, 'Picture'), current,
    h('label', { for: 'avatar-file' }, 'Choose a picture'), input,
    h('p', { class: 'hint', id: 'avatar-hint' }, 'PNG, JPEG, GIF or WebP; shown as a square beside your name. '
      + 'Without one, your initials are shown.'), progress, msg, h('div', { class: 'form-actions' }, remove));
}

/** The address: shown with whether it is confirmed; changing it needs the password and sends a link. */
function emailCard(ctx) {
  const me = ctx.me;
  const status = h('dd', { 'data-testid': 'settings-email' });
  const showStatus = (user) => {
    status.replaceChildren(user.email ? h('span', { dir: 'auto' }, user.email) : 'none',
      user.email ? h('span', { class: `badge ${user.email_verified ? 'badge-ok' : 'badge-warn'}`, 'data-testid': 'settings-email-status' },
        user.email_verified ? 'confirmed' : 'not confirmed') : null);
  };
  showStatus(me);
  const address = h('input', { id: 'email-address', name: 'email', type: 'email', autocomplete: 'email', maxlength: LIMITS.email_max,
    value: me.email || '', 'data-testid': 'email-address', 'aria-describedby': 'email-address-hint' });
  const pw = h('input', { id: 'email-password', name: 'password', type: 'password', autocomplete: 'current-password',
    required: true, 'data-testid': 'email-password' });
  const msg = formMessage();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'email-submit' }, 'Save address');
  const form = h('form', { class: 'settings-form', novalidate: true, 'data-testid': 'email-form' },
    h('label', { for: 'email-address' }, 'E-mail address'), address,
    h('p', { class: 'hint', id: 'email-address-hint' }, 'We send a link to confirm it. Leave it empty to remove it.'),
    h('label', { for: 'email-password' }, 'Current password'), pw, msg, h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    fieldError(address, '');
    fieldError(pw, '');
    showFormMessage(msg, '');
    if (!pw.value) { fieldError(pw, 'Enter your current password.'); pw.focus(); return; }
    submit.disabled = true;
    try {
      const value = address.value.trim();
      const d = await api('PUT', '/api/me/email', { email: value || null, password: pw.value });
      ctx.me = d.user;
      showStatus(d.user);
      pw.value = '';
      const text = !d.user.email ? 'Address removed.'
        : d.user.email_verified ? 'Saved.' : `Saved. We sent a link to ${d.user.email}: open it to confirm the address.`;
      showFormMessage(msg, text, 'info');
      ctx.announce(text);
    } catch (err) {
      const target = err.field === 'email' ? address : err.field === 'password' || err.code === 'wrong_password' ? pw : null;
      const text = err.code === 'wrong_password' ? 'That is not your current password.' : err.message;
      if (target) { fieldError(target, text); target.focus(); } else showFormMessage(msg, text);
    } finally {
      submit.disabled = false;
    }
  });
  return h('section', { class: 'card settings-card', 'aria-labelledby': 'email-title' },
    h('h2', { id: 'email-title' }, 'E-mail'),
    h('dl', { class: 'settings-facts' }, h('dt', null, 'Address'), status), form);
}

const NOTIFY = [['always', 'Always'], ['away', 'Only when I am away (no Parley tab open)'], ['never', 'Never']];
const DIGEST = [['weekly', 'Weekly'], ['daily', 'Daily'], ['off', 'Off']];

/** Mail preferences: notification mail and the digest, saved as they change. */
function preferencesCard(ctx) {
  const msg = formMessage();
  const group = (name, legend, choices, hint) => h('fieldset', { 'data-testid': `prefs-${name}` },
    h('legend', null, legend),
    choices.map(([value, label]) => h('label', { class: 'choice' },
      h('input', { type: 'radio', name, value, 'data-testid': `prefs-${name}-${value}` }), label)),
    h('p', { class: 'hint' }, hint));
  const form = h('form', { class: 'settings-form prefs-form', novalidate: true, 'data-testid': 'prefs-form' },
    group('email_notifications', 'Mail me my notifications', NOTIFY,
      'A notification is mailed a couple of minutes after it is made, unless you have read it by then.'),
    group('digest', 'A digest of what was most active while I was away', DIGEST,
      'Sent only when you have not visited for that long, and only when something is new.'),
    msg);
  const set = (prefs) => {
    for (const input of form.querySelectorAll('input[type=radio]')) input.checked = prefs[input.name] === input.value;
  };
  let saving = Promise.resolve();
  form.addEventListener('change', (e) => {
    const input = e.target;
    showFormMessage(msg, '');
    saving = saving.then(async () => {
      try {
        const d = await api('PUT', '/api/me/preferences', { [input.name]: input.value });
        set(d.preferences);
        showFormMessage(msg, 'Saved.', 'info');
      } catch (err) {
        showFormMessage(msg, err.message);
      }
    });
  });
  api('GET', '/api/me/preferences').then((d) => set(d.preferences), (err) => showFormMessage(msg, err.message));
  const needsAddress = ctx.me.email_verified ? null
    : h('p', { class: 'hint' }, 'Mail goes only to a confirmed address: add one above.');
  return h('section', { class: 'card settings-card', 'aria-labelledby': 'prefs-title' },
    h('h2', { id: 'prefs-title' }, 'Mail preferences'), needsAddress, form);
}
