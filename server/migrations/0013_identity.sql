-- identity (issue 31; docs/api.md "API keys"). Planned as 0014; 0013 is the next free number after uploads (0011)
-- and tags (0012): the page branch took no migration. The lead renumbers if another lands first.
-- API keys: a token is shown once; only its SHA-256 (hex, as sessions.id) is kept. A key authenticates as its
-- user with its scopes until it is deleted; last_used_at is written at most once a minute per key.
CREATE TABLE api_keys (
    id           bigserial PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         text NOT NULL,
    scopes       text[] NOT NULL CONSTRAINT api_keys_scopes CHECK (scopes IN ('{read}', '{read,write}')),
    token_hash   text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);
CREATE INDEX api_keys_user ON api_keys (user_id, id);
