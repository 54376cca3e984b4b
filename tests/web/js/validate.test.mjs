// Unit tests of the form checks' words (web/js/validate.js): `node --test tests/web/js/`.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EMAIL_RULES, humanize, newPasswordRules, usernameRules } from '../../../web/js/validate.js';

const L = { username_min: 3, username_max: 32, password_min: 8, password_max: 256 }; // as server/limits.py
const USERNAME_RULES = usernameRules(L);
const NEW_PASSWORD_RULES = newPasswordRules(L);

const first = (rules, v) => rules.map((r) => r(v)).find(Boolean) || '';

test('a validator text becomes plain words naming the label', () => {
  assert.equal(humanize('Expected `str` matching regex \'^[a-z]+$\'', 'username', 'your username'),
    'Your username is not in a form Parley accepts.');
  assert.equal(humanize('display_name must be 1–64 characters after trimming', 'display_name', 'your display name'),
    'Your display name must be 1–64 characters after trimming');
  assert.equal(humanize('That username is taken', 'username', 'your username'), 'That username is taken');
});

test('the sign-up rules speak of the field as its label does', () => {
  assert.match(first(USERNAME_RULES, 'ab'), /username needs at least 3/);
  assert.match(first(USERNAME_RULES, 'a b c'), /only letters, digits/);
  assert.equal(first(USERNAME_RULES, 'ada.l'), '');
  assert.match(first(NEW_PASSWORD_RULES, '         '), /only spaces/);
  assert.match(first(NEW_PASSWORD_RULES, 'short'), /at least 8 characters \(it has 5\)/);
  assert.equal(first(NEW_PASSWORD_RULES, '  two words  '), '');
  assert.match(first(EMAIL_RULES, 'nope'), /not an e-mail address/);
  assert.equal(first(EMAIL_RULES, ''), '');
});
