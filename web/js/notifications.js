// The header bell: the unread count (live on every tab through the user channel), a list of the
// newest notifications (unread marked, each opening its post's permalink) and "Mark all read".
// The document title shows "(N) …" while N notifications are unread.

import { api } from './api.js';
import { h, icon } from './dom.js';
import { avatar, displayName, timeEl } from './ui.js';

const WHAT = {
  response: 'answered your question',
  comment: 'commented in',
  mention: 'mentioned you in',
  accepted: 'accepted your answer in',
  followed: 'responded in',
};
const PREFIX = /^\(\d+\) /;

export class Bell {
  constructor(anchor) {
    this.unread = 0;
    this.me = null;
    this.count = h('span', { class: 'bell-count', 'data-testid': 'bell-count' }, '0');
    // The name is the visible count in words ("Notifications, 3 unread"): no aria-label that hides it.
    this.button = h('button', {
      type: 'button', class: 'btn btn-quiet btn-sm bell', 'data-testid': 'bell', 'aria-haspopup': 'true',
      'aria-expanded': 'false', onClick: () => this.toggle(),
    }, icon('bell', 'icon icon-sm'), h('span', { class: 'sr-only' }, 'Notifications, '), this.count,
    h('span', { class: 'sr-only' }, ' unread'));
    this.panel = h('div', { class: 'bell-panel card', 'data-testid': 'notifications', role: 'region',
      'aria-label': 'Notifications' });
    this.panel.hidden = true;
    this.root = h('div', { class: 'bell-wrap' }, this.button, this.panel);
    this.root.hidden = true;
    anchor.before(this.root);
    // Views set the title; keep the count in front of whatever they set.
    new MutationObserver(() => this.retitle()).observe(document.querySelector('title'), { childList: true });
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !this.panel.hidden) this.close(); });
    document.addEventListener('click', (e) => { if (!this.root.contains(e.target)) this.close(); });
  }

  /** Signed in (or out): show the bell and read the count over HTTP (frames are not replayed). */
  async setUser(me) {
    this.me = me;
    this.root.hidden = !me;
    document.body.classList.toggle('signed-in', !!me); // shows the Following and Unread tabs
    if (!me) { this.setUnread(0); return; }
    try {
      const d = await api('GET', '/api/notifications?limit=20');
      this.setUnread(d.unread);
      if (!this.panel.hidden) this.fill(d.notifications);
    } catch { /* the next frame or a reconnect tries again */ }
  }

  /** A `notification` or `notifications` frame from the socket. */
  onFrame(msg) {
    if (typeof msg.unread === 'number') this.setUnread(msg.unread);
    if (msg.type === 'notification' && !this.panel.hidden) this.load();
  }

  setUnread(n) {
    this.unread = n;
    this.count.textContent = String(n);
    this.count.classList.toggle('is-zero', n === 0);
    this.retitle();
  }

  retitle() {
    const base = document.title.replace(PREFIX, '');
    const want = this.unread ? `(${this.unread}) ${base}` : base;
    if (document.title !== want) document.title = want;
  }

  toggle() { if (this.panel.hidden) this.open(); else this.close(); }

  open() {
    this.panel.hidden = false;
    this.button.setAttribute('aria-expanded', 'true');
    this.load();
  }

  close() {
    this.panel.hidden = true;
    this.button.setAttribute('aria-expanded', 'false');
  }

  async load() {
    try {
      const d = await api('GET', '/api/notifications?limit=20');
      this.setUnread(d.unread);
      this.fill(d.notifications);
    } catch (e) {
      this.panel.replaceChildren(h('p', { class: 'form-msg is-error' }, e.message));
    }
  }

  fill(items) {
    const markAll = h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'mark-all-read',
      onClick: () => this.markRead({ all: true }) }, 'Mark all read');
    markAll.disabled = this.unread === 0;
    const list = items.length ? h('ul', { class: 'bell-list' }, items.map((n) => h('li', {
      class: ['bell-item', !n.read && 'is-unread'], 'data-testid': 'notification', dataset: { id: n.id },
    }, h('a', {
      href: `/t/${n.thread.id}#post-${n.post_id}`,
      onClick: () => { this.close(); if (!n.read) this.markRead({ ids: [n.id] }); },
    }, avatar(n.actor, 'xs'), ' ', h('strong', { dir: 'auto' }, displayName(n.actor)), ` ${WHAT[n.kind] || n.kind} `,
    h('em', { dir: 'auto' }, n.thread.title)),
    ' ', timeEl(n.created_at, 'relative'))))
      : h('p', { class: 'empty' }, 'Nothing yet.');
    this.panel.replaceChildren(h('div', { class: 'bell-head' }, h('strong', null, 'Notifications'), markAll), list);
  }

  async markRead(body) {
    try {
      const d = await api('POST', '/api/notifications/read', body);
      this.setUnread(d.unread);
      if (!this.panel.hidden) this.load();
    } catch { /* shown again on the next open */ }
  }
}
