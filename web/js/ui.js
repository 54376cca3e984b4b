// Shared pieces of the page: avatars, breadcrumbs, thread lists, dialogs, form errors.

import { tagChips } from './tags.js';
import { h, icon } from './dom.js';
import { formatDateTime, formatRelative, plural } from './format.js';

export function displayName(user) {
  if (!user) return 'Someone';
  return user.display_name || user.username || 'Someone';
}

// Text that a user wrote never reorders the text around it: in the page every name and title sits in an
// element with `dir` (auto) or in <bdi>, each an isolate; in plain strings (dialog titles, messages, tooltips)
// isolated() wraps it in FSI…PDI, after removing the direction controls it holds, so none can close the
// isolate early (docs/security.md, "Names that reorder or impersonate").
const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069]/g;

/** `text` as a first-strong isolate for use inside a plain string. */
export function isolated(text) {
  return `\u2068${String(text ?? '').replace(BIDI_CONTROLS, '')}\u2069`;
}

/** A string built with isolated() as nodes: each isolated part in a <bdi> (no invisible characters left). */
export function isolatedNodes(text) {
  return String(text).split(/\u2068([^\u2069]*)\u2069/).map((part, i) => (i % 2 ? h('bdi', null, part) : part))
    .filter((part) => part !== '');
}

/** A user's display name, isolated, for use inside a sentence of plain strings. */
export function isolatedName(user) {
  return isolated(displayName(user));
}

/** A user's name linking to their profile (/u/USERNAME). */
export function userLink(user, cls = 'name') {
  if (!user || !user.username) return h('span', { class: cls, dir: 'auto' }, displayName(user));
  return h('a', { class: [cls, 'user-link'], href: `/u/${encodeURIComponent(user.username)}`, dir: 'auto' },
    displayName(user));
}

/**
 * "@username", quiet, beside a display name wherever who wrote or who is here matters (posts, edits, Active
 * Now): display names are free and may copy one another; usernames are unique. Left to right on its own.
 */
export function userHandle(user) {
  if (!user || !user.username) return null;
  return h('span', { class: 'handle', dir: 'ltr', 'data-testid': 'user-handle' }, `@${user.username}`);
}

/** The name linking to the profile, then its @username. */
export function userLinkWithHandle(user, cls = 'name') {
  const handle = userHandle(user);
  return handle ? [userLink(user, cls), ' ', handle] : [userLink(user, cls)];
}

function initials(user) {
  const name = displayName(user).trim();
  const parts = name.split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : name.slice(0, 2);
  return [...letters].slice(0, 2).join('').toUpperCase();
}

const AVATAR_URL = /^\/uploads\/[0-9a-f]{64}\.(png|jpg|webp)$/;

/** A round avatar: the user's picture (CONTRACT "Pictures": avatar_url), else initials; the colour comes from
 * the user id (8 palette classes). Decorative: the name is always shown beside it. */
export function avatar(user, size = '') {
  const hue = user && Number.isFinite(user.id) ? Math.abs(user.id) % 8 : 0;
  const cls = ['avatar', `av-${hue}`, size && `avatar-${size}`];
  if (user && typeof user.avatar_url === 'string' && AVATAR_URL.test(user.avatar_url)) {
    return h('img', { class: [...cls, 'avatar-img'], src: user.avatar_url, alt: '', loading: 'lazy',
      'aria-hidden': 'true', width: '64', height: '64', 'data-testid': 'avatar-img' });
  }
  return h('span', { class: cls, 'aria-hidden': 'true' }, initials(user));
}

/** <time> with a machine-readable datetime and the full local time as a tooltip. */
export function timeEl(iso, mode = 'full') {
  const text = mode === 'relative' ? formatRelative(iso) : formatDateTime(iso);
  const el = h('time', { datetime: iso, title: formatDateTime(iso) }, text);
  if (mode === 'relative') el.dataset.relative = '1';
  return el;
}

/** Refresh every relative time on the page (called once a minute). */
export function refreshRelativeTimes(root = document) {
  for (const el of root.querySelectorAll('time[data-relative]')) {
    el.textContent = formatRelative(el.getAttribute('datetime'));
  }
}

/** "Discussion » Questions » Current Events and News" with links; the last item is current. */
export function breadcrumb(path, { currentIsLink = false, extra = null } = {}) {
  const items = [h('li', null, h('a', { href: '/' }, 'Home'))];
  (path || []).forEach((p, i) => {
    const last = i === path.length - 1 && !currentIsLink && !extra;
    items.push(h('li', null, last
      ? h('span', { 'aria-current': 'page', dir: 'auto' }, p.name)
      : h('a', { href: `/c/${encodeURIComponent(p.slug)}`, dir: 'auto' }, p.name)));
  });
  if (extra) items.push(h('li', null, h('span', { 'aria-current': 'page', class: 'crumb-current', dir: 'auto' }, extra)));
  return h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb', 'data-testid': 'breadcrumb' }, h('ol', null, items));
}

/** One row of a thread list. */
export function threadItem(t) {
  const count = t.response_count || 0;
  const cat = t.category || {};
  // The reader's part (unread, following) and seq ride along for live rows (livelist.js).
  const reader = { threadId: t.id, seq: t.seq ?? '', following: String(!!t.following) };
  if (t.unread !== null && t.unread !== undefined) reader.unread = t.unread;
  return h('li', { class: 'thread-item', dataset: reader },
    h('div', { class: ['thread-count', count === 0 && 'is-zero'], title: plural(count, 'response') },
      h('strong', null, String(count)), h('span', null, count === 1 ? 'response' : 'responses')),
    h('div', { class: 'thread-main' },
      h('a', { class: 'thread-link', href: `/t/${t.id}`, dir: 'auto' }, t.title),
      t.locked ? h('span', { class: 'badge badge-locked', title: 'Locked' }, icon('lock'), 'Locked') : null,
      t.duplicate_of ? h('span', { class: 'badge badge-duplicate', 'data-testid': 'duplicate-badge' }, 'Duplicate') : null,
      tagChips(t.tags),
      h('div', { class: 'thread-meta' },
        t.accepted_id ? h('span', { class: 'badge badge-answered', 'data-testid': 'answered' }, '✓ answered') : null,
        t.unread ? h('span', { class: 'badge badge-unread', 'data-testid': 'thread-unread' }, `${t.unread} new`) : null,
        Number.isFinite(t.score) ? h('span', { class: 'meta-score', 'data-testid': 'thread-score' },
          plural(t.score, 'vote')) : null,
        cat.slug ? h('a', { class: 'chip', href: `/c/${encodeURIComponent(cat.slug)}`, dir: 'auto' }, cat.name) : null,
        h('span', { class: 'meta-author' }, 'asked by ', userLink(t.author)),
        h('span', { class: 'meta-activity' }, icon('clock', 'icon icon-sm'), 'active ',
          timeEl(t.last_activity_at || t.created_at, 'relative')))));
}

export function threadList(threads, emptyText) {
  if (!threads.length) return h('p', { class: 'empty' }, emptyText);
  return h('ol', { class: 'thread-list', 'data-testid': 'thread-list' }, threads.map(threadItem));
}

/** A status line for a form; error messages get role=alert. */
export function formMessage() {
  const el = h('p', { class: 'form-msg', 'aria-live': 'polite', 'data-testid': 'form-error' });
  el.hidden = true;
  return el;
}

export function showFormMessage(el, text, kind = 'error') {
  el.textContent = text || '';
  el.hidden = !text;
  el.classList.toggle('is-error', kind === 'error');
  el.classList.toggle('is-info', kind === 'info');
  if (kind === 'error' && text) el.setAttribute('role', 'alert'); else el.removeAttribute('role');
}

/** Mark a field invalid (or clear it) with a message shown right under it. */
export function fieldError(input, message) {
  const id = `${input.id || input.name}-error`;
  let el = document.getElementById(id);
  if (!el) {
    el = h('p', { class: 'field-error', id });
    input.insertAdjacentElement('afterend', el);
  }
  el.textContent = message || '';
  el.hidden = !message;
  if (message) {
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', id);
  } else {
    input.removeAttribute('aria-invalid');
  }
}

/** A modal <dialog>; resolves true when confirmed. Never window.confirm. */
export function confirmDialog(title, text, confirmLabel = 'Delete') {
  return new Promise((resolve) => {
    const ok = h('button', { type: 'button', class: 'btn btn-danger', 'data-testid': 'confirm-ok' }, confirmLabel);
    const cancel = h('button', { type: 'button', class: 'btn', 'data-testid': 'confirm-cancel' }, 'Cancel');
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'dlg-title', 'data-testid': 'confirm-dialog' },
      h('h2', { id: 'dlg-title' }, title), h('p', null, text), h('div', { class: 'dialog-actions' }, cancel, ok));
    let answer = false;
    ok.addEventListener('click', () => { answer = true; dlg.close(); });
    cancel.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => { dlg.remove(); resolve(answer); });
    document.body.append(dlg);
    dlg.showModal();
    cancel.focus();
  });
}

/** A modal with arbitrary content and a close button. */
export function openDialog(title, content, testid = 'dialog') {
  const close = h('button', { type: 'button', class: 'btn btn-quiet dialog-close', 'aria-label': 'Close' }, '×');
  const dlg = h('dialog', { class: 'dialog dialog-wide', 'aria-labelledby': 'dlg-title', 'data-testid': testid },
    h('div', { class: 'dialog-head' }, h('h2', { id: 'dlg-title' }, title), close), content);
  close.addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  close.focus();
  return dlg;
}

let toastTimer = null;
/** A short message at the bottom of the screen (e.g. "Sign in to vote"). */
export function toast(text, ms = 4000) {
  const el = document.getElementById('toast');
  if (!el) return;
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, ms);
}

export function hideToast() {
  const el = document.getElementById('toast');
  if (el) el.hidden = true;
  clearTimeout(toastTimer);
}

export function loading(label = 'Loading…') {
  return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), label);
}

export function errorPanel(title, text, action = null) {
  return h('section', { class: 'panel panel-empty' }, h('h1', null, title), h('p', null, text), action);
}

/** Submit a form with Ctrl/Cmd+Enter from its textarea. */
export function submitOnCtrlEnter(textarea, form) {
  textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
}
