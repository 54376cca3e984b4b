-- 0009: bounded client times (issue 25). A suspension `until` is a time in the years 2000–2999 (as
-- written, any offset: docs/api.md "Times"). An older release stored 'infinity' for
-- 9999-12-31T23:59:59.999999Z, which the profile and sign-in could not read: such a suspension now lasts
-- until the last moment a client may name, and one before the range (never in force) is lifted.
UPDATE users SET suspended_until = '2999-12-31 23:59:59.999999+00'
WHERE suspended_until > '3000-01-01 23:59:00+00';
UPDATE users SET suspended_until = NULL, suspension_reason = NULL
WHERE suspended_until < '1999-12-31 00:01:00+00';
ALTER TABLE users ADD CONSTRAINT users_suspended_until_range
    CHECK (suspended_until BETWEEN '1999-12-31 00:01:00+00' AND '3000-01-01 23:59:00+00');
