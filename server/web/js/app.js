// Parley's single-page app: routing, the header (account, Active Now,
// connection state) and the one websocket shared by every view.

import { api } from './api.js';
import { h } from './dom.js';
import { Live } from './live.js';
import { displayName, refreshRelativeTimes, toast, userLink } from './ui.js';
import { renderHome } from './views/home.js';
import { renderCategory } from './views/category.js';
import { renderThread } from './views/thread.js';
import { renderAuth } from './views/auth.js';
import { renderNotFound } from './views/notfound.js';
import { renderProfile } from './views/profile.js';
import { renderSearch } from './views/search.js';
import { followPermalink } from './permalink.js';

const main = document.getElementById('main');
const accountEl = document.getElementById('account');
const activeList = document.getElementById('active-now-list');
const activeGuests = document.getElementById('active-now-guests');
const connEl = document.getElementById('connection-status');
const liveRegion = document.getElementById('live-region');

const ROUTES = [
  [/^\/$/, renderHome],
  [/^\/c\/([^/]+)\/?$/, (m, p, c) => renderCategory(m, { slug: decodeURIComponent(p[1]) }, c)],
  [/^\/t\/(\d+)(?:\/[^/]*)?\/?$/, (m, p, c) => renderThread(m, { id: Number(p[1]) }, c)],
  [/^\/u\/([^/]+)\/?$/, (m, p, c) => renderProfile(m, { username: decodeURIComponent(p[1]) }, c)],
  [/^\/search\/?$/, renderSearch],
  [/^\/signin\/?$/, (m, p, c) => renderAuth(m, { mode: 'signin' }, c)],
  [/^\/signup\/?$/, (m, p, c) => renderAuth(m, { mode: 'signup' }, c)],
];

let disposeView = null;
let categoriesPromise = null;

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
    renderAccount();
    if (changed) ctx.live.restart(); // the socket's identity (and presence) follows the cookie
  },
  async signOut() {
    try {
      await api('DELETE', '/api/session');
    } catch (e) {
      if (e.status !== 401) { toast(e.message); return; }
    }
    await ctx.setMe(null);
    toast('You are signed out.');
    route();
  },
};

/** Announce a short text to screen readers (aria-live region). */
function announce(text) {
  liveRegion.textContent = '';
  setTimeout(() => { liveRegion.textContent = text; }, 50);
}

function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  route();
  window.scrollTo(0, 0);
}

function route() {
  if (disposeView) { try { disposeView(); } catch (e) { console.error(e); } }
  disposeView = null;
  main.replaceChildren();
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

function renderAccount() {
  const next = encodeURIComponent(location.pathname + location.search);
  if (ctx.me) {
    accountEl.replaceChildren(
      h('span', { class: 'whoami', 'data-testid': 'whoami' }, h('span', { class: 'sr-only' }, 'Signed in as '),
        userLink(ctx.me, 'whoami-name')),
      h('button', { type: 'button', class: 'btn btn-quiet btn-sm', 'data-testid': 'sign-out', onClick: () => ctx.signOut() },
        'Sign out'));
  } else {
    accountEl.replaceChildren(
      h('a', { class: 'btn btn-quiet btn-sm', href: `/signin?next=${next}`, 'data-testid': 'sign-in' }, 'Sign in'),
      h('a', { class: 'btn btn-primary btn-sm', href: `/signup?next=${next}`, 'data-testid': 'sign-up' }, 'Sign up'));
  }
}

function renderActiveNow(msg) {
  const users = msg.users || [];
  const guests = msg.guests || 0;
  activeList.replaceChildren(...users.map((u) => h('li', { dataset: { userId: u.id } }, userLink(u, 'active-name'))));
  let tail = '';
  if (users.length && guests) tail = `and ${guests} ${guests === 1 ? 'guest' : 'guests'}`;
  else if (!users.length && guests) tail = `${guests} ${guests === 1 ? 'guest' : 'guests'}`;
  else if (!users.length) tail = 'Nobody yet';
  activeGuests.textContent = tail;
  activeGuests.dataset.guests = String(guests);
}

const STATUS_TEXT = { online: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…' };

function renderStatus(status) {
  connEl.dataset.state = status;
  connEl.querySelector('.conn-text').textContent = STATUS_TEXT[status] || status;
  connEl.classList.toggle('is-visible', status !== 'online');
}

// Same-origin links to app pages are handled without a page load.
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  if (/^\/(api|static|ws|healthz|readyz|metrics)(\/|$)/.test(url.pathname)) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  e.preventDefault();
  navigate(url.pathname + url.search + url.hash); // the hash too: a permalink (#post-ID) names the post
});

// The header's search box: results without a page load; "/" focuses it from anywhere but a field.
const searchForm = document.querySelector('.site-search');
const searchInput = document.getElementById('site-search-q');
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

window.addEventListener('popstate', route);
setInterval(() => refreshRelativeTimes(), 60000);

async function boot() {
  ctx.live = new Live({
    onStatus: renderStatus,
    onSitePresence: renderActiveNow,
    onHello: (user) => {
      if ((user && user.id) !== (ctx.me && ctx.me.id)) {
        // The cookie changed under us (expired, or signed in elsewhere): ask again.
        api('GET', '/api/me').then((d) => { ctx.me = d.user; renderAccount(); })
          .catch(() => { ctx.me = null; renderAccount(); });
      }
    },
  });
  renderStatus('connecting');
  try {
    const d = await api('GET', '/api/me');
    ctx.me = d.user;
  } catch {
    ctx.me = null;
  }
  renderAccount();
  ctx.live.start();
  route();
}

boot();
