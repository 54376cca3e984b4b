-- integrations (issue 31; docs/api.md "Leaving", "Webhooks", "Single sign-on").

-- Leaving (DELETE /api/me): the row stays, nameless, so the posts it wrote keep an author; deleted_at marks it.
ALTER TABLE users ADD COLUMN deleted_at timestamptz;

-- Webhooks (moderators). The secret is kept as given (base64 of the key's bytes): signing needs it.
CREATE TABLE webhooks (
    id          bigserial PRIMARY KEY,
    url         text NOT NULL,
    events      text[] NOT NULL,
    secret      text NOT NULL,
    created_by  bigint REFERENCES users(id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The webhook outbox: one row per (webhook, thread event), written in the transaction of the event
-- (store/events.py). The payload is read from thread_events when it is sent. A row is due once every earlier
-- row of its (webhook, thread) is delivered or failed: that is the order per thread.
CREATE TABLE webhook_deliveries (
    id           bigserial PRIMARY KEY,
    webhook_id   bigint NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    thread_id    bigint NOT NULL,
    seq          bigint NOT NULL,
    name         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    next_try_at  timestamptz NOT NULL DEFAULT now(),
    tries        integer NOT NULL DEFAULT 0,
    delivered_at timestamptz,
    failed_at    timestamptz,
    last_status  integer,
    last_error   text,
    UNIQUE (webhook_id, thread_id, seq)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, thread_id, seq)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_try_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, id DESC);

-- Single sign-on: which provider account is which user (issuer + subject, as OpenID Connect names one).
CREATE TABLE oidc_identities (
    issuer     text NOT NULL,
    subject    text NOT NULL,
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX oidc_identities_user ON oidc_identities (user_id);
