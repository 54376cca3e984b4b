// One live connection for all the tabs of a browser (docs/live.md "One socket per browser"). The hub owns the
// Live (live.js) and serves ports, one per tab: it subscribes the socket to the union of the tabs' threads
// and lists, and gives each tab exactly the frames of its own subscriptions. It runs in the shared worker
// (sharedlive.js), or, where there is none, in the tab that leads (liveclient.js). Like centrifuge-js's and
// message_bus's shared clients, the tab keeps its own view of what it follows and re-sends it on joining.
//
// A port is {post(message)}. Tab → hub: join {tab, subs: [[thread, since]], feeds}, sub {thread, since},
// unsub {thread}, feed/unfeed {feed}, send {frame}, restart, wake, offline, online, settled, bye.
// Hub → tab: status {status, transport}, hello {user}, userchannel, frame {msg}, feedreset {feed},
// session-ended, sse.

import { Live } from './live.js';

const SETTLE_MS = 10000; // a tab that never answers session-ended (frozen) does not hold the socket back

export class Hub {
  /** @param {typeof Live} LiveImpl the connection (a stand-in in tests/web/js/livehub.test.mjs) */
  constructor(LiveImpl = Live) {
    this.ports = new Map(); // tab id -> {post, subs: Map(thread -> seq delivered, or null), feeds: Set, fresh: Set}
    this.user = undefined; // the last hello's user (undefined: no hello yet)
    this.onUserChannel = false;
    this.sitePresence = null; // the last site presence and flag count, for a tab that joins later
    this.flags = null;
    this.sse = false;
    this.offlineNow = false;
    this.settling = null; // {waiting: Set(tab), done()} while the tabs check a session that ended
    this.live = new LiveImpl({
      onStatus: (status) => this.all({ op: 'status', status, transport: 'ws' }),
      onHello: (user) => {
        this.user = user;
        this.onUserChannel = false;
        for (const p of this.ports.values()) for (const thread of p.subs.keys()) p.fresh.add(thread);
        this.all({ op: 'hello', user });
      },
      onUserChannel: () => { this.onUserChannel = true; this.all({ op: 'userchannel' }); },
      onSessionEnded: () => this.sessionEnded(),
      onFrame: (msg) => this.frame(msg),
      onSse: () => { this.sse = true; this.all({ op: 'sse' }); },
    });
    this.live.start();
  }

  all(message) {
    for (const p of this.ports.values()) p.post(message);
  }

  /** The lowest seq any tab of the thread holds: what the socket resumes after. */
  since(thread) {
    let low = null;
    for (const p of this.ports.values()) {
      const seq = p.subs.get(thread);
      if (typeof seq === 'number' && (low === null || seq < low)) low = seq;
    }
    return low;
  }

  watched(thread) { return [...this.ports.values()].some((p) => p.subs.has(thread)); }

  /** One frame from the server, to the tabs it is for. */
  frame(msg) {
    if (msg.feed !== undefined && msg.type !== 'error') {
      for (const p of this.ports.values()) if (p.feeds.has(msg.feed)) p.post({ op: 'frame', msg });
      return;
    }
    if (msg.thread === undefined || msg.type === 'notification' || msg.type === 'draft') {
      if (msg.type === 'presence' && msg.scope === 'site') this.sitePresence = msg;
      if (msg.type === 'flags') this.flags = msg;
      this.all({ op: 'frame', msg });
      return;
    }
    for (const p of this.ports.values()) {
      if (!p.subs.has(msg.thread)) continue;
      if (msg.type === 'event') {
        // The socket's stream restarts from the lowest seq held when a tab joins the thread: the others
        // skip what they already have.
        const seq = p.subs.get(msg.thread);
        if (typeof seq === 'number' && msg.seq <= seq) continue;
        p.subs.set(msg.thread, msg.seq);
      } else if (msg.type === 'subscribed') {
        // Only the tabs that asked hear `subscribed` (it may mean "catch up" or "reload") — all on a reset.
        if (!p.fresh.delete(msg.thread) && !msg.reset) continue;
        if (msg.reset && typeof msg.seq === 'number') p.subs.set(msg.thread, msg.seq);
      } else if (msg.type === 'unsubscribed') {
        continue;
      }
      p.post({ op: 'frame', msg });
    }
  }

  /** A message from the tab `tab` (port: how to answer it). */
  handle(tab, port, m) {
    if (m.op === 'join') { this.join(tab, port, m); return; }
    const p = this.ports.get(tab);
    if (!p) return; // not joined (a hub that just took over): its join follows
    switch (m.op) {
      case 'sub':
        p.subs.set(m.thread, typeof m.since === 'number' ? m.since : null);
        p.fresh.add(m.thread);
        // Subscribing again restarts the socket's stream from the lowest seq held (ws.py), with `subscribed`
        // and the thread's presence for the newcomer.
        this.live.subscribe(m.thread, { since: () => this.since(m.thread) });
        break;
      case 'unsub':
        p.subs.delete(m.thread);
        if (!this.watched(m.thread)) this.live.unsubscribe(m.thread);
        break;
      case 'feed':
        p.feeds.add(m.feed);
        if (!this.live.feeds.has(m.feed)) this.live.subscribeFeed(m.feed, { onReset: () => this.feedReset(m.feed) });
        break;
      case 'unfeed':
        p.feeds.delete(m.feed);
        if (![...this.ports.values()].some((q) => q.feeds.has(m.feed))) this.live.unsubscribeFeed(m.feed);
        break;
      case 'send': this.live.send(m.frame); break;
      case 'restart': this.live.restart(); break;
      case 'wake': if (!this.offlineNow) this.live.wake(); break;
      case 'offline': this.offlineNow = true; this.live.offline(); break;
      case 'online': this.offlineNow = false; this.live.wake(); break;
      case 'settled': this.settled(tab); break;
      case 'bye': this.leave(tab); break;
      default: break;
    }
  }

  /** A tab arrives (or arrives again, at a hub that took over): tell it where things stand, then follow
   * what it follows. */
  join(tab, port, m) {
    if (this.ports.has(tab)) this.leave(tab);
    const p = { post: port.post, subs: new Map(), feeds: new Set(), fresh: new Set() };
    this.ports.set(tab, p);
    if (this.sse) { p.post({ op: 'sse' }); return; }
    p.post({ op: 'status', status: this.live.status, transport: 'ws' });
    if (this.live.ready) {
      p.post({ op: 'hello', user: this.user });
      if (this.onUserChannel) p.post({ op: 'userchannel' });
      if (this.sitePresence) p.post({ op: 'frame', msg: this.sitePresence });
      if (this.flags) p.post({ op: 'frame', msg: this.flags });
    }
    for (const [thread, since] of m.subs || []) this.handle(tab, port, { op: 'sub', thread, since });
    for (const feed of m.feeds || []) this.handle(tab, port, { op: 'feed', feed });
  }

  /** A tab closed (its `bye`, or its lock released): drop what only it followed. */
  leave(tab) {
    const p = this.ports.get(tab);
    if (!p) return;
    this.ports.delete(tab);
    for (const thread of p.subs.keys()) if (!this.watched(thread)) this.live.unsubscribe(thread);
    for (const feed of p.feeds) {
      if (![...this.ports.values()].some((q) => q.feeds.has(feed))) this.live.unsubscribeFeed(feed);
    }
    this.settled(tab);
  }

  feedReset(feed) {
    for (const p of this.ports.values()) if (p.feeds.has(feed)) p.post({ op: 'feedreset', feed });
  }

  /** The socket's session ended (4001): every tab checks its own (a password changed in one of them keeps
   * it signed in); the socket comes back once they all have, with the cookie as it is then. */
  sessionEnded() {
    if (!this.ports.size) return null;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settled(null, true), SETTLE_MS);
      this.settling = { waiting: new Set(this.ports.keys()), done: () => { clearTimeout(timer); resolve(); } };
      this.all({ op: 'session-ended' });
    });
  }

  settled(tab, all = false) {
    const s = this.settling;
    if (!s) return;
    s.waiting.delete(tab);
    if (s.waiting.size && !all) return;
    this.settling = null;
    s.done();
  }
}
