// Unit tests of the bell's grouping (web/js/bellgroups.js): `node --test tests/web/js/`.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { actorNames, groupLead, groupNotifications, unreadGroups } from '../../../web/js/bellgroups.js';

const n = (id, kind, thread, actor, read = false) => ({
  id, kind, read, thread: { id: thread, title: `T${thread}` }, actor: { id: actor, display_name: `A${actor}` },
  post_id: id * 10, created_at: '2026-12-06T06:00:00Z',
});

test('notifications of one thread and kind make one group, newest first', () => {
  const groups = groupNotifications([n(9, 'followed', 1, 3), n(8, 'comment', 1, 2), n(7, 'followed', 1, 2),
    n(6, 'followed', 2, 4), n(5, 'followed', 1, 3, true)]);
  assert.deepEqual(groups.map((g) => g.key), ['1:followed', '1:comment', '2:followed']);
  const [first] = groups;
  assert.equal(first.count, 3);
  assert.equal(first.unread, 2);
  assert.deepEqual(first.unreadIds, [9, 7]);
  assert.deepEqual(first.actors.map((a) => a.id), [3, 2]);
  assert.equal(first.target.id, 7); // the oldest unread opens
  assert.equal(unreadGroups(groups), 3);
});

test('a group with nothing unread opens its newest and does not count', () => {
  const groups = groupNotifications([n(2, 'mention', 1, 3, true), n(1, 'mention', 1, 4, true)]);
  assert.equal(groups[0].target.id, 2);
  assert.equal(unreadGroups(groups), 0);
});

test('names and leads read as sentences', () => {
  assert.equal(actorNames(['Ada']), 'Ada');
  assert.equal(actorNames(['Ada', 'Bob']), 'Ada and Bob');
  assert.equal(actorNames(['Ada', 'Bob', 'Cy']), 'Ada, Bob and Cy');
  assert.equal(actorNames(['Ada', 'Bob', 'Cy', 'Di']), 'Ada, Bob and 2 others');
  assert.equal(groupLead({ kind: 'followed', count: 12, unread: 12 }), '12 new responses in');
  assert.equal(groupLead({ kind: 'followed', count: 12, unread: 1 }), '1 new response in');
  assert.equal(groupLead({ kind: 'followed', count: 12, unread: 0 }), '12 responses in');
  assert.equal(groupLead({ kind: 'response', count: 4, unread: 4 }), '4 new responses to your question');
  assert.equal(groupLead({ kind: 'response', count: 1 }), 'answered your question');
});
