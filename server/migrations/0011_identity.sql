-- identity (issue 31; docs/api.md "API keys"). Numbered 0014 in the plan: pictures, tags and page take
-- 0011–0013 and land first; the runner wants 1..N without gaps, so on this branch it is the next number.
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
