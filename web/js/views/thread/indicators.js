// The thread's indicators: "N watching", the "N new responses" pill for posts
// that arrived below the fold, and "NAME is replying…" / "NAME is commenting…".

import { h, icon } from '../../dom.js';
import { isolatedName, isolatedNodes } from '../../ui.js';

const TYPING_SHOW_FOR_MS = 6000;

/** "N watching" with the names (and guests) as its tooltip. */
export function renderWatching(el, msg) {
  if (!el || !msg) return;
  const users = msg.users || [];
  const n = users.length + (msg.guests || 0);
  el.textContent = `${n} watching`;
  el.dataset.count = String(n);
  const names = users.map(isolatedName);
  if (msg.guests) names.push(`${msg.guests} ${msg.guests === 1 ? 'guest' : 'guests'}`);
  el.title = names.join(', ');
}

/** A floating button that counts new posts below the fold and jumps to the first one. */
export class NewPill {
  constructor() {
    this.unseen = []; // [{el, kind}]
    this.el = null;
    this.observer = new IntersectionObserver((entries) => {
      for (const en of entries) {
        if (en.isIntersecting) {
          this.observer.unobserve(en.target);
          this.unseen = this.unseen.filter((u) => u.el !== en.target);
        }
      }
      this.render();
    });
  }

  mount() {
    if (this.el) return;
    this.el = h('button', { type: 'button', class: 'new-pill', 'data-testid': 'new-pill', hidden: true,
      onClick: () => this.jump() });
    document.body.append(this.el);
  }

  reset() {
    this.observer.disconnect();
    this.unseen = [];
  }

  /** Count `el` if it is below the fold, until it scrolls into view. */
  track(el, kind) {
    if (el.getBoundingClientRect().top <= window.innerHeight) return;
    this.unseen.push({ el, kind });
    this.observer.observe(el);
    this.render();
  }

  render() {
    if (!this.el) return;
    const n = this.unseen.length;
    this.el.hidden = n === 0;
    if (!n) return;
    const responses = this.unseen.filter((u) => u.kind === 'response').length;
    const noun = responses === n ? 'response' : responses === 0 ? 'comment' : 'reply';
    const label = `${n} new ${n === 1 ? noun : noun === 'reply' ? 'replies' : `${noun}s`}`;
    this.el.replaceChildren(icon('arrowDown', 'icon icon-sm'), label);
  }

  jump() {
    const first = this.unseen[0];
    for (const u of this.unseen) this.observer.unobserve(u.el);
    this.unseen = [];
    this.render();
    if (first) {
      first.el.scrollIntoView({ behavior: 'smooth', block: 'center' });
      first.el.focus({ preventScroll: true });
    }
  }

  hide() { if (this.el) this.el.hidden = true; }

  dispose() {
    this.observer.disconnect();
    if (this.el) this.el.remove();
    this.el = null;
  }
}

/** "NAME is replying…" / "A and B are commenting…" for the names of one place. */
export function typingText(names, verb) {
  if (names.length === 1) return `${names[0]} is ${verb}…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are ${verb}…`;
  if (names.length > 2) return `${names[0]}, ${names[1]} and ${names.length - 2} more are ${verb}…`;
  return '';
}

/**
 * Who is typing, each shown for a few seconds after their last notice: "NAME is replying…"
 * below the responses, or "NAME is commenting…" under the response whose comment box they
 * type in (the notice's `parent`). Each place is a polite live region that is written only
 * when its text changes, so a screen reader hears a change, never every repeated notice.
 */
export class Typing {
  constructor() {
    this.typers = new Map(); // user id -> {user, parent (a response id or null), until}
    this.timer = null;
    this.el = null;
    this.slotFor = () => null; // response id -> its "is commenting…" element, or null
    this.lit = new Set(); // response ids whose element shows someone
  }

  /** `el` is the place for replies; slotFor(id) finds the place under response `id`. */
  mount(el, slotFor = () => null) {
    this.el = el;
    this.slotFor = slotFor;
    this.lit.clear();
    this.render();
  }

  add(user, parent = null) {
    // A response this page does not show (another thread's id, not loaded yet): the hint is dropped.
    if (parent != null && !this.slotFor(parent)) return;
    this.typers.set(user.id, { user, parent: parent ?? null, until: Date.now() + TYPING_SHOW_FOR_MS });
    this.render();
    if (!this.timer) {
      this.timer = setInterval(() => {
        const now = Date.now();
        for (const [id, t] of this.typers) if (t.until <= now) this.typers.delete(id);
        this.render();
        if (!this.typers.size) { clearInterval(this.timer); this.timer = null; }
      }, 500);
    }
  }

  remove(userId) {
    this.typers.delete(userId);
    this.render();
  }

  render() {
    if (!this.el) return;
    const byPlace = new Map(); // null (replies) or a response id -> names
    for (const t of this.typers.values()) {
      if (!byPlace.has(t.parent)) byPlace.set(t.parent, []);
      byPlace.get(t.parent).push(isolatedName(t.user));
    }
    show(this.el, typingText(byPlace.get(null) || [], 'replying'));
    for (const id of new Set([...this.lit, ...byPlace.keys()])) {
      if (id === null) continue;
      const slot = this.slotFor(id);
      const text = typingText(byPlace.get(id) || [], 'commenting');
      if (slot) show(slot, text);
      if (slot && text) this.lit.add(id); else this.lit.delete(id);
    }
  }

  dispose() {
    clearInterval(this.timer);
    this.timer = null;
  }
}

/** Write an indicator only when its text changes (a live region speaks on every change). */
function show(el, text) {
  if (el.dataset.text === text) return;
  el.dataset.text = text;
  el.classList.toggle('is-active', !!text);
  el.replaceChildren(...(text
    ? [h('span', { class: 'dots', 'aria-hidden': 'true' }, h('i'), h('i'), h('i')), h('span', null, isolatedNodes(text))]
    : []));
}
