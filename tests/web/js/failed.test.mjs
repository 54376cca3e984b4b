// Unit tests of the failure words (web/js/failed.js): `node --test tests/web/js/`.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { failureText, moreFailedLabel } from '../../../web/js/failed.js';

test('offline, unavailable and our faults are told apart, never "your text is kept"', () => {
  assert.match(failureText({ status: 0, message: 'x — your text is kept.' }), /you may be offline/);
  assert.doesNotMatch(failureText({ status: 0 }), /text is kept/);
  assert.match(failureText({ status: 503 }), /briefly unavailable/);
  assert.match(failureText({ status: 500 }), /error 500/);
  assert.equal(failureText({ status: 404, message: 'No such thread' }), 'No such thread');
});

test('a failed Show more says why and that it tries again', () => {
  assert.equal(moreFailedLabel({ status: 0 }), "Could not load more: Parley can't be reached. Try again");
  assert.equal(moreFailedLabel({ status: 502 }), "Could not load more: error 502 on Parley's side. Try again");
});
