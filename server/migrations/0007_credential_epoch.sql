-- 0007: a credential epoch per user (issue 25). A session is good only while the epoch it was made at is
-- still its user's: a password change and a suspension raise the user's epoch in their own transaction,
-- so a sign-in that checked the password (or the suspension) against the state before can never leave a
-- session that outlives the change (store/sessions.py). Existing sessions and users start at 0 together,
-- so every session alive before the upgrade stays alive. Both columns have a constant default: adding
-- them rewrites neither table.
ALTER TABLE users ADD COLUMN credential_epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
