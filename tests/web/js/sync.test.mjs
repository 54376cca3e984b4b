// Unit tests of the thread's sync module (no DOM): run with `node --test tests/web/js/`.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ThreadSync } from '../../../web/js/views/thread/sync.js';

const post = (id, kind, parent) => ({ id, kind, parent_id: parent, body: `b${id}`, html: '', score: 0, my_vote: 0,
  deleted: false, revision: 1 });
const created = (seq, id) => ({ thread: 1, seq, name: 'post.created', data: post(id, 'response', 1) });

function fakeServer(events) {
  const calls = [];
  const get = async (path) => {
    calls.push(path);
    if (path.includes('/events')) {
      const since = Number(new URL(path, 'http://x').searchParams.get('since'));
      const evs = events.filter((e) => e.seq > since);
      return { events: evs, seq: events.length ? events[events.length - 1].seq : since };
    }
    return { thread: { id: 1, seq: 1, title: 'T' }, question: post(1, 'question', null), responses: [], next: null };
  };
  return { get, calls };
}

test('events apply in seq order, duplicates are dropped', async () => {
  const changes = [];
  const { get } = fakeServer([]);
  const s = new ThreadSync(1, { get, onChange: (c) => changes.push(c.type) });
  await s.load();
  s.receive(created(2, 10));
  s.receive(created(2, 10));
  s.receive(created(3, 11));
  assert.equal(s.seq, 3);
  assert.deepEqual(s.state.responses.map((r) => r.id), [10, 11]);
  assert.deepEqual(changes, ['created', 'created']);
});

test('a gap is filled from /events before later events apply', async () => {
  const { get, calls } = fakeServer([created(2, 10), created(3, 11), created(4, 12)]);
  const s = new ThreadSync(1, { get });
  await s.load();
  s.receive(created(4, 12)); // 2 and 3 are missing
  await new Promise((r) => setTimeout(r, 0));
  await new Promise((r) => setTimeout(r, 0));
  assert.ok(calls.some((c) => c.includes('/events?since=1')));
  assert.equal(s.seq, 4);
  assert.deepEqual(s.state.responses.map((r) => r.id), [10, 11, 12]);
});

test('a reset subscription reloads the thread and says so', async () => {
  let reloaded = 0;
  const { get, calls } = fakeServer([]);
  const s = new ThreadSync(1, { get, onReloaded: () => { reloaded += 1; } });
  await s.load();
  s.subscribed({ reset: true, seq: 1 });
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(reloaded, 1);
  assert.equal(calls.filter((c) => c.startsWith('/api/threads/1?')).length, 2);
});
