-- 0010: e-mail (issue 27; docs/operations.md "E-mail"). A user may have one address, verified or not;
-- an address is unique among verified ones, any case. Preferences have the contract's defaults.
-- unsubscribe_epoch is part of every one-click unsubscribe link's signature: using one raises it, so a
-- link works until it is used (server/outbox/keys.py).
ALTER TABLE users ADD COLUMN email text;
ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN email_notifications text NOT NULL DEFAULT 'away'
    CONSTRAINT users_email_notifications CHECK (email_notifications IN ('always', 'away', 'never'));
ALTER TABLE users ADD COLUMN digest text NOT NULL DEFAULT 'weekly'
    CONSTRAINT users_digest CHECK (digest IN ('off', 'daily', 'weekly'));
ALTER TABLE users ADD COLUMN digest_at timestamptz;
ALTER TABLE users ADD COLUMN unsubscribe_epoch bigint NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX users_email_verified ON users (lower(email)) WHERE email_verified;

-- Single-use tokens of verification and reset mails, kept only as a SHA-256 of the token. A reset token
-- works only at the credential epoch it was made at (a password change or reset kills the others).
CREATE TABLE email_tokens (
    hash       bytea PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('verify', 'reset')),
    email      text NOT NULL,
    epoch      bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX email_tokens_user ON email_tokens (user_id);
CREATE INDEX email_tokens_expires ON email_tokens (expires_at);

-- The outbox: every mail, whole (RFC 5322 text, its Message-ID fixed), written in the transaction of its
-- cause and sent by any process. next_try_at is when it is due, and also the lease of a claim (a claim
-- moves it LEASE seconds on); sent_at is set as soon as the SMTP server accepted it.
CREATE TABLE mail_outbox (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('verify', 'reset', 'notification', 'digest')),
    user_id     bigint REFERENCES users(id) ON DELETE SET NULL,
    recipient   text NOT NULL,
    message     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    next_try_at timestamptz NOT NULL DEFAULT now(),
    tries       integer NOT NULL DEFAULT 0,
    last_error  text,
    sent_at     timestamptz,
    failed_at   timestamptz
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_try_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_done ON mail_outbox (created_at) WHERE sent_at IS NOT NULL OR failed_at IS NOT NULL;

-- Each notification is looked at once for mail when it is due: 'due' until then, then 'mailed' or
-- 'skipped' (read first, withdrawn, no verified address, `never`, or `away` and online). Notifications
-- made before this upgrade count as looked at: the column is added with 'skipped' (no rewrite, a
-- constant default), and only then does the default become 'due'.
ALTER TABLE notifications ADD COLUMN mail text NOT NULL DEFAULT 'skipped'
    CONSTRAINT notifications_mail CHECK (mail IN ('due', 'mailed', 'skipped'));
ALTER TABLE notifications ALTER COLUMN mail SET DEFAULT 'due';
CREATE INDEX notifications_mail_due ON notifications (created_at) WHERE mail = 'due';
