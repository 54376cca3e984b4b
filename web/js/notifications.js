// The header bell: unread notifications grouped by thread and kind (bellgroups.js: "12 new responses in
// Cast iron…", the newest actors' names), live on every tab through the user channel; a row opens its
// group's first unread post and marks the group read; "Mark all read". The count on the bell and "(N) …" in
// the document title count unread groups, not rows.

import { api } from './api.js';
import { h, icon } from './dom.js';
import { actorNames, groupLead, groupNotifications, unreadGroups } from './bellgroups.js';
import { avatar, isolatedName, isolatedNodes, timeEl } from './ui.js';

const PAGE = 100; // notifications per request (the API's most)
const PAGES = 5; // at most this many requests for one count: 500 notifications
const RELOAD_MS = 250; // frames come in bursts (one per post): one reload per burst
const PREFIX = /^\(\d+\) /;

export class Bell {
  constructor(anchor) {
    this.unread = 0; // unread groups
    this.rows = 0; // unread notifications (the API's count)
    this.groups = [];
    this.reloadTimer = null;
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

  /** Signed in (or out): show the bell and read the list over HTTP (frames are not replayed). */
  async setUser(me) {
    this.me = me;
    this.root.hidden = !me;
    document.body.classList.toggle('signed-in', !!me); // shows the Following and Unread tabs
    if (!me) { this.groups = []; this.setUnread(0); return; }
    await this.load();
  }

  /** A `notification` or `notifications` frame from the socket: read the groups again (once per burst). */
  onFrame(msg) {
    if (msg.type === 'notifications' && msg.unread === this.rows) return;
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.load(), RELOAD_MS);
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
    this.fill(this.groups);
    this.load();
  }

  close() {
    this.panel.hidden = true;
    this.button.setAttribute('aria-expanded', 'false');
  }

  /** Read the notifications (newest first, page by page while unread ones may follow) and group them. */
  async load() {
    const me = this.me;
    try {
      let items = [];
      let next = null;
      let d = null;
      for (let i = 0; i < PAGES; i += 1) {
        d = await api('GET', `/api/notifications?limit=${PAGE}${next ? `&before=${encodeURIComponent(next)}` : ''}`);
        items = items.concat(d.notifications || []);
        next = d.next;
        const unreadSeen = items.filter((n) => !n.read).length;
        if (!next || unreadSeen >= d.unread) break;
      }
      if (me !== this.me) return;
      this.rows = d.unread;
      this.groups = groupNotifications(items);
      this.setUnread(unreadGroups(this.groups));
      if (!this.panel.hidden) this.fill(this.groups);
    } catch (e) {
      if (!this.panel.hidden) this.panel.replaceChildren(h('p', { class: 'form-msg is-error' }, e.message));
    }
  }

  fill(groups) {
    const markAll = h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'mark-all-read',
      onClick: () => this.markRead({ all: true }) }, 'Mark all read');
    markAll.disabled = this.unread === 0;
    const list = groups.length ? h('ul', { class: 'bell-list' }, groups.slice(0, 30).map((g) => this.row(g)))
      : h('p', { class: 'empty' }, 'Nothing yet.');
    this.panel.replaceChildren(h('div', { class: 'bell-head' }, h('strong', null, 'Notifications'), markAll), list);
  }

  /** One group: the whole row is its link (to the first unread post); opening it marks the group read. */
  row(g) {
    const names = actorNames(g.actors.map(isolatedName));
    const title = h('em', { dir: 'auto' }, g.thread ? g.thread.title : '');
    const text = g.count === 1
      ? [h('strong', null, isolatedNodes(names)), ` ${groupLead(g)} `, title]
      : [h('strong', null, groupLead(g)), ' ', title,
        h('span', { class: 'bell-who' }, isolatedNodes(names))];
    return h('li', {
      class: ['bell-item', g.unread && 'is-unread'], 'data-testid': 'notification',
      dataset: { id: g.target.id, count: g.count, unread: g.unread },
    }, h('a', {
      class: 'bell-link', href: `/t/${g.thread ? g.thread.id : 0}#post-${g.target.post_id}`,
      onClick: () => { this.close(); if (g.unreadIds.length) this.markRead({ ids: g.unreadIds }); },
    }, avatar(g.actors[0], 'xs'), ' ', ...text, ' ', timeEl(g.newest.created_at, 'relative'),
    g.unread ? h('span', { class: 'sr-only' }, ', unread') : null));
  }

  async markRead(body) {
    try {
      const d = await api('POST', '/api/notifications/read', body);
      this.rows = d.unread;
      if (d.unread === 0) this.setUnread(0);
      await this.load();
    } catch { /* shown again on the next open */ }
  }
}
