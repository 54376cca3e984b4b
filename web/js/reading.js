// The reader's side of a thread page: a Follow/Unfollow control, "N new since your last visit" with a
// jump to the first unread post, and the read position reported (PUT /api/threads/{id}/read, debounced)
// as the reader scrolls to the end of what is loaded.

import { api } from './api.js';
import { h } from './dom.js';
import { toast } from './ui.js';

const REPORT_MS = 1500;

export class Reading {
  /** @param view the thread view: view.id, view.state.thread (seq, following, unread), view.root */
  constructor(ctx, view) {
    this.ctx = ctx;
    this.view = view;
    this.firstUnread = view.state && view.state.thread ? view.state.thread.unread : null; // as we arrived
    this.reported = 0;
    this.timer = null;
    this.onScroll = () => this.schedule();
    window.addEventListener('scroll', this.onScroll, { passive: true });
    document.addEventListener('visibilitychange', this.onScroll);
    this.mount();
  }

  stop() {
    clearTimeout(this.timer);
    window.removeEventListener('scroll', this.onScroll);
    document.removeEventListener('visibilitychange', this.onScroll);
  }

  /** (Re)build the controls in the freshly rendered page. */
  mount() {
    const root = this.view.root;
    const t = this.view.state && this.view.state.thread;
    if (!root || !t || !this.ctx.me) return;
    const bar = root.querySelector('.thread-bar');
    if (bar && !bar.querySelector('[data-testid="follow"]')) {
      const btn = h('button', { type: 'button', class: 'btn btn-sm btn-quiet', 'data-testid': 'follow',
        'aria-pressed': t.following ? 'true' : 'false' }, t.following ? 'Following' : 'Follow');
      btn.addEventListener('click', async () => {
        const want = btn.getAttribute('aria-pressed') !== 'true';
        try {
          const d = await api('PUT', `/api/threads/${this.view.id}/following`, { following: want });
          btn.setAttribute('aria-pressed', d.following ? 'true' : 'false');
          btn.textContent = d.following ? 'Following' : 'Follow';
        } catch (e) { toast(e.message); }
      });
      bar.append(btn);
    }
    if (this.firstUnread && !root.querySelector('[data-testid="unread-banner"]')) {
      const n = this.firstUnread;
      const banner = h('p', { class: 'unread-banner', 'data-testid': 'unread-banner' },
        `${n} new since your last visit · `,
        h('a', { href: '#', onClick: (e) => { e.preventDefault(); this.jump(n); } }, 'Jump to the first'));
      root.querySelector('.responses')?.prepend(banner);
    }
    this.schedule();
  }

  /** The first unread post: posts ids grow in a thread, so it is the n-th newest loaded post by others. */
  jump(n) {
    const me = this.ctx.me && this.ctx.me.id;
    const posts = [...this.view.root.querySelectorAll('[data-post-id]')]
      .filter((el) => el.dataset.kind !== 'question' && el.dataset.authorId !== String(me))
      .sort((a, b) => Number(a.dataset.postId) - Number(b.dataset.postId));
    const target = posts[Math.max(0, posts.length - n)];
    if (target) { target.scrollIntoView({ block: 'start' }); target.focus?.(); }
  }

  schedule() {
    if (!this.ctx.me || document.visibilityState !== 'visible') return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.report(), REPORT_MS);
  }

  async report() {
    const t = this.view.state && this.view.state.thread;
    if (!t || !this.view.alive || t.seq <= this.reported) return;
    const list = this.view.root && this.view.root.querySelector('.responses');
    // Read when the end of the loaded responses is on screen.
    if (list && list.getBoundingClientRect().bottom > window.innerHeight + 80) return;
    const seq = t.seq;
    try {
      await api('PUT', `/api/threads/${this.view.id}/read`, { seq });
      this.reported = seq;
    } catch { /* the next scroll tries again */ }
  }
}
