// The thread page: question, responses with comments, votes, edits with
// history, and everything live. This module puts the parts together:
//   thread/sync.js        state kept in step with the server (no DOM)
//   thread/post.js        the view of one post
//   thread/indicators.js  "N watching", the new-replies pill, typing
//   thread/composers.js   response and comment boxes (drafts: ../composer.js)
//   thread/editor.js      editing and edit conflicts
//   thread/actions.js     votes, deletes, locking, edit history

import { findPost, insertPost } from '../apply.js';
import { h, icon } from '../dom.js';
import { breadcrumb, displayName, errorPanel, loading } from '../ui.js';
import { tagChips } from '../tags.js';
import { buildReply } from './thread/composers.js';
import { editedUnderEditor, openEditor } from './thread/editor.js';
import { NewPill, renderWatching, Typing } from './thread/indicators.js';
import { myVote } from './thread/actions.js';
import { ThreadAside } from './thread/aside.js';
import { buildPost, fillPost } from './thread/post.js';
import { api } from '../api.js';
import { ThreadSync } from './thread/sync.js';
import { Reading } from '../reading.js';
import { failedPanel } from '../failed.js';
import { keepTextWhenLocked } from '../composing.js';

const TYPING_SEND_EVERY_MS = 3000;
const SORTS = { oldest: 'Oldest', newest: 'Newest', top: 'Top' };

/** Response order for a sort (the page loads every response, so it orders them itself, as the API would). */
export function responseOrder(sort, acceptedId) {
  if (sort === 'newest') return (a, b) => b.id - a.id;
  if (sort === 'top') {
    return (a, b) => ((b.id === acceptedId) - (a.id === acceptedId)) || ((b.score || 0) - (a.score || 0)) || (a.id - b.id);
  }
  return (a, b) => a.id - b.id;
}

export function renderThread(main, { id }, ctx) {
  const view = new ThreadView(main, id, ctx);
  view.start();
  return () => view.dispose();
}

class ThreadView {
  constructor(main, id, ctx) {
    this.main = main;
    this.id = id;
    this.ctx = ctx;
    this.refs = new Map(); // post id -> DOM references of that post
    this.editors = new Map(); // post id -> open editor
    this.votes = new Map(); // post id -> {confirmed, want, inflight}: votes in flight (actions.js)
    this.lastTypingSent = 0;
    this.lastTypingAt = null; // the response id (or null: a reply) that notice named
    const wanted = new URLSearchParams(location.search).get('sort');
    this.sort = Object.hasOwn(SORTS, wanted) ? wanted : 'oldest';
    this.presence = null;
    this.alive = true;
    this.pill = new NewPill();
    this.typing = new Typing();
    this.sync = new ThreadSync(id, {
      onChange: (change, live) => this.show(change, live),
      onReloaded: () => this.reloaded(),
      onGone: () => this.threadDeleted(),
    });
  }

  get me() { return this.ctx.me; }

  get state() { return this.sync.state; }

  set state(value) { this.sync.state = value; }

  async start() {
    this.main.append(loading('Loading thread…'));
    try {
      await this.sync.load();
    } catch (e) {
      if (!this.alive) return;
      this.ctx.setTitle(e.status === 404 ? 'Thread not found' : 'Could not load this thread');
      this.main.replaceChildren(e.status === 404
        ? errorPanel('Thread not found', 'This thread does not exist or was deleted.',
          h('a', { class: 'btn btn-primary', href: '/' }, 'Back to the forum'))
        : failedPanel(this.ctx, 'Could not load this thread', e));
      this.ctx.ready();
      return;
    }
    if (!this.alive) return;
    this.render();
    this.ctx.ready();
    this.loadTrust();
    this.onSilenced = (e) => this.silenced(e.detail);
    window.addEventListener('parley:silenced', this.onSilenced);
    this.reading = new Reading(this.ctx, this); // follow control, "N new", read position (reading.js)
    this.ctx.live.subscribe(this.id, {
      since: () => this.sync.seq,
      onEvent: (ev) => this.sync.receive(ev),
      onSubscribed: (msg) => this.sync.subscribed(msg),
      onPresence: (msg) => {
        this.presence = msg;
        renderWatching(this.watchingEl, msg);
        if (this.aside) this.aside.presence(msg);
      },
      onTyping: (user, parent) => this.onTyping(user, parent),
      onResume: () => this.sync.catchUp(),
      onMyVote: (msg) => myVote(this, msg), // the pressed arrow follows a vote made in another tab
    });
  }

  dispose() {
    this.alive = false;
    if (this.onSilenced) window.removeEventListener('parley:silenced', this.onSilenced);
    this.sync.stop();
    if (this.reading) this.reading.stop();
    this.ctx.live.unsubscribe(this.id);
    this.typing.dispose();
    this.pill.dispose();
  }

  /** After a full reload: render again and reopen the editors with their text. */
  reloaded() {
    const editing = [...this.editors.entries()].map(([id, ed]) => [id, ed.ta.value, ed.baseRevision]);
    this.render();
    for (const [id, text, base] of editing) if (findPost(this.state, id)) openEditor(this, id, text, base);
  }

  show(change, live) {
    switch (change.type) {
      case 'created':
        this.addPostEl(change.post, live);
        break;
      case 'edited':
        this.refreshPost(change.id);
        editedUnderEditor(this, change.id);
        break;
      case 'vote':
        this.refreshPost(change.id);
        break;
      case 'deleted':
        if (change.question) this.threadDeleted();
        else this.refreshPost(change.id);
        break;
      case 'thread':
        this.threadChanged();
        break;
      default:
        break;
    }
    this.updateCounts();
    // What arrives on screen while the page is visible is read (reading.js decides what is on screen).
    if (live && this.reading) this.reading.schedule();
  }

  // ---- rendering ----------------------------------------------------------

  render() {
    const { thread, question, responses } = this.state;
    this.refs.clear();
    this.editors.clear();
    this.pill.reset();
    this.ctx.setTitle(thread.title);

    this.crumbSlot = h('div', { class: 'crumb-slot' });
    this.titleEl = h('h1', { class: 'thread-title', 'data-testid': 'thread-title', dir: 'auto' });
    this.lockBadge = h('span', { class: 'badge badge-locked', 'data-testid': 'locked-badge' }, icon('lock'), 'Locked');
    this.watchingEl = h('span', { class: 'watching', 'data-testid': 'watching-count', title: '' }, '…');
    this.countEl = h('span', { class: 'response-count' });
    const bar = h('div', { class: 'thread-bar' },
      h('span', { class: 'thread-bar-item' }, icon('chat', 'icon icon-sm'), this.countEl),
      h('span', { class: 'thread-bar-item' }, icon('eye', 'icon icon-sm'), this.watchingEl));

    const questionEl = question ? buildPost(this, question) : h('p', { class: 'empty' }, 'The question is missing.');
    this.tagsSlot = h('div', { class: 'tags-slot' });
    this.duplicateEl = h('p', { class: 'duplicate-banner', role: 'note', 'data-testid': 'duplicate-banner' });
    this.questionHead = h('header', { class: 'question-head' }, this.titleEl, this.lockBadge, this.tagsSlot);

    const ordered = [...responses].sort(responseOrder(this.sort, thread.accepted_id));
    this.listEl = h('ol', { class: 'response-list', 'data-testid': 'responses' }, ordered.map((r) => buildPost(this, r)));
    this.emptyEl = h('p', { class: 'empty responses-empty' }, 'No responses yet. Be the first to help out!');
    this.headingEl = h('h2', { id: 'responses-title', 'data-testid': 'responses-heading' }, 'Responses');
    const typingEl = h('p', { class: 'typing', 'data-testid': 'typing-indicator', 'aria-live': 'polite' });

    this.root = h('div', { class: 'page-thread' },
      this.crumbSlot,
      this.duplicateEl,
      h('div', { class: 'question-card card' }, this.questionHead, bar, questionEl),
      h('section', { class: 'responses', 'aria-labelledby': 'responses-title' },
        h('div', { class: 'section-head' }, this.headingEl, this.sortControl()), this.emptyEl, this.listEl, typingEl),
      buildReply(this));
    if (!this.aside) this.aside = new ThreadAside(this); // the right-hand column (thread/aside.js)
    this.main.replaceChildren(h('div', { class: 'thread-layout' }, this.root, this.aside.el));
    this.aside.fill();

    this.pill.mount();
    this.renderThreadHead();
    this.updateCounts();
    this.typing.mount(typingEl, (id) => {
      const r = this.refs.get(id);
      return (r && r.kind === 'response' && r.typing) || null;
    });
    if (this.presence) { renderWatching(this.watchingEl, this.presence); this.aside.presence(this.presence); }
    if (this.reading) this.reading.mount();
  }

  renderThreadHead() {
    const t = this.state.thread;
    this.ctx.setTitle(t.title);
    this.titleEl.textContent = t.title;
    this.lockBadge.hidden = !t.locked;
    this.root.classList.toggle('is-locked', !!t.locked);
    keepTextWhenLocked(this.root, !!t.locked); // a half-written reply stays on screen (composing.js)
    this.tagsSlot.replaceChildren(...[tagChips(t.tags)].filter(Boolean));
    // A duplicate: a banner leading to the original's answers; it takes no new responses (comments still).
    this.duplicateEl.hidden = !t.duplicate_of;
    this.root.classList.toggle('is-duplicate', !!t.duplicate_of);
    this.duplicateEl.replaceChildren(...(t.duplicate_of ? ['This question has been asked before: see ',
      h('a', { href: `/t/${t.duplicate_of.id}`, 'data-testid': 'duplicate-link', dir: 'auto' }, t.duplicate_of.title),
      ' for its answers. It takes no new responses.'] : []));
    this.crumbSlot.replaceChildren(breadcrumb((t.category && t.category.path) || [], { currentIsLink: true }));
    if (this.state.question) fillPost(this, findPost(this.state, this.state.question.id).post);
  }

  /** A member was silenced (their posts leave this page, unless it is theirs or a moderator's) or the silence
   * lifted (the thread is read again, their posts with it). */
  silenced(msg) {
    const me = this.me;
    if (me && (me.is_moderator || me.id === msg.user.id)) return;
    if (!msg.silenced) { this.sync.reload(); return; }
    for (const refs of this.refs.values()) {
      if (refs.root.dataset.authorId === String(msg.user.id)) refs.root.hidden = true;
    }
  }

  /** What the reader may not do yet (GET /api/privileges and their reputation): the vote buttons then say
   * "You need 15 reputation to vote up" instead of failing. Moderators hold everything. */
  async loadTrust() {
    const me = this.me;
    if (!me || me.is_moderator) return;
    try {
      const [table, profile] = await Promise.all([api('GET', '/api/privileges'),
        api('GET', `/api/users/${encodeURIComponent(me.username)}`)]);
      if (!this.alive) return;
      this.trust = { reputation: profile.user.reputation,
        needs: Object.fromEntries(table.privileges.map((p) => [p.name, p.reputation])) };
      if (this.state.question) this.refreshPost(this.state.question.id);
      for (const r of this.state.responses) this.refreshPost(r.id);
    } catch {
      // Unknown: the buttons stay as they are, and the server's answer explains a refusal.
    }
  }

  /** Oldest / Newest / Top, kept in the URL (?sort=); reorders in place. */
  sortControl() {
    const buttons = Object.entries(SORTS).map(([key, label]) => {
      const b = h('button', { type: 'button', class: 'btn btn-quiet btn-sm', 'data-testid': `sort-${key}`,
        'aria-pressed': String(key === this.sort) }, label);
      b.addEventListener('click', () => {
        this.sort = key;
        const url = new URL(location.href);
        if (key === 'oldest') url.searchParams.delete('sort'); else url.searchParams.set('sort', key);
        history.replaceState(history.state, '', url.pathname + url.search + url.hash);
        for (const other of buttons) other.setAttribute('aria-pressed', String(other === b));
        this.reorder();
      });
      return b;
    });
    return h('div', { class: 'sort-control', role: 'group', 'aria-label': 'Sort responses' }, buttons);
  }

  /** Put the response elements in the current order (after a sort change or a new accepted answer). */
  reorder() {
    const ordered = [...this.state.responses].sort(responseOrder(this.sort, this.state.thread.accepted_id));
    for (const r of ordered) {
      const refs = this.refs.get(r.id);
      if (refs) this.listEl.append(refs.root);
    }
  }

  /** The thread changed (title, lock, category, accepted answer): its head, every response's marks, the order. */
  threadChanged() {
    this.renderThreadHead();
    for (const r of this.state.responses) this.refreshPost(r.id);
    if (this.sort === 'top') this.reorder();
  }

  updateCounts() {
    const n = this.state.responses.filter((r) => !r.deleted).length;
    this.headingEl.textContent = n === 1 ? '1 Response' : `${n} Responses`;
    this.countEl.textContent = n === 1 ? '1 response' : `${n} responses`;
    this.emptyEl.hidden = this.state.responses.length > 0;
  }

  refreshPost(id) {
    const found = findPost(this.state, id);
    if (found) fillPost(this, found.post);
  }

  addPostEl(post, live) {
    let el;
    if (post.kind === 'comment') {
      const parent = this.refs.get(post.parent_id);
      if (!parent || !parent.comments) return null;
      el = buildPost(this, post);
      parent.comments.append(el);
    } else if (post.kind === 'response') {
      el = buildPost(this, post);
      // Into its place in the current order: last for oldest, first for newest, by score for top.
      const order = responseOrder(this.sort, this.state.thread.accepted_id);
      const after = this.state.responses.filter((r) => r.id !== post.id && order(post, r) < 0).sort(order)[0];
      const before = after && this.refs.get(after.id);
      if (before) this.listEl.insertBefore(el, before.root); else this.listEl.append(el);
    } else {
      return null;
    }
    el.classList.add(live ? 'is-new' : 'is-just-posted');
    el.addEventListener('animationend', () => el.classList.remove('is-new', 'is-just-posted'), { once: true });
    if (!live) return el;
    if (post.author) this.typing.remove(post.author.id);
    const what = post.kind === 'comment' ? 'comment' : 'response';
    this.ctx.announce(`New ${what} from ${displayName(post.author)}.`);
    this.pill.track(el, post.kind);
    return el;
  }

  /** Our own new post, from the composer's answer (the live event is then a duplicate). */
  posted(post) {
    if (!this.alive || !this.state) return;
    const { state, change } = insertPost(this.state, post);
    this.state = state;
    if (change) { this.show(change, false); }
    const r = this.refs.get(post.id);
    if (r) {
      const rect = r.root.getBoundingClientRect();
      if (rect.bottom > window.innerHeight || rect.top < 0) r.root.scrollIntoView({ behavior: 'smooth', block: 'center' });
    }
    this.ctx.announce(post.kind === 'comment' ? 'Your comment was posted.' : 'Your response was posted.');
  }

  threadDeleted() {
    this.ctx.live.unsubscribe(this.id);
    this.ctx.setTitle('This thread was deleted');
    const cat = this.state && this.state.thread.category;
    this.main.replaceChildren(errorPanel('This thread was deleted', 'A moderator removed this thread.',
      h('a', { class: 'btn btn-primary', href: cat ? `/c/${encodeURIComponent(cat.slug)}` : '/' },
        cat ? `Back to ${cat.name}` : 'Back to the forum')));
    this.pill.hide();
  }

  // ---- typing -------------------------------------------------------------

  /**
   * The reader is writing a new response (parentId null) or a comment under response parentId
   * (never an edit, never on a locked thread). Repeated every few seconds; at once when they
   * move to another box, so the others see them in the right place.
   */
  typed(parentId = null) {
    const now = Date.now();
    if (!this.me || (this.state && this.state.thread.locked)) return;
    if (parentId === this.lastTypingAt && now - this.lastTypingSent < TYPING_SEND_EVERY_MS) return;
    if (this.ctx.live.sendTyping(this.id, parentId)) {
      this.lastTypingSent = now;
      this.lastTypingAt = parentId;
    }
  }

  onTyping(user, parent) {
    if (this.me && user.id === this.me.id) return;
    this.typing.add(user, parent);
  }
}
