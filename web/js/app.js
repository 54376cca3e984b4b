// Parley's single-page app: routing, the header (account, Active Now,
// connection state) and the one websocket shared by every view.

import { api, forgetPreloaded } from './api.js';
import { h } from './dom.js';
import { openLive } from './liveclient.js';
import { onDraftFrame, reloadDrafts, setDraftUser } from './drafts.js';
import { avatar, hideToast, openDialog, refreshRelativeTimes, toast, userLink, userLinkWithHandle } from './ui.js';
import { renderHome } from './views/home.js';
import { renderCategory } from './views/category.js';
import { renderThread } from './views/thread.js';
import { renderAuth } from './views/auth.js';
import { renderNotFound } from './views/notfound.js';
import { renderProfile } from './views/profile.js';
import { renderSearch } from './views/search.js';
import { renderSettings } from './views/settings.js';
import { renderFlags } from './views/flags.js';
import { renderModlog } from './views/modlog.js';
import { renderDevelopers } from './views/developers.js';
import { renderForgot, renderReset, renderUnsubscribe, renderVerify } from './views/email.js';
import { followPermalink } from './permalink.js';
import { Bell } from './notifications.js';
import { signedOutReason } from './signedout.js';
import './mention.js';
import { LIMITS } from './limits.js';

const main = document.getElementById('main');
const accountEl = document.getElementById('account');
const activeList = document.getElementById('active-now-list');
const activeGuests = document.getElementById('active-now-guests');
const connEl = document.getElementById('connection-status');
const liveRegion = document.getElementById('live-region');
const bell = new Bell(accountEl);
const SIGNED_OUT_TOAST_MS = 12000; // long enough to read a reason and a date

const ROUTES = [
  [/^\/$/, renderHome],
  [/^\/c\/([^/]+)\/?$/, (m, p, c) => renderCategory(m, { slug: decodeURIComponent(p[1]) }, c)],
  [/^\/t\/(\d+)(?:\/[^/]*)?\/?$/, (m, p, c) => renderThread(m, { id: Number(p[1]) }, c)],
  [/^\/u\/([^/]+)\/?$/, (m, p, c) => renderProfile(m, { username: decodeURIComponent(p[1]) }, c)],
  [/^\/search\/?$/, renderSearch],
  [/^\/signin\/?$/, (m, p, c) => formPage(renderAuth(m, { mode: 'signin' }, c))],
  [/^\/signup\/?$/, (m, p, c) => formPage(renderAuth(m, { mode: 'signup' }, c))],
  [/^\/settings\/?$/, renderSettings],
  [/^\/review\/?$/, renderFlags],
  [/^\/modlog\/?$/, renderModlog],
  [/^\/developers\/?$/, renderDevelopers],
  [/^\/forgot-password\/?$/, (m, p, c) => formPage(renderForgot(m, {}, c))],
  [/^\/reset-password\/?$/, (m, p, c) => formPage(renderReset(m, {}, c))],
  [/^\/verify-email\/?$/, (m, p, c) => formPage(renderVerify(m, {}, c))],
  [/^\/unsubscribe\/?$/, (m, p, c) => formPage(renderUnsubscribe(m, {}, c))],
];

let disposeView = null;
let categoriesPromise = null;
// Back/forward: each history entry keeps its scroll position (and what its view
// saved, e.g. how many rows a list had); the view calls ctx.ready() once its
// content is there, and the position is restored then.
let restoreScroll = null;
let focusHeading = false;
// Other tabs of this browser hear about a sign-out at once (the server's 4001
// close tells tabs in other browsers, and this one too).
const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('parley') : null;
if ('scrollRestoration' in history) history.scrollRestoration = 'manual';

const ctx = {
  me: null,
  live: null,
  navigate,
  announce,
  setTitle(text) { document.title = text ? `${text} · Parley` : 'Parley'; },
  categories(force = false) {
    if (!categoriesPromise || force) {
      categoriesPromise = api('GET', '/api/categories').then((d) => d.categories || []);
      categoriesPromise.catch(() => { categoriesPromise = null; });
    }
    return categoriesPromise;
  },
  async setMe(user) {
    const changed = (user && user.id) !== (ctx.me && ctx.me.id);
    ctx.me = user;
    bell.setUser(user);
    setDraftUser(user);
    renderAccount();
    if (changed) ctx.live.restart(); // the socket's identity (and presence) follows the cookie
  },
  async signOut() {
    try {
      await api('DELETE', '/api/session');
    } catch (e) {
      if (e.status !== 401) { toast(e.message); return; }
    }
    if (channel) channel.postMessage({ type: 'signed-out' });
    await ctx.setMe(null);
    rerender();
    toast('You are signed out.');
  },
  /** A password change in flight in this tab (a promise), set by the settings view: a 4001 that arrives
   * meanwhile is judged once it is done, with the new cookie in place. */
  credentialChange: null,
  /** The socket's session ended (a 4001 close). After a password change (here, or in another tab of this
   * browser) the cookie holds the new session: stay signed in, silently. Else show signed out. */
  async sessionClosed() {
    if (!ctx.me) return;
    if (ctx.credentialChange) {
      try { await ctx.credentialChange; } catch { /* it failed: the old cookie is all there is */ }
    }
    try {
      const d = await api('GET', '/api/me');
      if (ctx.me && d.user && d.user.id === ctx.me.id) { ctx.me = d.user; return; }
      ctx.me = d.user; // someone else signed in in another tab meanwhile
      renderAccount();
      bell.setUser(d.user);
      setDraftUser(d.user);
      rerender();
    } catch (e) {
      // 401: the session is gone. Anything else (offline): the socket's next hello tells (onHello).
      if (e.status === 401) ctx.sessionEnded({ reconnect: false });
    }
  },
  /** The session ended elsewhere (another tab, a 4001 close, a 401): show the signed-out page, drafts kept. */
  sessionEnded({ reconnect = true, why = null } = {}) {
    if (!ctx.me) return;
    const was = ctx.me;
    ctx.me = null;
    renderAccount();
    bell.setUser(null);
    setDraftUser(null);
    if (reconnect) ctx.live.restart(); // come back as a guest
    rerender(); // first: a redraw hides the toast
    toast(why || 'You were signed out.', SIGNED_OUT_TOAST_MS);
    if (!why) {
      // Say why (a suspension until when, and its reason; or a session ended elsewhere): signedout.js.
      signedOutReason(was).then((text) => { if (text && !ctx.me) toast(text, SIGNED_OUT_TOAST_MS); });
    }
  },
  /** What the current history entry's view saved (see saveViewState). */
  viewState() { return (history.state && history.state.view) || {}; },
  saveViewState(view) {
    history.replaceState({ ...(history.state || {}), view: { ...ctx.viewState(), ...view } }, '');
  },
  /** A view has its content: restore the scroll position (back/forward) and focus its heading. */
  ready() {
    if (restoreScroll !== null) {
      window.scrollTo(0, restoreScroll);
      restoreScroll = null;
    }
    if (focusHeading) {
      focusHeading = false;
      const heading = main.querySelector('h1');
      if (heading) {
        if (!heading.hasAttribute('tabindex')) heading.setAttribute('tabindex', '-1');
        heading.focus({ preventScroll: true });
      }
    }
  },
};

/** Render the current view again where the reader is (e.g. after signing out). */
function rerender() {
  forgetPreloaded(); // made for the reader the page was rendered for
  restoreScroll = window.scrollY;
  focusHeading = false;
  route();
}

/** A view that renders at once and focuses its own first field. */
function formPage(dispose) {
  focusHeading = false;
  ctx.ready();
  return dispose;
}

function rememberScroll() {
  history.replaceState({ ...(history.state || {}), scrollY: Math.round(window.scrollY) }, '');
}

/** Announce a short text to screen readers (aria-live region). */
function announce(text) {
  liveRegion.textContent = '';
  setTimeout(() => { liveRegion.textContent = text; }, 50);
}

function navigate(path, { replace = false } = {}) {
  forgetPreloaded(); // only the page's first view is the server's
  if (replace) {
    history.replaceState(null, '', path);
  } else {
    rememberScroll();
    history.pushState(null, '', path);
  }
  restoreScroll = null;
  focusHeading = true;
  route();
  window.scrollTo(0, 0);
}

function route() {
  if (disposeView) { try { disposeView(); } catch (e) { console.error(e); } }
  disposeView = null;
  hideToast();
  main.replaceChildren();
  main.removeAttribute('data-server-rendered');
  const path = location.pathname;
  let handled = false;
  for (const [re, fn] of ROUTES) {
    const m = path.match(re);
    if (m) {
      const dispose = fn(main, m, ctx) || null;
      const stopPermalink = followPermalink(main);
      disposeView = () => { stopPermalink(); if (dispose) dispose(); };
      handled = true;
      break;
    }
  }
  if (!handled) disposeView = renderNotFound(main, {}, ctx) || null;
  for (const a of document.querySelectorAll('.site-nav a')) {
    a.toggleAttribute('aria-current', a.getAttribute('href') === path);
  }
}

// Moderators: posts waiting in the review queue (live: the server sends a `flags` frame on each change).
let openFlags = null;
let openFlagsFor = null;

function reviewLink() {
  if (!ctx.me || !ctx.me.is_moderator) return null;
  if (openFlagsFor !== ctx.me.id) {
    openFlagsFor = ctx.me.id;
    api('GET', '/api/flags?limit=1').then((d) => { openFlags = d.open; renderAccount(); }).catch(() => {});
  }
  const n = openFlags || 0;
  return h('a', { class: ['btn', 'btn-quiet', 'btn-sm', n ? 'has-flags' : null], href: '/review',
    'data-testid': 'review-link' },
  'Review', n ? h('span', { class: 'count-badge', 'data-testid': 'review-count-badge' }, String(n)) : null,
  n ? h('span', { class: 'sr-only' }, ' waiting') : null);
}

function renderAccount() {
  const next = encodeURIComponent(location.pathname + location.search);
  if (ctx.me) {
    // replaceChildren() would write a null (no Review link for a member) as the text "null".
    accountEl.replaceChildren(...[
      h('span', { class: 'whoami', 'data-testid': 'whoami', dir: 'auto' }, h('span', { class: 'sr-only' }, 'Signed in as '),
        userLink(ctx.me, 'whoami-name')),
      reviewLink(),
      h('a', { class: 'btn btn-quiet btn-sm', href: '/settings', 'data-testid': 'settings-link' }, 'Settings'),
      h('button', { type: 'button', class: 'btn btn-quiet btn-sm', 'data-testid': 'sign-out', onClick: () => ctx.signOut() },
        'Sign out')].filter(Boolean));
  } else {
    accountEl.replaceChildren(
      h('a', { class: 'btn btn-quiet btn-sm', href: `/signin?next=${next}`, 'data-testid': 'sign-in' }, 'Sign in'),
      h('a', { class: 'btn btn-primary btn-sm', href: `/signup?next=${next}`, 'data-testid': 'sign-up' }, 'Sign up'));
  }
}

const ACTIVE_SHOWN = 6; // names in the header; the rest behind "+N more"

let lastPresence = null;

/** Active Now on one line at every width: as many names as fit (at most ACTIVE_SHOWN), then "+N more". */
function renderActiveNow(msg) {
  lastPresence = msg;
  const users = msg.users || [];
  const guests = msg.guests || 0;
  const total = Math.max(Number(msg.count) || 0, users.length); // a frame lists at most 50 (contract)
  const shown = users.slice(0, ACTIVE_SHOWN);
  let tail = '';
  if (users.length && guests) tail = `and ${guests} ${guests === 1 ? 'guest' : 'guests'}`;
  else if (!users.length && guests) tail = `${guests} ${guests === 1 ? 'guest' : 'guests'}`;
  else if (!users.length) tail = 'Nobody yet';
  activeGuests.textContent = tail;
  activeGuests.dataset.guests = String(guests);
  const items = shown.map((u) => h('li', { dataset: { userId: u.id }, dir: 'auto' },
    avatar(u, 'xs'), userLinkWithHandle(u, 'active-name')));
  const moreButton = h('button', { type: 'button', class: 'link-btn', 'data-testid': 'active-more',
    'aria-haspopup': 'dialog', onClick: () => showEveryone(total, guests) });
  const moreItem = h('li', { class: 'active-more' }, moreButton);
  const setMore = () => {
    const hidden = total - items.length;
    moreButton.textContent = `+${hidden} more`;
    if (hidden > 0 && !moreItem.isConnected) activeList.append(moreItem);
  };
  activeList.replaceChildren(...items);
  setMore();
  // One line: drop names from the end (into "+N more") while the line overflows.
  while (items.length && activeList.scrollWidth > activeList.clientWidth + 1) {
    items.pop().remove();
    setMore();
  }
}

// A narrower window fits fewer names: lay the line out again (once per frame).
let refitQueued = false;
new ResizeObserver(() => {
  if (refitQueued || !lastPresence) return;
  refitQueued = true;
  requestAnimationFrame(() => { refitQueued = false; renderActiveNow(lastPresence); });
}).observe(activeList.parentElement);

const EVERYONE_PAGE = 50; // names per GET /api/presence page in the "+N more" dialog

/**
 * Everyone online, in a dialog, read page by page from GET /api/presence (by name): a frame
 * lists at most 50, and a busy site has far more. "Show more" fetches the next page on demand
 * and puts the keyboard on its first new name.
 */
function showEveryone(total, guests) {
  const list = h('ul', { class: 'everyone', 'data-testid': 'active-everyone', 'aria-label': 'Signed in now' });
  const status = h('p', { class: 'everyone-status', role: 'status', 'data-testid': 'active-everyone-status' },
    'Loading…');
  const more = h('button', { type: 'button', class: 'btn btn-block more', 'data-testid': 'active-everyone-more',
    hidden: true }, 'Show more');
  const guestNote = h('p', { 'data-testid': 'active-everyone-guests' });
  const dlg = openDialog(`Active now: ${total} signed in`, h('div', null, list, status, more, guestNote),
    'active-dialog');
  const title = dlg.querySelector('h2');
  const seen = new Set(); // a page can repeat a name when someone arrives or leaves between pages
  let next = null;
  const load = async () => {
    more.disabled = true;
    try {
      const d = await api('GET', `/api/presence?limit=${EVERYONE_PAGE}${next ? `&after=${encodeURIComponent(next)}` : ''}`);
      if (!dlg.isConnected) return null;
      const added = [];
      for (const u of d.users || []) {
        if (seen.has(u.id)) continue;
        seen.add(u.id);
        const li = h('li', { dir: 'auto', dataset: { userId: u.id } }, avatar(u, 'xs'),
          userLinkWithHandle(u, 'everyone-name'));
        list.append(li);
        added.push(li);
      }
      next = d.next || null;
      const count = Math.max(Number(d.count) || 0, seen.size);
      title.textContent = `Active now: ${count} signed in`;
      status.textContent = next ? `Showing ${seen.size} of ${count}` : '';
      more.textContent = 'Show more';
      more.hidden = !next;
      const g = Number(d.guests) || 0;
      guestNote.textContent = g ? `and ${g} ${g === 1 ? 'guest' : 'guests'}` : '';
      return added;
    } catch (e) {
      if (!dlg.isConnected) return null;
      status.textContent = `Could not load the list: ${e.message}`;
      more.textContent = 'Try again';
      more.hidden = false;
      return null;
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', async () => {
    const added = await load();
    const link = added && added.length && added[0].querySelector('a');
    if (link) link.focus();
    else if (more.hidden) dlg.querySelector('.dialog-close').focus(); // nothing left to show: never focus a hidden button
  });
  list.addEventListener('click', (e) => { if (e.target.closest('a')) dlg.close(); }); // a profile opens behind a modal otherwise
  guestNote.textContent = guests ? `and ${guests} ${guests === 1 ? 'guest' : 'guests'}` : '';
  load();
}

const STATUS_TEXT = { online: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', offline: 'Offline' };

function renderStatus(status) {
  const was = connEl.dataset.state;
  connEl.dataset.state = status;
  connEl.dataset.transport = ctx.live ? ctx.live.transport : 'ws'; // 'sse' where websockets are refused
  connEl.querySelector('.conn-text').textContent = STATUS_TEXT[status] || status;
  connEl.classList.toggle('is-visible', status !== 'online');
  // Back after a loss: what waited for the connection (queued posts, failed views) goes now (failed.js, composer.js).
  if (status === 'online' && was && was !== 'online' && was !== 'connecting') {
    window.dispatchEvent(new CustomEvent('parley:back'));
  }
}

// Same-origin links to app pages are handled without a page load.
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  if (/^\/(api|static|ws|healthz|readyz|metrics|auth|feeds)(\/|$)/.test(url.pathname)) return; // not the page's
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  e.preventDefault();
  navigate(url.pathname + url.search + url.hash); // the hash too: a permalink (#post-ID) names the post
});

// The header's search box: results without a page load; "/" focuses it from anywhere but a field.
const searchForm = document.querySelector('.site-search');
const searchInput = document.getElementById('site-search-q');
// "/" is a keyboard's shortcut: a touch screen without a keyboard is not told about it.
const touchOnly = window.matchMedia('(hover: none) and (pointer: coarse)');
const sayShortcut = () => {
  searchInput.placeholder = touchOnly.matches ? 'Search' : 'Search  ( / )';
  searchInput.toggleAttribute('aria-keyshortcuts', !touchOnly.matches);
  if (!touchOnly.matches) searchInput.setAttribute('aria-keyshortcuts', '/');
};
sayShortcut();
touchOnly.addEventListener('change', sayShortcut);
searchInput.maxLength = LIMITS.search_q_max;
searchForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const q = searchInput.value.trim();
  if (q) navigate(`/search?q=${encodeURIComponent(q)}`);
});
document.addEventListener('keydown', (e) => {
  if (e.key !== '/' || e.metaKey || e.ctrlKey || e.altKey) return;
  const t = e.target;
  if (t.closest && t.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]')) return;
  e.preventDefault();
  searchInput.focus();
  searchInput.select();
});

window.addEventListener('popstate', () => {
  forgetPreloaded();
  restoreScroll = (history.state && history.state.scrollY) || 0;
  focusHeading = true;
  route();
});
let scrollTimer = null;
window.addEventListener('scroll', () => {
  clearTimeout(scrollTimer);
  scrollTimer = setTimeout(() => { if (restoreScroll === null) rememberScroll(); }, 200);
}, { passive: true });
if (channel) {
  channel.onmessage = (e) => {
    if (e.data && e.data.type === 'signed-out') ctx.sessionEnded({ why: 'You signed out in another tab.' });
  };
}
setInterval(() => refreshRelativeTimes(), 60000);

async function boot() {
  let firstHello = null; // resolves with the first hello's user: guests need no /api/me (and no 401)
  const hello = new Promise((resolve) => { firstHello = resolve; });
  ctx.live = openLive({ // one connection for all the tabs (liveclient.js)
    onStatus: renderStatus,
    onSitePresence: renderActiveNow,
    onNotification: (msg) => bell.onFrame(msg),
    // On the user channel (again, after a reconnect): read the count over HTTP, frames are not replayed.
    onUserChannel: () => { if (ctx.me) { bell.setUser(ctx.me); reloadDrafts(); } },
    onDraft: onDraftFrame,
    onSessionEnded: () => ctx.sessionClosed(), // Live reconnects once it has settled
    onFlagCount: (n) => { openFlags = n; renderAccount(); },
    // A silence: the open view (a thread) hides that member's posts, or rereads them when it is lifted.
    onSilenced: (msg) => window.dispatchEvent(new CustomEvent('parley:silenced', { detail: msg })),
    onHello: (user) => {
      if (firstHello) { firstHello(user); firstHello = null; return; }
      if ((user && user.id) === (ctx.me && ctx.me.id)) return;
      if (!user) { ctx.sessionEnded({ reconnect: false }); return; } // the cookie expired or was signed out elsewhere
      // Signed in elsewhere: ask who we are now (moderator flag and all), then show it.
      api('GET', '/api/me').then((d) => { ctx.me = d.user; renderAccount(); bell.setUser(d.user); setDraftUser(d.user); rerender(); })
        .catch(() => { ctx.me = null; renderAccount(); bell.setUser(null); setDraftUser(null); rerender(); });
    },
  });
  renderStatus('connecting');
  ctx.live.start();
  // Wait for the socket's hello a moment; if it is slow, ask over HTTP instead.
  const user = await Promise.race([hello, new Promise((r) => { setTimeout(() => r(undefined), 3000); })]);
  if (user !== null) {
    try {
      const d = await api('GET', '/api/me');
      ctx.me = d.user;
    } catch {
      ctx.me = null;
    }
  }
  firstHello = null;
  renderAccount();
  bell.setUser(ctx.me);
  setDraftUser(ctx.me); // the views' boxes fill in when the list arrives (drafts.js)
  route();
}

boot();
