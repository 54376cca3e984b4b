// Unit tests of the word diff (web/js/diff.js): `node --test tests/web/js/`.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { tokenize, wordDiff } from '../../../web/js/diff.js';

const apply = (parts, side) => parts.filter((p) => p.op === '=' || p.op === side).map((p) => p.text).join('');

test('tokens are words and whitespace runs', () => {
  assert.deepEqual(tokenize('a  b\nc'), ['a', '  ', 'b', '\n', 'c']);
  assert.deepEqual(tokenize(''), []);
});

test('an unchanged text is one equal part', () => {
  assert.deepEqual(wordDiff('same words', 'same words'), [{ op: '=', text: 'same words' }]);
});

test('a changed word is deleted and inserted, the rest kept', () => {
  assert.deepEqual(wordDiff('feed it a stiff meal', 'feed it a wet meal'), [
    { op: '=', text: 'feed it a ' }, { op: '-', text: 'stiff' }, { op: '+', text: 'wet' }, { op: '=', text: ' meal' }]);
});

test('insertions and deletions in the middle', () => {
  const parts = wordDiff('one two three four', 'one three four five');
  assert.equal(apply(parts, '-'), 'one two three four');
  assert.equal(apply(parts, '+'), 'one three four five');
  assert.ok(parts.some((p) => p.op === '-' && p.text.includes('two')));
  assert.ok(parts.some((p) => p.op === '+' && p.text.includes('five')));
});

test('both sides are always reconstructed, from empty too', () => {
  for (const [a, b] of [['', 'new text'], ['old text', ''], ['a b a b', 'b a b a'], ['x\n\ny', 'x\ny']]) {
    const parts = wordDiff(a, b);
    assert.equal(apply(parts, '-'), a);
    assert.equal(apply(parts, '+'), b);
  }
});

test('huge texts fall back to delete-all, insert-all', () => {
  const a = Array.from({ length: 3000 }, (_, i) => `a${i}`).join(' ');
  const b = Array.from({ length: 3000 }, (_, i) => `b${i}`).join(' ');
  const parts = wordDiff(a, b);
  assert.equal(apply(parts, '-'), a);
  assert.equal(apply(parts, '+'), b);
});
