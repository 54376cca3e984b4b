// A thread's state kept in step with the server, with no DOM: the first load
// over HTTP, live events buffered and applied in seq order, a gap filled from
// /events (catch-up), and a full reload when the history was pruned or the
// subscription was reset. The view is told about each change through hooks.

import { api, ApiError } from '../../api.js';
import { applyEvent } from '../../apply.js';

const PAGE = 100;

/** Load a whole thread over HTTP (every page of responses). */
export async function fetchThread(id, get = (path) => api('GET', path)) {
  const first = await get(`/api/threads/${id}?limit=${PAGE}`);
  const responses = [...(first.responses || [])];
  let next = first.next;
  while (next) {
    const more = await get(`/api/threads/${id}?limit=${PAGE}&after=${encodeURIComponent(next)}`);
    responses.push(...(more.responses || []));
    next = more.next;
  }
  return {
    thread: first.thread,
    question: first.question,
    responses: responses.map((r) => ({ ...r, comments: r.comments || [] })),
  };
}

export class ThreadSync {
  /**
   * @param {number} id thread id
   * @param {{onChange?: Function, onReloaded?: Function, onGone?: Function, get?: Function}} hooks
   *   onChange(change, live) after an event changed the state; onReloaded() after a full reload;
   *   onGone() when the thread answers 404; get(path) fetches JSON (injectable for tests).
   */
  constructor(id, hooks = {}) {
    this.id = id;
    this.hooks = hooks;
    this.get = hooks.get || ((path) => api('GET', path));
    this.state = null;
    this.pending = []; // live events waiting for a load or a gap to fill
    this.reloading = false;
    this.catchingUp = false;
    this.alive = true;
  }

  get seq() { return this.state ? this.state.thread.seq : null; }

  async load() {
    this.state = await fetchThread(this.id, this.get);
    return this.state;
  }

  stop() { this.alive = false; }

  /** The answer to our subscribe frame: reset means reload, a higher seq means catch up. */
  subscribed(msg) {
    if (msg.reset) this.reload();
    else if (this.state && msg.seq > this.state.thread.seq) this.catchUp();
  }

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
        const d = await this.get(`/api/threads/${this.id}/events?since=${since}&limit=200`);
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

  /** Reload the thread over HTTP (subscribed with reset); the view keeps drafts and open editors. */
  async reload() {
    if (this.reloading || !this.alive) return;
    this.reloading = true;
    try {
      const fresh = await fetchThread(this.id, this.get);
      if (!this.alive) return;
      this.state = fresh;
      if (this.hooks.onReloaded) this.hooks.onReloaded();
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && this.hooks.onGone) this.hooks.onGone();
    } finally {
      this.reloading = false;
    }
    this.drain();
  }

  apply(ev, live) {
    const { state, change } = applyEvent(this.state, ev);
    this.state = state;
    if (change && this.hooks.onChange) this.hooks.onChange(change, live);
  }
}
