// The thread page: question, responses with comments, votes, edits with
// history, and everything live: events (applied through apply.js), presence
// ("N watching") and typing ("NAME is replying…").

import { api, ApiError, newIdempotencyKey, postReply } from '../api.js';
import { applyEvent, findPost, insertPost, mergePost, updatePost } from '../apply.js';
import { h, icon, setPostHtml } from '../dom.js';
import { formatDateTime } from '../format.js';
import { Reading } from '../reading.js';
import {
  avatar, breadcrumb, confirmDialog, displayName, errorPanel, fieldError, formMessage, loading, openDialog,
  showFormMessage, submitOnCtrlEnter, timeEl, toast,
} from '../ui.js';

const TYPING_SEND_EVERY_MS = 3000;
const TYPING_SHOW_FOR_MS = 6000;
const PAGE = 100;

/** Load a whole thread over HTTP (every page of responses). */
async function fetchThread(id) {
  const first = await api('GET', `/api/threads/${id}?limit=${PAGE}`);
  const responses = [...(first.responses || [])];
  let next = first.next;
  while (next) {
    const more = await api('GET', `/api/threads/${id}?limit=${PAGE}&after=${encodeURIComponent(next)}`);
    responses.push(...(more.responses || []));
    next = more.next;
  }
  return {
    thread: first.thread,
    question: first.question,
    responses: responses.map((r) => ({ ...r, comments: r.comments || [] })),
  };
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
    this.state = null;
    this.refs = new Map(); // post id -> DOM references of that post
    this.editors = new Map(); // post id -> open editor
    this.pending = []; // live events waiting for a load or a gap to fill
    this.reloading = false;
    this.catchingUp = false;
    this.typers = new Map(); // user id -> {user, until}
    this.typingTimer = null;
    this.lastTypingSent = 0;
    this.presence = null;
    this.unseen = []; // new posts below the fold: [{el, kind}]
    this.alive = true;
    this.observer = new IntersectionObserver((entries) => {
      for (const en of entries) {
        if (en.isIntersecting) {
          this.observer.unobserve(en.target);
          this.unseen = this.unseen.filter((u) => u.el !== en.target);
        }
      }
      this.renderPill();
    });
  }

  get me() { return this.ctx.me; }

  draftKey(suffix) { return `parley:draft:t:${this.id}:${suffix}`; }

  async start() {
    this.main.append(loading('Loading thread…'));
    try {
      this.state = await fetchThread(this.id);
    } catch (e) {
      if (!this.alive) return;
      this.main.replaceChildren(e.status === 404
        ? errorPanel('Thread not found', 'This thread does not exist or was deleted.',
          h('a', { class: 'btn btn-primary', href: '/' }, 'Back to the forum'))
        : errorPanel('Could not load this thread', e.message,
          h('button', { type: 'button', class: 'btn btn-primary', onClick: () => this.ctx.navigate(location.pathname, { replace: true }) }, 'Try again')));
      return;
    }
    if (!this.alive) return;
    this.render();
    this.reading = new Reading(this.ctx, this); // follow control, "N new", read position (reading.js)
    this.ctx.live.subscribe(this.id, {
      since: () => (this.state ? this.state.thread.seq : null),
      onEvent: (ev) => this.receive(ev),
      onSubscribed: (msg) => {
        if (msg.reset) this.reload();
        else if (this.state && msg.seq > this.state.thread.seq) this.catchUp();
      },
      onPresence: (msg) => this.renderWatching(msg),
      onTyping: (user) => this.onTyping(user),
      onResume: () => this.catchUp(),
    });
  }

  dispose() {
    this.alive = false;
    if (this.reading) this.reading.stop();
    this.ctx.live.unsubscribe(this.id);
    clearInterval(this.typingTimer);
    this.observer.disconnect();
    if (this.pill) this.pill.remove();
  }

  // ---- live events -------------------------------------------------------

  receive(ev) {
    this.pending.push(ev);
    this.drain();
  }

  /** Apply buffered events in seq order; a gap is filled over HTTP first. */
  drain() {
    if (!this.state || this.reloading) return;
    this.pending.sort((a, b) => a.seq - b.seq);
    while (this.pending.length) {
      const ev = this.pending[0];
      const seq = this.state.thread.seq;
      if (ev.seq <= seq) { this.pending.shift(); continue; }
      if (ev.seq > seq + 1) { this.catchUp(); return; }
      this.pending.shift();
      this.apply(ev, true);
    }
  }

  /** Fetch every event after our seq over HTTP (after a wake-up or a gap). */
  async catchUp() {
    if (this.catchingUp || this.reloading || !this.state) return;
    this.catchingUp = true;
    let needReload = false;
    try {
      for (let round = 0; round < 100; round++) {
        const since = this.state.thread.seq;
        const d = await api('GET', `/api/threads/${this.id}/events?since=${since}&limit=200`);
        if (!this.alive) return;
        const evs = (d.events || []).filter((e) => e.seq > since).sort((a, b) => a.seq - b.seq);
        if (!evs.length) break;
        if (evs[0].seq !== since + 1) { needReload = true; break; } // history pruned
        for (const ev of evs) if (ev.seq === this.state.thread.seq + 1) this.apply(ev, true);
        if (typeof d.seq !== 'number' || this.state.thread.seq >= d.seq) break;
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) needReload = true;
      // Otherwise the socket brings us back when the server does.
    } finally {
      this.catchingUp = false;
    }
    if (!this.alive) return;
    if (needReload) { this.reload(); return; }
    this.pending = this.pending.filter((ev) => ev.seq > this.state.thread.seq);
    if (this.pending.length && this.pending[0].seq > this.state.thread.seq + 1) {
      this.pending.sort((a, b) => a.seq - b.seq);
      if (this.pending[0].seq > this.state.thread.seq + 1) { this.reload(); return; }
    }
    this.drain();
  }

  /** Reload the thread over HTTP (subscribed with reset), keeping drafts and open editors. */
  async reload() {
    if (this.reloading || !this.alive) return;
    this.reloading = true;
    try {
      const fresh = await fetchThread(this.id);
      if (!this.alive) return;
      const editing = [...this.editors.entries()].map(([id, ed]) => [id, ed.ta.value, ed.baseRevision]);
      // Keep the reader's own votes (the fresh copy has them too, but be safe).
      this.state = fresh;
      this.render();
      for (const [id, text, base] of editing) if (findPost(this.state, id)) this.openEditor(id, text, base);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) this.threadDeleted();
    } finally {
      this.reloading = false;
    }
    this.drain();
  }

  apply(ev, live) {
    const { state, change } = applyEvent(this.state, ev);
    this.state = state;
    if (change) this.show(change, live);
  }

  show(change, live) {
    switch (change.type) {
      case 'created':
        this.addPostEl(change.post, live);
        break;
      case 'edited':
        this.refreshPost(change.id);
        if (this.editors.has(change.id)) {
          const post = findPost(this.state, change.id).post;
          showFormMessage(this.editors.get(change.id).msg,
            `${displayName(post.edited_by)} just edited this post. Saving will ask you to review their version first.`, 'info');
        }
        break;
      case 'vote':
        this.refreshPost(change.id);
        break;
      case 'deleted':
        if (change.question) this.threadDeleted();
        else this.refreshPost(change.id);
        break;
      case 'thread':
        this.renderThreadHead();
        break;
      default:
        break;
    }
    this.updateCounts();
  }

  // ---- rendering ----------------------------------------------------------

  render() {
    const { thread, question, responses } = this.state;
    this.refs.clear();
    this.editors.clear();
    this.observer.disconnect();
    this.unseen = [];
    this.ctx.setTitle(thread.title);

    this.crumbSlot = h('div', { class: 'crumb-slot' });
    this.titleEl = h('h1', { class: 'thread-title', 'data-testid': 'thread-title' });
    this.lockBadge = h('span', { class: 'badge badge-locked', 'data-testid': 'locked-badge' }, icon('lock'), 'Locked');
    this.watchingEl = h('span', { class: 'watching', 'data-testid': 'watching-count', title: '' }, '…');
    this.countEl = h('span', { class: 'response-count' });
    const bar = h('div', { class: 'thread-bar' },
      h('span', { class: 'thread-bar-item' }, icon('chat', 'icon icon-sm'), this.countEl),
      h('span', { class: 'thread-bar-item' }, icon('eye', 'icon icon-sm'), this.watchingEl));

    const questionEl = question ? this.buildPost(question) : h('p', { class: 'empty' }, 'The question is missing.');
    this.questionHead = h('header', { class: 'question-head' }, this.titleEl, this.lockBadge);

    this.listEl = h('ol', { class: 'response-list', 'data-testid': 'responses' }, responses.map((r) => this.buildPost(r)));
    this.emptyEl = h('p', { class: 'empty responses-empty' }, 'No responses yet. Be the first to help out!');
    this.headingEl = h('h2', { id: 'responses-title', 'data-testid': 'responses-heading' }, 'Responses');
    this.typingEl = h('p', { class: 'typing', 'data-testid': 'typing-indicator', 'aria-live': 'polite' });

    this.root = h('div', { class: 'page-thread' },
      this.crumbSlot,
      h('div', { class: 'question-card card' }, this.questionHead, bar, questionEl),
      h('section', { class: 'responses', 'aria-labelledby': 'responses-title' },
        h('div', { class: 'section-head' }, this.headingEl), this.emptyEl, this.listEl, this.typingEl),
      this.buildReply());
    this.main.replaceChildren(this.root);

    if (!this.pill) {
      this.pill = h('button', { type: 'button', class: 'new-pill', 'data-testid': 'new-pill', hidden: true,
        onClick: () => this.jumpToUnseen() });
      document.body.append(this.pill);
    }
    this.renderThreadHead();
    this.updateCounts();
    this.renderTyping();
    if (this.presence) this.renderWatching(this.presence);
    if (this.reading) this.reading.mount();
  }

  renderThreadHead() {
    const t = this.state.thread;
    this.ctx.setTitle(t.title);
    this.titleEl.textContent = t.title;
    this.lockBadge.hidden = !t.locked;
    this.root.classList.toggle('is-locked', !!t.locked);
    this.crumbSlot.replaceChildren(breadcrumb((t.category && t.category.path) || [], { currentIsLink: true }));
    if (this.state.question) this.fillPost(findPost(this.state, this.state.question.id).post);
  }

  updateCounts() {
    const n = this.state.responses.filter((r) => !r.deleted).length;
    this.headingEl.textContent = n === 1 ? '1 Response' : `${n} Responses`;
    this.countEl.textContent = n === 1 ? '1 response' : `${n} responses`;
    this.emptyEl.hidden = this.state.responses.length > 0;
  }

  renderWatching(msg) {
    this.presence = msg;
    if (!this.watchingEl) return;
    const users = msg.users || [];
    const n = users.length + (msg.guests || 0);
    this.watchingEl.textContent = `${n} watching`;
    this.watchingEl.dataset.count = String(n);
    const names = users.map(displayName);
    if (msg.guests) names.push(`${msg.guests} ${msg.guests === 1 ? 'guest' : 'guests'}`);
    this.watchingEl.title = names.join(', ');
  }

  /** Build the element of a question, response or comment (its comments too). */
  buildPost(post) {
    const kind = post.kind;
    const root = h(kind === 'question' ? 'article' : 'li', {
      class: ['post', `post-${kind}`], tabindex: '-1', 'data-testid': kind,
      dataset: { postId: post.id, kind, authorId: post.author ? post.author.id : '' },
    });
    const up = h('button', { type: 'button', class: 'vote-btn vote-up', 'data-testid': 'vote-up', 'aria-label': 'Upvote',
      'aria-pressed': 'false', onClick: () => this.vote(post.id, 1) }, icon('up'));
    const down = h('button', { type: 'button', class: 'vote-btn vote-down', 'data-testid': 'vote-down',
      'aria-label': 'Downvote', 'aria-pressed': 'false', onClick: () => this.vote(post.id, -1) }, icon('down'));
    const score = h('span', { class: 'score', 'data-testid': 'score' }, '0');
    const vote = h('div', { class: 'vote', role: 'group', 'aria-label': 'Score and votes' }, up, score, down);
    const head = h('div', { class: 'post-head' });
    const body = h('div', { class: 'post-body prose', 'data-testid': 'post-body' });
    const editorSlot = h('div', { class: 'editor-slot' });
    const edited = h('p', { class: 'edited-note' });
    const actions = h('div', { class: 'post-actions' });
    const msg = formMessage();
    const refs = { root, up, down, score, head, body, editorSlot, edited, actions, msg, kind };
    this.refs.set(post.id, refs);
    let mainEl;
    if (kind === 'comment') {
      mainEl = h('div', { class: 'post-main' }, body, editorSlot,
        h('div', { class: 'comment-foot' }, head, edited, actions), msg);
    } else {
      mainEl = h('div', { class: 'post-main' }, head, body, editorSlot, edited, actions, msg);
    }
    if (kind === 'response') {
      refs.comments = h('ul', { class: 'comment-list', 'data-testid': 'comments', 'aria-label': 'Comments' },
        (post.comments || []).map((c) => this.buildPost(c)));
      mainEl.append(refs.comments);
      const form = this.buildCommentForm(post.id);
      if (form) mainEl.append(form);
    }
    root.append(vote, mainEl);
    this.fillPost(post);
    return root;
  }

  /** (Re)fill the parts of a post that change: head, body, votes, edited marker, actions. */
  fillPost(post) {
    const r = this.refs.get(post.id);
    if (!r) return;
    const me = this.me;
    const mine = !!(me && post.author && post.author.id === me.id);
    const mod = !!(me && me.is_moderator);
    const kind = post.kind;
    r.root.classList.toggle('is-deleted', !!post.deleted);
    r.root.classList.toggle('is-mine', mine);

    r.score.textContent = String(post.score ?? 0);
    r.score.classList.toggle('is-positive', (post.score || 0) > 0);
    r.score.classList.toggle('is-negative', (post.score || 0) < 0);
    r.up.setAttribute('aria-pressed', String(post.my_vote === 1));
    r.down.setAttribute('aria-pressed', String(post.my_vote === -1));
    const noVote = mine || post.deleted;
    r.up.disabled = !!noVote;
    r.down.disabled = !!noVote;
    r.up.title = mine ? "You can't vote on your own post" : me ? 'This is useful' : 'Sign in to vote';
    r.down.title = mine ? "You can't vote on your own post" : me ? 'This is not useful' : 'Sign in to vote';

    const q = this.state.question;
    const isOp = kind !== 'question' && q && post.author && q.author && post.author.id === q.author.id;
    const author = h('span', { class: 'author', 'data-testid': 'post-author' }, displayName(post.author));
    if (kind === 'comment') {
      r.head.replaceChildren(...['– ', author, isOp ? h('span', { class: 'badge badge-op' }, 'Author') : null,
        timeEl(post.created_at)].filter(Boolean));
    } else {
      r.head.replaceChildren(avatar(post.author, kind === 'question' ? 'lg' : ''),
        h('span', { class: 'byline' }, author,
          isOp ? h('span', { class: 'badge badge-op' }, 'Author') : null,
          mine ? h('span', { class: 'badge badge-you' }, 'You') : null,
          h('span', { class: 'posted' }, kind === 'question' ? 'Posted – ' : '', timeEl(post.created_at))));
    }

    if (post.deleted) {
      r.body.replaceChildren(h('em', { class: 'deleted-text' }, `This ${kind} was deleted.`));
    } else {
      setPostHtml(r.body, post.html);
    }

    if (post.edited_at && post.edited_by && !post.deleted) {
      r.edited.hidden = false;
      r.edited.replaceChildren(h('button', { type: 'button', class: 'link-btn', 'data-testid': 'edited-marker',
        'aria-haspopup': 'dialog', onClick: () => this.showRevisions(post.id) },
      `This post was edited by ${displayName(post.edited_by)} at ${formatDateTime(post.edited_at)}`));
    } else {
      r.edited.hidden = true;
      r.edited.replaceChildren();
    }

    const buttons = [];
    if (!post.deleted && me) {
      if (mine || mod) {
        buttons.push(h('button', { type: 'button', class: 'link-btn', 'data-testid': 'edit',
          onClick: () => this.openEditor(post.id) }, 'Edit'));
      }
      if ((mine && kind !== 'question') || mod) {
        buttons.push(h('button', { type: 'button', class: 'link-btn link-danger', 'data-testid': 'delete',
          onClick: () => this.deletePost(post.id) }, 'Delete'));
      }
      if (kind === 'question' && mod) {
        const locked = this.state.thread.locked;
        buttons.push(h('button', { type: 'button', class: 'link-btn', 'data-testid': 'lock',
          onClick: () => this.setLocked(!locked) }, locked ? 'Unlock thread' : 'Lock thread'));
      }
    }
    r.actions.replaceChildren(...buttons);
    r.actions.hidden = !buttons.length || this.editors.has(post.id);
  }

  refreshPost(id) {
    const found = findPost(this.state, id);
    if (found) this.fillPost(found.post);
  }

  addPostEl(post, live) {
    let el;
    if (post.kind === 'comment') {
      const parent = this.refs.get(post.parent_id);
      if (!parent || !parent.comments) return null;
      el = this.buildPost(post);
      parent.comments.append(el);
    } else if (post.kind === 'response') {
      el = this.buildPost(post);
      this.listEl.append(el);
    } else {
      return null;
    }
    el.classList.add(live ? 'is-new' : 'is-just-posted');
    el.addEventListener('animationend', () => el.classList.remove('is-new', 'is-just-posted'), { once: true });
    if (!live) return el;
    if (post.author) this.typers.delete(post.author.id);
    this.renderTyping();
    const what = post.kind === 'comment' ? 'comment' : 'response';
    this.ctx.announce(`New ${what} from ${displayName(post.author)}.`);
    if (el.getBoundingClientRect().top > window.innerHeight) {
      this.unseen.push({ el, kind: post.kind });
      this.observer.observe(el);
      this.renderPill();
    }
    return el;
  }

  renderPill() {
    if (!this.pill) return;
    const n = this.unseen.length;
    this.pill.hidden = n === 0;
    if (!n) return;
    const responses = this.unseen.filter((u) => u.kind === 'response').length;
    const noun = responses === n ? 'response' : responses === 0 ? 'comment' : 'reply';
    const label = `${n} new ${n === 1 ? noun : noun === 'reply' ? 'replies' : `${noun}s`}`;
    this.pill.replaceChildren(icon('arrowDown', 'icon icon-sm'), label);
  }

  jumpToUnseen() {
    const first = this.unseen[0];
    for (const u of this.unseen) this.observer.unobserve(u.el);
    this.unseen = [];
    this.renderPill();
    if (first) {
      first.el.scrollIntoView({ behavior: 'smooth', block: 'center' });
      first.el.focus({ preventScroll: true });
    }
  }

  threadDeleted() {
    this.ctx.live.unsubscribe(this.id);
    const cat = this.state && this.state.thread.category;
    this.main.replaceChildren(errorPanel('This thread was deleted', 'A moderator removed this thread.',
      h('a', { class: 'btn btn-primary', href: cat ? `/c/${encodeURIComponent(cat.slug)}` : '/' },
        cat ? `Back to ${cat.name}` : 'Back to the forum')));
    if (this.pill) this.pill.hidden = true;
  }

  // ---- typing -------------------------------------------------------------

  typed() {
    const now = Date.now();
    if (!this.me || now - this.lastTypingSent < TYPING_SEND_EVERY_MS) return;
    if (this.ctx.live.sendTyping(this.id)) this.lastTypingSent = now;
  }

  onTyping(user) {
    if (this.me && user.id === this.me.id) return;
    this.typers.set(user.id, { user, until: Date.now() + TYPING_SHOW_FOR_MS });
    this.renderTyping();
    if (!this.typingTimer) {
      this.typingTimer = setInterval(() => {
        const now = Date.now();
        for (const [id, t] of this.typers) if (t.until <= now) this.typers.delete(id);
        this.renderTyping();
        if (!this.typers.size) { clearInterval(this.typingTimer); this.typingTimer = null; }
      }, 500);
    }
  }

  renderTyping() {
    if (!this.typingEl) return;
    const names = [...this.typers.values()].map((t) => displayName(t.user));
    let text = '';
    if (names.length === 1) text = `${names[0]} is replying…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are replying…`;
    else if (names.length > 2) text = `${names[0]}, ${names[1]} and ${names.length - 2} more are replying…`;
    this.typingEl.classList.toggle('is-active', names.length > 0);
    this.typingEl.replaceChildren(...(text
      ? [h('span', { class: 'dots', 'aria-hidden': 'true' }, h('i'), h('i'), h('i')), h('span', null, text)]
      : []));
  }

  // ---- writing: responses and comments -------------------------------------

  buildReply() {
    if (!this.me) {
      const next = encodeURIComponent(location.pathname);
      return h('section', { class: 'reply-box card reply-guest', 'aria-label': 'Respond' },
        h('p', null, 'Know the answer or have something to add?'),
        h('div', { class: 'welcome-actions' },
          h('a', { class: 'btn btn-primary', href: `/signin?next=${next}`, 'data-testid': 'reply-signin' }, 'Sign in to respond'),
          h('a', { class: 'btn', href: `/signup?next=${next}` }, 'Create an account')));
    }
    const ta = h('textarea', { id: 'reply-body', name: 'body', rows: '5', maxlength: '20000', 'data-testid': 'reply-input',
      placeholder: 'Write a helpful response…' });
    const msg = formMessage();
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'reply-submit' }, 'Post response');
    const form = h('form', { class: 'reply-form', novalidate: true, 'data-testid': 'reply-form' },
      h('label', { for: 'reply-body', class: 'reply-label' }, 'Your response'),
      ta, h('p', { class: 'hint' }, 'Markdown works: **bold**, _italic_, `code`, [links](https://example.com). Press Ctrl+Enter to post.'),
      msg, h('div', { class: 'form-actions' }, submit));
    this.wireWriting(form, ta, submit, msg, null, this.draftKey('reply'));
    return h('section', { class: 'reply-box card', 'aria-label': 'Respond' }, form,
      h('p', { class: 'locked-note' }, icon('lock', 'icon icon-sm'), 'This thread is locked. New responses and comments are closed.'));
  }

  buildCommentForm(responseId) {
    if (!this.me) return null;
    const id = `comment-${responseId}`;
    const ta = h('textarea', { id, class: 'comment-input', rows: '1', maxlength: '20000', 'data-testid': 'comment-input',
      placeholder: 'Add a comment…', 'aria-label': 'Add a comment' });
    const msg = formMessage();
    const submit = h('button', { type: 'submit', class: 'btn btn-sm', 'data-testid': 'comment-submit' }, 'Comment');
    const form = h('form', { class: 'comment-form', novalidate: true, 'data-testid': 'comment-box' },
      h('div', { class: 'comment-row' }, ta, submit), msg);
    this.wireWriting(form, ta, submit, msg, responseId, this.draftKey(`c:${responseId}`));
    return form;
  }

  /** Drafts survive reloads, Ctrl+Enter posts, typing is announced, errors keep the text. */
  wireWriting(form, ta, submit, msg, parentId, draftKey) {
    ta.value = sessionStorage.getItem(draftKey) || '';
    ta.addEventListener('input', () => {
      if (ta.value) sessionStorage.setItem(draftKey, ta.value); else sessionStorage.removeItem(draftKey);
      if (ta.value.trim()) this.typed();
    });
    submitOnCtrlEnter(ta, form);
    let attempt = null; // {key, text}: a retry of the same text reuses its Idempotency-Key
    const label = submit.textContent;
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const text = ta.value;
      if (!text.trim()) {
        showFormMessage(msg, parentId ? 'Write a comment first.' : 'Write a response first.');
        ta.focus();
        return;
      }
      if (!attempt || attempt.text !== text) attempt = { key: newIdempotencyKey(), text };
      showFormMessage(msg, '');
      submit.disabled = true;
      submit.textContent = 'Posting…';
      try {
        const d = await postReply(this.id, text, parentId, attempt.key);
        attempt = null;
        if (ta.value === text) ta.value = '';
        sessionStorage.removeItem(draftKey);
        this.posted(d.post);
      } catch (err) {
        if (!(err instanceof ApiError) || !err.retryable) attempt = null;
        showFormMessage(msg, err.message);
        ta.focus();
      } finally {
        submit.disabled = false;
        submit.textContent = label;
      }
    });
  }

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

  // ---- votes, edits, deletes -------------------------------------------------

  async vote(id, value) {
    const r = this.refs.get(id);
    if (!this.me) { toast('Sign in to vote.'); return; }
    const found = findPost(this.state, id);
    if (!found) return;
    const next = found.post.my_vote === value ? 0 : value;
    showFormMessage(r.msg, '');
    try {
      const d = await api('PUT', `/api/posts/${id}/vote`, { value: next });
      this.state = updatePost(this.state, id, (p) => ({ ...p, score: d.score, my_vote: d.my_vote }));
      this.refreshPost(id);
    } catch (e) {
      showFormMessage(r.msg, e.message);
    }
  }

  openEditor(id, text = null, baseRevision = null) {
    const r = this.refs.get(id);
    const found = findPost(this.state, id);
    if (!r || !found) return;
    if (this.editors.has(id)) { this.editors.get(id).ta.focus(); return; }
    const post = found.post;
    const isQuestion = post.kind === 'question';
    const taId = `edit-${id}`;
    const ta = h('textarea', { id: taId, class: 'editor-input', rows: post.kind === 'comment' ? '2' : '7',
      maxlength: '20000', 'data-testid': 'edit-input' });
    ta.value = text ?? post.body;
    let titleInput = null;
    const me = this.me;
    if (isQuestion && me && (me.is_moderator || (post.author && post.author.id === me.id))) {
      titleInput = h('input', { id: `edit-title-${id}`, name: 'title', type: 'text', maxlength: '200',
        'data-testid': 'edit-title', value: this.state.thread.title });
    }
    const msg = formMessage();
    const save = h('button', { type: 'submit', class: 'btn btn-primary btn-sm', 'data-testid': 'edit-save' }, 'Save changes');
    const cancel = h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'edit-cancel' }, 'Cancel');
    const form = h('form', { class: 'editor', novalidate: true, 'data-testid': 'editor' },
      titleInput ? [h('label', { for: titleInput.id }, 'Title'), titleInput] : null,
      h('label', { for: taId, class: titleInput ? '' : 'sr-only' }, 'Edit post'), ta, msg,
      h('div', { class: 'form-actions' }, cancel, save));
    const ed = { form, ta, titleInput, msg, save, baseRevision: baseRevision ?? post.revision };
    this.editors.set(id, ed);
    cancel.addEventListener('click', () => this.closeEditor(id));
    form.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.preventDefault(); this.closeEditor(id); } });
    ta.addEventListener('input', () => this.typed());
    submitOnCtrlEnter(ta, form);
    form.addEventListener('submit', (e) => { e.preventDefault(); this.saveEdit(id); });
    r.body.hidden = true;
    r.actions.hidden = true;
    r.editorSlot.replaceChildren(form);
    ta.focus();
  }

  closeEditor(id) {
    const r = this.refs.get(id);
    this.editors.delete(id);
    if (!r) return;
    r.editorSlot.replaceChildren();
    r.body.hidden = false;
    this.refreshPost(id);
    const edit = r.actions.querySelector('[data-testid="edit"]');
    if (edit) edit.focus();
  }

  async saveEdit(id) {
    const ed = this.editors.get(id);
    if (!ed) return;
    const text = ed.ta.value;
    if (!text.trim()) { showFormMessage(ed.msg, "A post can't be empty."); ed.ta.focus(); return; }
    if (ed.titleInput) fieldError(ed.titleInput, '');
    showFormMessage(ed.msg, '');
    ed.save.disabled = true;
    try {
      if (ed.titleInput && ed.titleInput.value.trim() !== this.state.thread.title) {
        if (!ed.titleInput.value.trim()) throw new ApiError(422, 'invalid', 'The title cannot be empty.', 'title');
        const d = await api('PATCH', `/api/threads/${this.id}`, { title: ed.titleInput.value });
        this.state = { ...this.state, thread: { ...this.state.thread, ...d.thread, seq: this.state.thread.seq } };
        this.renderThreadHead();
      }
      const current = findPost(this.state, id);
      if (current && text.trim() !== (current.post.body || '').trim()) {
        const d = await api('PATCH', `/api/posts/${id}`, { body: text, revision: ed.baseRevision });
        this.state = updatePost(this.state, id, (p) => ((d.post.revision || 0) >= (p.revision || 0) ? mergePost(p, d.post) : p));
      }
      this.closeEditor(id);
      this.ctx.announce('Your changes were saved.');
    } catch (e) {
      if (e.status === 409 && !/lock/i.test(e.code)) {
        await this.staleEdit(id, ed);
      } else if (e.field === 'title' && ed.titleInput) {
        fieldError(ed.titleInput, e.message);
        ed.titleInput.focus();
      } else {
        showFormMessage(ed.msg, e.message);
        ed.ta.focus();
      }
    } finally {
      ed.save.disabled = false;
    }
  }

  /** 409 on save: show the latest version above the editor, keep the typed text, rebase on it. */
  async staleEdit(id, ed) {
    let latest = null;
    try {
      const d = await api('GET', `/api/posts/${id}/revisions`);
      latest = (d.revisions || [])[d.revisions.length - 1] || null;
    } catch { /* keep the old base; the message still explains */ }
    const r = this.refs.get(id);
    if (latest) {
      ed.baseRevision = latest.revision;
      if (r) setPostHtml(r.body, latest.html);
    }
    if (r) { r.body.hidden = false; r.body.classList.add('is-conflict'); }
    const who = latest && latest.edited_by ? displayName(latest.edited_by) : 'Someone else';
    showFormMessage(ed.msg, `${who} edited this post while you were writing. Their version is shown above; `
      + 'your text is kept here. Save again to replace theirs.');
    ed.ta.focus();
  }

  async deletePost(id) {
    const found = findPost(this.state, id);
    if (!found) return;
    const kind = found.post.kind;
    const ok = await confirmDialog(`Delete this ${kind}?`, kind === 'question'
      ? 'This deletes the whole thread for everyone.'
      : `Everyone will see "This ${kind} was deleted." in its place. This can't be undone.`);
    if (!ok) return;
    const r = this.refs.get(id);
    try {
      await api('DELETE', `/api/posts/${id}`);
      if (kind === 'question') { this.threadDeleted(); return; }
      this.state = updatePost(this.state, id, (p) => ({ ...p, deleted: true, body: '', html: '' }));
      this.refreshPost(id);
      this.updateCounts();
      this.ctx.announce(`Your ${kind} was deleted.`);
      if (r) r.root.focus();
    } catch (e) {
      if (r) showFormMessage(r.msg, e.message);
    }
  }

  async setLocked(locked) {
    try {
      const d = await api('PATCH', `/api/threads/${this.id}`, { locked });
      this.state = { ...this.state, thread: { ...this.state.thread, ...d.thread, seq: this.state.thread.seq } };
      this.renderThreadHead();
    } catch (e) {
      toast(e.message);
    }
  }

  async showRevisions(id) {
    let d;
    try {
      d = await api('GET', `/api/posts/${id}/revisions`);
    } catch (e) {
      toast(e.message);
      return;
    }
    const revs = (d.revisions || []).slice().reverse();
    const list = h('ol', { class: 'revisions', 'data-testid': 'revisions' }, revs.map((rv, i) => {
      const body = h('div', { class: 'prose revision-body' });
      setPostHtml(body, rv.html);
      return h('li', { class: 'revision', dataset: { revision: rv.revision } },
        h('div', { class: 'revision-meta' },
          h('strong', null, `Revision ${rv.revision}`),
          i === 0 ? h('span', { class: 'badge' }, 'Current') : null,
          h('span', null, rv.revision === 1 ? 'Posted by ' : 'Edited by ', displayName(rv.edited_by), ' · ',
            timeEl(rv.edited_at))),
        body);
    }));
    openDialog('Edit history', list, 'revisions-dialog');
  }
}
