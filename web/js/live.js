// The one live connection per tab: hello, presence, thread subscriptions resumed with
// `since`, typing, and reconnection with exponential backoff and full jitter. A websocket
// first; where one cannot get as far as `hello` (a proxy that refuses the upgrade) twice in a
// row, server-sent events instead (GET /api/stream, docs/live.md "Transports"): the same
// frames, resumed by Last-Event-ID; writes go over HTTP either way, typing is not sent.
// Inspired by message_bus's client: dependency-free, backs off after failures,
// and re-checks itself when a hidden tab (or a sleeping laptop) wakes up.

import { fullJitter } from './backoff.js';

const MAX_DELAY_MS = 30000;
const SESSION_ENDED = 4001; // close code: the socket's session ended (sign-out, password change, suspension, expiry)
const SSE_AFTER = 2; // websockets closed before their hello, in a row, before the page listens over SSE instead

export class Live {
  /**
   * @param {{onStatus?: Function, onHello?: Function, onSitePresence?: Function, onSessionEnded?: Function}} handlers
   */
  constructor(handlers = {}) {
    this.handlers = handlers;
    this.subs = new Map(); // thread id -> {since(), onEvent, onSubscribed, onPresence, onTyping, onResume}
    this.feeds = new Map(); // feed name -> {onFeed(thread), onReset()}: soft, reloaded after a reconnect
    this.ws = null;
    this.ready = false; // hello received on the current socket
    this.attempt = 0;
    this.timer = null;
    this.lastHeard = 0;
    this.heartbeatMs = 30000;
    this.pingSeq = 0;
    this.everConnected = false;
    this.status = 'connecting';
    this.stopped = false;
    this.transport = 'ws'; // or 'sse': set for the page's life once websockets fail SSE_AFTER times
    this.es = null; // the EventSource, in 'sse'
    this.esThread = null; // the thread its URL follows
    this.esFeed = null; // and the feed
    this.noHello = 0; // websockets in a row that closed before their hello
    this.watchdog = setInterval(() => this.checkAlive(), 5000);
    // In a tab, the tab's own signals; in the shared worker (sharedlive.js) the tabs pass them on.
    if (typeof document === 'undefined') return;
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.wake();
    });
    window.addEventListener('online', () => this.wake());
    window.addEventListener('offline', () => this.offline());
    window.addEventListener('pageshow', (e) => { if (e.persisted) this.wake(); });
  }

  /** No network: say so, and stop trying until the browser says it is back (`online` wakes it up). */
  offline() {
    this.drop(false);
    clearTimeout(this.timer);
    this.timer = null;
    this.setStatus('offline');
  }

  url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/ws`;
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    if (this.handlers.onStatus) this.handlers.onStatus(status);
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  /** Reconnect at once (e.g. after signing in or out: the socket's identity changes). */
  restart() {
    this.attempt = 0;
    this.drop(false);
    this.connect();
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped) return;
    if (typeof navigator !== 'undefined' && navigator.onLine === false) { this.setStatus('offline'); return; }
    this.setStatus(this.everConnected ? 'reconnecting' : 'connecting');
    if (this.transport === 'sse') { this.connectSse(); return; }
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect(1006);
      return;
    }
    this.ws = ws;
    this.ready = false;
    this.lastHeard = Date.now();
    ws.onmessage = (e) => this.onMessage(e);
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const heard = this.ready;
      this.ready = false;
      const canSse = this.handlers.onSse || typeof EventSource === 'function';
      if (!heard && e.code !== SESSION_ENDED && canSse && ++this.noHello >= SSE_AFTER) {
        // The upgrade is refused or cut on the way (a proxy, a captive portal): listen over HTTP instead.
        // A shared connection (livehub.js) hands this over to each tab: a stream follows one thread.
        if (this.handlers.onSse) { this.stopped = true; this.handlers.onSse(); return; }
        this.transport = 'sse';
        this.attempt = 0;
        this.connect();
        return;
      }
      if (e.code === SESSION_ENDED) {
        // The session behind this socket ended (contract: 4001): a sign-out, a suspension, or a password
        // change (maybe this tab's own, after which the cookie holds the new session). The page finds out
        // which (onSessionEnded answers a promise), then the socket comes back with the cookie as it is now:
        // signed in again, or a guest.
        this.attempt = 0;
        this.setStatus('reconnecting');
        const settled = this.handlers.onSessionEnded ? this.handlers.onSessionEnded() : null;
        Promise.resolve(settled).catch(() => {}).then(() => { if (!this.ws && !this.timer) this.connect(); });
        return;
      }
      this.scheduleReconnect(e.code);
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  /** The stream of the SSE transport: the thread subscribed (at most one is followed: the page shows one),
   * resumed after what it holds (its since()), and EventSource's own reconnects resume by Last-Event-ID. */
  connectSse() {
    this.closeSse();
    const [thread, sub] = [...this.subs][0] || [null, null];
    const params = new URLSearchParams();
    if (thread !== null) {
      params.set('thread', String(thread));
      const since = sub.since ? sub.since() : null;
      if (typeof since === 'number') params.set('since', String(since));
    }
    const [feed] = [...this.feeds.keys()]; // a list page follows one feed
    if (feed) params.set('feed', feed);
    this.esFeed = feed || null;
    const query = params.toString();
    const es = new EventSource(`/api/stream${query ? `?${query}` : ''}`);
    this.es = es;
    this.esThread = thread;
    this.ready = false;
    this.lastHeard = Date.now();
    es.onmessage = (e) => { if (this.es === es) this.onMessage(e); };
    es.addEventListener('close', () => { // {"code": 4001}: the session ended, as a socket's close says
      if (this.es !== es) return;
      this.closeSse();
      this.attempt = 0;
      this.setStatus('reconnecting');
      const settled = this.handlers.onSessionEnded ? this.handlers.onSessionEnded() : null;
      Promise.resolve(settled).catch(() => {}).then(() => { if (!this.es && !this.timer) this.connect(); });
    });
    es.onerror = () => {
      if (this.es !== es) return;
      this.ready = false;
      if (es.readyState === EventSource.CLOSED) { // refused (an HTTP error): back off, then open it again
        this.closeSse();
        this.scheduleReconnect(1006);
      } else {
        this.setStatus('reconnecting'); // EventSource reconnects by itself, with Last-Event-ID
      }
    };
  }

  closeSse() {
    const es = this.es;
    this.es = null;
    this.esThread = null;
    this.esFeed = null;
    if (es) { es.onmessage = null; es.onerror = null; es.close(); }
  }

  /** Forget the current socket without waiting for its close handshake. */
  drop(reconnect = true) {
    this.closeSse();
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      try { ws.close(1000); } catch { /* already closed */ }
    }
    if (reconnect) this.scheduleReconnect(1006);
  }

  scheduleReconnect(code) {
    if (this.stopped || this.timer) return;
    if (typeof navigator !== 'undefined' && navigator.onLine === false) { this.setStatus('offline'); return; }
    this.setStatus('reconnecting');
    // Full jitter (./backoff.js) spreads a crowd of clients out after a server restart: uniform in
    // [0, min(30 s, 500 ms · 2^attempt)), so even the first retries do not come back in one instant.
    let delay = fullJitter(this.attempt, { cap: MAX_DELAY_MS });
    if (code === 1008) delay = fullJitter(this.attempt, { cap: MAX_DELAY_MS, floor: 5000 }); // a rule broken: not soon
    // Restarting (1012) or too slow (1013): the first retry within a second, spread over all of it.
    if ((code === 1012 || code === 1013) && this.attempt === 0) delay = fullJitter(0, { base: 1000 });
    this.attempt += 1;
    this.timer = setTimeout(() => { this.timer = null; this.connect(); }, delay);
  }

  /** Tab visible again, network back, or page restored: verify the socket and catch up. */
  wake() {
    if (this.stopped) return;
    if (this.transport === 'sse') {
      if (!this.es || this.es.readyState === EventSource.CLOSED) { this.attempt = 0; this.connect(); }
      for (const sub of this.subs.values()) if (sub.onResume) sub.onResume();
      return;
    }
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      this.attempt = 0;
      clearTimeout(this.timer);
      this.timer = null;
      if (!this.ws) this.connect();
      return;
    }
    const sentAt = Date.now();
    this.send({ type: 'ping', id: `wake-${++this.pingSeq}` });
    setTimeout(() => {
      if (this.ws && this.lastHeard < sentAt) this.drop(); // no answer: the socket is dead
    }, 5000);
    for (const sub of this.subs.values()) if (sub.onResume) sub.onResume();
  }

  checkAlive() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const quiet = Date.now() - this.lastHeard;
    if (quiet > 2 * this.heartbeatMs) {
      this.drop();
    } else if (quiet > this.heartbeatMs * 0.9) {
      this.send({ type: 'ping', id: `hb-${++this.pingSeq}` });
    }
  }

  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  onMessage(e) {
    this.lastHeard = Date.now();
    let msg;
    try { msg = JSON.parse(e.data); } catch { return; }
    if (msg.type === 'hello') {
      this.ready = true;
      this.attempt = 0;
      this.noHello = 0;
      this.everConnected = true;
      if (msg.heartbeat) this.heartbeatMs = Math.max(5, Number(msg.heartbeat)) * 1000;
      this.setStatus('online');
      if (this.handlers.onHello) this.handlers.onHello(msg.user || null);
      for (const [thread, s] of this.subs) this.sendSubscribe(thread, s);
      // The server answers frames only once the socket is on its user channel: the pong says so. A stream
      // is answered only once it is on it: its hello says so.
      if (this.transport === 'sse') {
        if (this.handlers.onUserChannel) this.handlers.onUserChannel();
      } else {
        this.send({ type: 'ping', id: 'user-channel' });
      }
      for (const [feed, f] of this.feeds) {
        this.send({ type: 'subscribe', feed });
        if (f.connected && f.onReset) f.onReset(); // feeds replay nothing: reload the list
        f.connected = true;
      }
    } else if (msg.type === 'pong') {
      if (msg.id === 'user-channel' && this.handlers.onUserChannel) this.handlers.onUserChannel();
    } else if (this.handlers.onFrame) {
      this.handlers.onFrame(msg); // a shared connection sorts the frames out for its tabs (livehub.js)
    } else {
      route(msg, this.handlers, this.subs, this.feeds);
    }
  }

  sendSubscribe(thread, sub) {
    const frame = { type: 'subscribe', thread };
    const since = sub.since ? sub.since() : null;
    if (typeof since === 'number') frame.since = since;
    this.send(frame);
  }

  /** Watch a thread; events after handlers.since() are replayed first. */
  subscribe(thread, handlers) {
    this.subs.set(thread, handlers);
    if (this.transport === 'sse') { if (this.esThread !== thread) this.connect(); return; }
    if (this.ready) this.sendSubscribe(thread, handlers);
  }

  unsubscribe(thread) {
    if (!this.subs.delete(thread)) return;
    if (this.transport === 'sse') { if (this.esThread === thread) this.connect(); return; }
    if (this.ready) this.send({ type: 'unsubscribe', thread });
  }

  /** Follow a thread list ("all" or "category:SLUG"): handlers.onFeed(thread), onReset() after a reconnect. */
  subscribeFeed(feed, handlers) {
    this.feeds.set(feed, { ...handlers, connected: this.ready });
    if (this.transport === 'sse') { if (this.esFeed !== feed) this.connect(); return; }
    if (this.ready) this.send({ type: 'subscribe', feed });
  }

  unsubscribeFeed(feed) {
    if (!this.feeds.delete(feed)) return;
    if (this.transport === 'sse') { if (this.esFeed === feed) this.connect(); return; }
    if (this.ready) this.send({ type: 'unsubscribe', feed });
  }

  /** "I am typing" in a thread: a response, or (parent: a response id) a comment under that response. */
  sendTyping(thread, parent = null) {
    const frame = { type: 'typing', thread };
    if (parent) frame.parent = parent;
    return this.ready && this.send(frame);
  }
}

/** Hand one frame (not hello, not pong) to the page's handlers: a thread's to its subscription's (subs: thread
 * id -> handlers), a list's to its feed's, the user's and the site's to the page's. Live's and LiveClient's. */
export function route(msg, handlers, subs, feeds) {
  const sub = msg.thread !== undefined ? subs.get(msg.thread) : null;
  switch (msg.type) {
    case 'notification':
    case 'notifications':
      if (handlers.onNotification) handlers.onNotification(msg);
      break;
    case 'feed': {
      const f = feeds.get(msg.feed);
      if (f && f.onFeed && msg.thread) f.onFeed(msg.thread);
      break;
    }
    case 'presence':
      if (msg.scope === 'site') {
        if (handlers.onSitePresence) handlers.onSitePresence(msg);
      } else if (sub && sub.onPresence) {
        sub.onPresence(msg);
      }
      break;
    case 'event':
      if (sub && sub.onEvent) sub.onEvent(msg);
      break;
    case 'subscribed':
      if (sub && sub.onSubscribed) sub.onSubscribed(msg);
      break;
    case 'typing':
      if (sub && sub.onTyping && msg.user) sub.onTyping(msg.user, Number.isInteger(msg.parent) ? msg.parent : null);
      break;
    case 'error':
      console.warn('parley: server says', msg.code, msg.message);
      break;
    case 'draft': // the person's draft changed in another tab or on another device (drafts.js)
      if (handlers.onDraft) handlers.onDraft(msg.draft);
      break;
    case 'flags':
      if (handlers.onFlagCount) handlers.onFlagCount(msg.open);
      break;
    case 'silenced': // an account silenced or its silence lifted (every socket hears it): pages hide or reread
      if (handlers.onSilenced && msg.user) handlers.onSilenced(msg);
      break;
    case 'my_vote': // this user's vote, from any of their tabs (the thread's events carry my_vote 0)
      if (sub && sub.onMyVote) sub.onMyVote(msg);
      break;
    default:
      break; // unsubscribed
  }
}
