// Unit tests of the hub behind "one socket per browser" (web/js/livehub.js): which tab gets which frame, what
// the shared socket subscribes to, and with which `since`. The connection is a stand-in: `node --test tests/web/js/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Hub } from '../../../web/js/livehub.js';

/** Live's surface as the hub uses it; `sent` records what would go on the socket. */
class FakeLive {
  constructor(handlers) {
    this.handlers = handlers;
    this.subs = new Map();
    this.feeds = new Map();
    this.sent = [];
    this.status = 'connecting';
    this.ready = false;
  }

  start() {}
  subscribe(thread, h) { this.subs.set(thread, h); this.sent.push({ type: 'subscribe', thread, since: h.since() }); }
  unsubscribe(thread) { this.subs.delete(thread); this.sent.push({ type: 'unsubscribe', thread }); }
  subscribeFeed(feed, h) { this.feeds.set(feed, h); this.sent.push({ type: 'subscribe', feed }); }
  unsubscribeFeed(feed) { this.feeds.delete(feed); this.sent.push({ type: 'unsubscribe', feed }); }
  send(frame) { this.sent.push(frame); }
  /** The server says hello: as Live does, status, then the hub's handler. */
  hello(user) { this.ready = true; this.status = 'online'; this.handlers.onStatus('online'); this.handlers.onHello(user); }
  frame(msg) { this.handlers.onFrame(msg); }
}

function setup() {
  const hub = new Hub(FakeLive);
  const inbox = {};
  const tab = (id, subs = [], feeds = []) => {
    inbox[id] = [];
    hub.handle(id, { post: (m) => inbox[id].push(m) }, { op: 'join', tab: id, subs, feeds });
  };
  const frames = (id) => inbox[id].filter((m) => m.op === 'frame').map((m) => m.msg);
  return { hub, live: hub.live, inbox, tab, frames };
}

const event = (thread, seq) => ({ type: 'event', thread, seq, name: 'post', data: {} });

test('each tab gets the events of its own threads only', () => {
  const { live, tab, frames } = setup();
  tab('a', [[1, 5]]);
  tab('b', [[2, 9]]);
  live.hello({ id: 7 });
  live.frame(event(1, 6));
  live.frame(event(2, 10));
  assert.deepEqual(frames('a').map((m) => [m.thread, m.seq]), [[1, 6]]);
  assert.deepEqual(frames('b').map((m) => [m.thread, m.seq]), [[2, 10]]);
});

test('a tab joining a followed thread resubscribes from the lowest seq held; nobody gets an event twice', () => {
  const { live, tab, frames } = setup();
  tab('a', [[1, 5]]);
  live.frame(event(1, 6));
  live.frame(event(1, 7));
  tab('b', [[1, 4]]);
  assert.deepEqual(live.sent.at(-1), { type: 'subscribe', thread: 1, since: 4 });
  for (const seq of [5, 6, 7, 8]) live.frame(event(1, seq)); // the replay after 4, then a new event
  assert.deepEqual(frames('a').map((m) => m.seq), [6, 7, 8]);
  assert.deepEqual(frames('b').map((m) => m.seq), [5, 6, 7, 8]);
});

test('subscribed goes to the tab that asked; a reset goes to every tab of the thread', () => {
  const { live, tab, frames } = setup();
  tab('a', [[1, 5]]);
  live.frame({ type: 'subscribed', thread: 1, seq: 5 });
  tab('b', [[1, 5]]);
  live.frame({ type: 'subscribed', thread: 1, seq: 5 });
  assert.equal(frames('a').filter((m) => m.type === 'subscribed').length, 1);
  assert.equal(frames('b').filter((m) => m.type === 'subscribed').length, 1);
  live.frame({ type: 'subscribed', thread: 1, seq: 90, reset: true });
  assert.equal(frames('a').filter((m) => m.reset).length, 1);
  assert.equal(frames('b').filter((m) => m.reset).length, 1);
});

test('the socket leaves a thread or a list only when its last tab does', () => {
  const { hub, live, tab } = setup();
  tab('a', [[1, 5]], ['all']);
  tab('b', [[1, 5]], ['all']);
  assert.equal(live.sent.filter((f) => f.feed === 'all').length, 1); // one subscription for both tabs
  hub.handle('a', null, { op: 'unsub', thread: 1 });
  hub.handle('a', null, { op: 'unfeed', feed: 'all' });
  assert.equal(live.sent.filter((f) => f.type === 'unsubscribe').length, 0);
  hub.handle('b', null, { op: 'bye' });
  assert.deepEqual(live.sent.filter((f) => f.type === 'unsubscribe'),
    [{ type: 'unsubscribe', thread: 1 }, { type: 'unsubscribe', feed: 'all' }]);
});

test("the user's frames and site presence reach every tab; a tab that joins later is told where things stand", () => {
  const { live, tab, frames, inbox } = setup();
  tab('a');
  live.hello({ id: 7 });
  live.handlers.onUserChannel();
  live.frame({ type: 'presence', scope: 'site', users: [], count: 1, guests: 0 });
  live.frame({ type: 'draft', draft: { key: 'ask', body: 'x' } });
  tab('b');
  assert.deepEqual(inbox.b.map((m) => m.op), ['status', 'hello', 'userchannel', 'frame']);
  assert.deepEqual(frames('a').map((m) => m.type), ['presence', 'draft']);
});

test('after a 4001 the socket comes back once every tab has checked its session', async () => {
  const { hub, live, tab, inbox } = setup();
  tab('a');
  tab('b');
  let back = false;
  const settled = live.handlers.onSessionEnded().then(() => { back = true; });
  assert.ok(inbox.a.some((m) => m.op === 'session-ended') && inbox.b.some((m) => m.op === 'session-ended'));
  hub.handle('a', null, { op: 'settled' });
  await Promise.resolve();
  assert.equal(back, false);
  hub.handle('b', null, { op: 'settled' });
  await settled;
  assert.equal(back, true);
});

test('typing from a tab goes out on the shared socket', () => {
  const { hub, live, tab } = setup();
  tab('a', [[1, 5]]);
  hub.handle('a', null, { op: 'send', frame: { type: 'typing', thread: 1 } });
  assert.deepEqual(live.sent.at(-1), { type: 'typing', thread: 1 });
});
