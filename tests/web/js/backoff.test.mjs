// Unit tests of the reconnect back-off (web/js/backoff.js): `node --test tests/web/js/`.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ceiling, fullJitter } from '../../../web/js/backoff.js';

test('the ceiling doubles from the base and stops at the cap', () => {
  assert.deepEqual([0, 1, 2, 3, 6, 7, 20].map((n) => ceiling(n)), [500, 1000, 2000, 4000, 30000, 30000, 30000]);
  assert.equal(ceiling(-3), 500);
  assert.equal(ceiling(2, { base: 100, cap: 250 }), 250);
});

test('full jitter draws over the whole window, from zero to the ceiling', () => {
  assert.equal(fullJitter(3, { random: () => 0 }), 0);
  assert.equal(fullJitter(3, { random: () => 0.5 }), 2000);
  assert.ok(fullJitter(3, { random: () => 0.999999 }) < 4000);
  assert.equal(fullJitter(10, { random: () => 0.5 }), 15000);
});

test('a floor keeps a minimum wait and the window above it', () => {
  assert.equal(fullJitter(0, { floor: 5000, random: () => 0 }), 5000);
  assert.equal(fullJitter(0, { floor: 5000, random: () => 0.99 }), 5000); // the ceiling is below the floor
  assert.equal(fullJitter(5, { floor: 5000, random: () => 0.5 }), 5000 + 0.5 * (16000 - 5000));
});

test('a thousand clients retrying at once spread over the window, not in one instant', () => {
  let seed = 42;
  const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
  const waits = Array.from({ length: 1000 }, () => fullJitter(4, { random }));
  const buckets = new Array(8).fill(0);
  for (const w of waits) buckets[Math.floor(w / 1000)] += 1;
  assert.ok(waits.every((w) => w >= 0 && w < 8000));
  assert.ok(buckets.every((n) => n > 80 && n < 170), `uneven: ${buckets}`); // about 125 per second of 8
});
