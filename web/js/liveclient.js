// A tab's side of the browser's one live connection (docs/live.md "One socket per browser"). openLive()
// gives the page an object with Live's methods (live.js) that subscribes through the shared connection:
// the shared worker (sharedlive.js) where the browser has SharedWorker; else the tab that holds the Web
// Lock `parley-live` runs the hub (livehub.js) and the others talk to it over a BroadcastChannel, and when
// it closes the next tab in the lock's queue takes over and every tab joins it again with its own `since`;
// else (neither) a socket of the tab's own, as before. Where websockets are refused the hub hands the
// connection back and each tab listens over its own stream (/api/stream follows one thread).

import { Live, route } from './live.js';
import { Hub } from './livehub.js';

const LEADER_LOCK = 'parley-live';

export class LiveClient {
  /** @param {object} handlers Live's handlers; post(message) reaches the hub. */
  constructor(handlers) {
    this.handlers = handlers;
    this.subs = new Map(); // thread -> handlers, as Live's
    this.feeds = new Map();
    this.tab = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    this.post = () => {};
    this.status = 'connecting';
    this.transport = 'ws';
    this.everOnline = false;
    this.local = null; // a Live of the tab's own, once the hub says websockets are refused
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.wake();
    });
    window.addEventListener('online', () => { if (!this.local) this.post({ op: 'online' }); });
    window.addEventListener('offline', () => { if (!this.local) this.post({ op: 'offline' }); });
    window.addEventListener('pagehide', () => { if (!this.local) this.post({ op: 'bye' }); });
    window.addEventListener('pageshow', (e) => { if (e.persisted && !this.local) { this.join(); this.wake(); } });
  }

  /** Tell the hub who we are and everything we follow, each thread with the seq we hold. */
  join() {
    const subs = [...this.subs].map(([thread, h]) => [thread, h.since ? h.since() : null]);
    this.post({ op: 'join', tab: this.tab, subs, feeds: [...this.feeds.keys()] });
  }

  /** A message from the hub. */
  receive(m) {
    if (this.local) return;
    switch (m.op) {
      case 'status': {
        // A hub that took over starts as "connecting": to the page it is a reconnection (parley:back).
        const status = m.status === 'connecting' && this.everOnline ? 'reconnecting' : m.status;
        if (status === 'online') this.everOnline = true;
        if (status !== this.status) { this.status = status; if (this.handlers.onStatus) this.handlers.onStatus(status); }
        break;
      }
      case 'hello': if (this.handlers.onHello) this.handlers.onHello(m.user); break;
      case 'userchannel': if (this.handlers.onUserChannel) this.handlers.onUserChannel(); break;
      case 'frame': route(m.msg, this.handlers, this.subs, this.feeds); break;
      case 'feedreset': { const f = this.feeds.get(m.feed); if (f && f.onReset) f.onReset(); break; }
      case 'session-ended': {
        const settled = this.handlers.onSessionEnded ? this.handlers.onSessionEnded() : null;
        Promise.resolve(settled).catch(() => {}).then(() => this.post({ op: 'settled' }));
        break;
      }
      case 'sse': this.goLocal('sse'); break;
      default: break;
    }
  }

  /** A connection of the tab's own: over a stream where websockets are refused (the hub says `sse`), or a
   * socket where no connection can be shared. */
  goLocal(transport = 'sse') {
    this.post({ op: 'bye' });
    this.post = () => {};
    const live = new Live(this.handlers);
    live.transport = transport;
    for (const [thread, h] of this.subs) live.subs.set(thread, h);
    for (const [feed, f] of this.feeds) live.feeds.set(feed, { ...f, connected: false });
    this.local = live;
    this.transport = transport;
    live.start();
  }

  start() { this.join(); }
  restart() { if (this.local) this.local.restart(); else this.post({ op: 'restart' }); }

  wake() {
    if (this.local) return; // its own listeners
    this.post({ op: 'wake' });
    for (const sub of this.subs.values()) if (sub.onResume) sub.onResume();
  }

  subscribe(thread, handlers) {
    this.subs.set(thread, handlers);
    if (this.local) { this.local.subscribe(thread, handlers); return; }
    this.post({ op: 'sub', thread, since: handlers.since ? handlers.since() : null });
  }

  unsubscribe(thread) {
    if (!this.subs.delete(thread)) return;
    if (this.local) this.local.unsubscribe(thread);
    else this.post({ op: 'unsub', thread });
  }

  subscribeFeed(feed, handlers) {
    this.feeds.set(feed, handlers);
    if (this.local) this.local.subscribeFeed(feed, handlers);
    else this.post({ op: 'feed', feed });
  }

  unsubscribeFeed(feed) {
    if (!this.feeds.delete(feed)) return;
    if (this.local) this.local.unsubscribeFeed(feed);
    else this.post({ op: 'unfeed', feed });
  }

  sendTyping(thread, parent = null) {
    if (this.local) return this.local.sendTyping(thread, parent);
    if (this.status !== 'online') return false;
    const frame = { type: 'typing', thread };
    if (parent) frame.parent = parent;
    this.post({ op: 'send', frame });
    return true;
  }
}

/** A lock held for the tab's life (resolves once granted): the hub sees it released when the tab goes, even
 * without a `bye`. The tab speaks to the hub only once it holds it, or the hub's wait would be granted first. */
function tabLock(tab) {
  if (!navigator.locks) return Promise.resolve();
  return new Promise((held) => {
    navigator.locks.request(`parley-tab-${tab}`, () => { held(); return new Promise(() => {}); });
  });
}

/** The tabs' shared connection through the shared worker. */
function viaWorker(client, held) {
  const worker = new SharedWorker('/static/js/sharedlive.js', { type: 'module', name: 'parley-live' });
  let heard = false;
  worker.port.onmessage = (e) => { heard = true; client.receive(e.data); };
  worker.port.start();
  client.post = (m) => { held.then(() => worker.port.postMessage(m)); }; // in order: one resolved promise
  // A browser whose shared workers cannot be modules fails to load the script: share through a leader.
  worker.onerror = () => {
    if (heard) return;
    worker.port.close();
    if (typeof BroadcastChannel === 'function' && navigator.locks) viaLeader(client, held);
    else client.goLocal('ws');
    client.join();
  };
}

/** No shared worker: the tab holding the lock runs the hub; the others reach it over a BroadcastChannel
 * (messages carry `to`: 'hub', a tab id, or '*'). */
function viaLeader(client, held) {
  const channel = new BroadcastChannel('parley-live');
  const toHub = (m) => { held.then(() => channel.postMessage({ ...m, to: 'hub', from: client.tab })); };
  client.post = toHub;
  let hub = null;
  channel.onmessage = (e) => {
    const m = e.data || {};
    if (hub && m.to === 'hub') {
      const from = m.from;
      if (m.op === 'join' && !hub.ports.has(from)) {
        navigator.locks.request(`parley-tab-${from}`, () => { if (hub) hub.leave(from); });
      }
      hub.handle(from, { post: (r) => channel.postMessage({ ...r, to: from }) }, m);
    } else if (m.to === client.tab || m.to === '*') {
      if (m.op === 'leader') client.join(); // a new hub: join it with what we hold
      else client.receive(m);
    }
  };
  navigator.locks.request(LEADER_LOCK, () => {
    hub = new Hub();
    const self = { post: (r) => client.receive(r) };
    client.post = (m) => hub.handle(client.tab, self, m);
    client.join();
    channel.postMessage({ op: 'leader', to: '*' });
    return new Promise(() => {}); // lead until the tab closes
  });
}

/** The page's live connection: shared by the browser's tabs where it can be. */
export function openLive(handlers) {
  const shared = typeof SharedWorker === 'function';
  const leader = typeof BroadcastChannel === 'function' && typeof navigator !== 'undefined' && navigator.locks;
  if (!shared && !leader) return new Live(handlers);
  const client = new LiveClient(handlers);
  const held = tabLock(client.tab);
  if (shared) viaWorker(client, held);
  else viaLeader(client, held);
  return client;
}
