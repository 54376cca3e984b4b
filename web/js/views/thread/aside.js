// The thread page's right-hand column: who is watching now, the threads this one links to, and more from its
// category. Built after the thread; each part fills in as it arrives and hides while it has nothing to show.

import { api } from '../../api.js';
import { h } from '../../dom.js';
import { avatar, timeEl, userLinkWithHandle } from '../../ui.js';

const MAX_ITEMS = 5;

function box(id, title) {
  const list = h('ul', { class: 'aside-list' });
  const el = h('section', { class: 'card aside-box', 'aria-labelledby': id, hidden: true, 'data-testid': id },
    h('h2', { id, class: 'card-title' }, title), list);
  return { el, list };
}

/** Thread ids linked from the posts' HTML (same-origin /t/ID links), in order of appearance, without `self`. */
export function linkedThreadIds(htmls, self, origin = location.origin) {
  const ids = [];
  for (const html of htmls) {
    for (const m of String(html || '').matchAll(/href="([^"]+)"/g)) {
      let url;
      try { url = new URL(m[1].replace(/&amp;/g, '&'), origin); } catch { continue; }
      const t = url.origin === origin && url.pathname.match(/^\/t\/(\d+)/);
      const id = t && Number(t[1]);
      if (id && id !== self && !ids.includes(id)) ids.push(id);
    }
  }
  return ids.slice(0, MAX_ITEMS);
}

export class ThreadAside {
  constructor(view) {
    this.view = view;
    this.watching = box('aside-watching', 'Watching now');
    this.linked = box('aside-linked', 'Linked threads');
    this.more = box('aside-more', 'More in this category');
    this.el = h('aside', { class: 'thread-aside', 'aria-label': 'About this thread', 'data-testid': 'thread-aside' },
      this.watching.el, this.linked.el, this.more.el);
    this.filled = false;
  }

  /** Once per thread: the linked threads and the category's others (read over HTTP). */
  fill() {
    if (this.filled || !this.view.state) return;
    this.filled = true;
    const { thread, question, responses } = this.view.state;
    const htmls = [question && question.html, ...responses.flatMap((r) => [r.html, ...(r.comments || []).map((c) => c.html)])];
    const ids = linkedThreadIds(htmls, thread.id);
    Promise.all(ids.map((id) => api('GET', `/api/threads/${id}?limit=1`).then((d) => d.thread, () => null)))
      .then((threads) => this.show(this.linked, threads.filter(Boolean)));
    const slug = thread.category && thread.category.slug;
    if (slug) {
      api('GET', `/api/categories/${encodeURIComponent(slug)}/threads?limit=${MAX_ITEMS + 1}`)
        .then((d) => this.show(this.more, (d.threads || []).filter((t) => t.id !== thread.id).slice(0, MAX_ITEMS)))
        .catch(() => {});
    }
  }

  show(part, threads) {
    if (!this.view.alive) return;
    part.list.replaceChildren(...threads.map((t) => h('li', null,
      h('a', { href: `/t/${t.id}`, dir: 'auto' }, t.title),
      h('span', { class: 'aside-meta' }, `${t.response_count || 0} ${t.response_count === 1 ? 'response' : 'responses'} · `,
        timeEl(t.last_activity_at || t.created_at, 'relative')))));
    part.el.hidden = !threads.length;
  }

  /** A thread presence frame: the signed-in watchers by name, then the guests. */
  presence(msg) {
    const users = (msg && msg.users) || [];
    const guests = (msg && msg.guests) || 0;
    const items = users.slice(0, 12).map((u) => h('li', { class: 'aside-person', dir: 'auto' }, avatar(u, 'xs'),
      userLinkWithHandle(u, 'aside-name')));
    const rest = Math.max(Number(msg && msg.count) || 0, users.length) - items.length;
    if (rest > 0) items.push(h('li', { class: 'aside-meta' }, `and ${rest} more`));
    if (guests) items.push(h('li', { class: 'aside-meta' }, `${guests} ${guests === 1 ? 'guest' : 'guests'}`));
    this.watching.list.replaceChildren(...items);
    this.watching.el.hidden = !items.length;
  }
}
