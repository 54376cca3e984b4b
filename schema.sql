-- Parley: the whole current schema, for readers. The database is built and upgraded by the
-- numbered migrations in server/migrations/ (`parley migrate`); the test suite checks that
-- migrating an empty database from 0001 to the last one gives exactly this schema.
-- A change to the schema is a new migration plus the same change here.

-- Which migrations are applied (kept by server/migrations, not by a migration).
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS users (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL,
    display_name  text NOT NULL,
    password_hash text NOT NULL,
    is_moderator  boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    -- A suspended member cannot sign in until this time (null: not suspended).
    suspended_until timestamptz,
    suspension_reason text
);
CREATE UNIQUE INDEX IF NOT EXISTS users_username_lower ON users (lower(username));

-- Server-side sessions: the cookie carries only a signed random id; deleting
-- the row revokes the session everywhere at once.
CREATE TABLE IF NOT EXISTS sessions (
    id           text PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);
-- Housekeeping deletes expired sessions by last use.
CREATE INDEX IF NOT EXISTS sessions_last_seen ON sessions (last_seen_at);

CREATE TABLE IF NOT EXISTS categories (
    id         bigserial PRIMARY KEY,
    slug       text NOT NULL UNIQUE,
    name       text NOT NULL,
    parent_id  bigint REFERENCES categories(id),
    position   integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS categories_parent ON categories (parent_id);

-- seq is the number of the thread's last event: every change takes the next
-- one with UPDATE threads SET seq = seq + 1 ... RETURNING seq, whose row lock
-- makes seq order equal commit order (see docs/live.md).
CREATE TABLE IF NOT EXISTS threads (
    id               bigserial PRIMARY KEY,
    category_id      bigint NOT NULL REFERENCES categories(id),
    author_id        bigint NOT NULL REFERENCES users(id),
    title            text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    response_count   integer NOT NULL DEFAULT 0,
    seq              bigint NOT NULL DEFAULT 0,
    locked           boolean NOT NULL DEFAULT false,
    deleted          boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS threads_activity ON threads (last_activity_at DESC, id DESC) WHERE NOT deleted;
CREATE INDEX IF NOT EXISTS threads_category_activity ON threads (category_id, last_activity_at DESC, id DESC) WHERE NOT deleted;

CREATE TABLE IF NOT EXISTS posts (
    id         bigserial PRIMARY KEY,
    thread_id  bigint NOT NULL REFERENCES threads(id),
    parent_id  bigint REFERENCES posts(id),
    kind       text NOT NULL CHECK (kind IN ('question', 'response', 'comment')),
    author_id  bigint NOT NULL REFERENCES users(id),
    body       text NOT NULL,
    html       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    edited_at  timestamptz,
    edited_by  bigint REFERENCES users(id),
    revision   integer NOT NULL DEFAULT 1,
    score      integer NOT NULL DEFAULT 0,
    deleted    boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS posts_thread ON posts (thread_id, id);
CREATE INDEX IF NOT EXISTS posts_parent ON posts (parent_id, id);
-- The thread page sorted by `top` (score, then age), paged by keyset.
CREATE INDEX IF NOT EXISTS posts_thread_top ON posts (thread_id, score DESC, id) WHERE kind = 'response';
-- The question of a thread: looked up (under the thread's row lock) by every new response.
CREATE UNIQUE INDEX IF NOT EXISTS posts_question ON posts (thread_id) WHERE kind = 'question';

-- Every version of a post, the original included (revision 1).
CREATE TABLE IF NOT EXISTS post_revisions (
    post_id   bigint NOT NULL REFERENCES posts(id),
    revision  integer NOT NULL,
    body      text NOT NULL,
    html      text NOT NULL,
    editor_id bigint NOT NULL REFERENCES users(id),
    edited_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, revision)
);

CREATE TABLE IF NOT EXISTS votes (
    post_id    bigint NOT NULL REFERENCES posts(id),
    user_id    bigint NOT NULL REFERENCES users(id),
    value      smallint NOT NULL CHECK (value IN (-1, 1)),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, user_id)
);
CREATE INDEX IF NOT EXISTS votes_user ON votes (user_id, post_id);

-- The backlog: the broker is only a doorbell, this table is the truth.
CREATE TABLE IF NOT EXISTS thread_events (
    thread_id  bigint NOT NULL REFERENCES threads(id),
    seq        bigint NOT NULL,
    name       text NOT NULL,
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (thread_id, seq)
);
CREATE INDEX IF NOT EXISTS thread_events_created ON thread_events (created_at);

-- Facts about this database. `deployment` is a random id made once: every process serving this
-- database namespaces its Redis channels and keys with it, so two forums sharing one Redis (a test
-- suite, staging beside production) never hear each other's events.
CREATE TABLE IF NOT EXISTS parley_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO parley_meta (key, value)
VALUES ('deployment', substr(md5(random()::text || clock_timestamp()::text), 1, 12))
ON CONFLICT (key) DO NOTHING;

-- A retried POST with the same Idempotency-Key returns the first post.
-- post_id is null while the first request is still in flight. A key belongs to one user and one
-- thread (0003): the same key sent to another thread is a new request.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key        text NOT NULL,
    post_id    bigint REFERENCES posts(id),
    created_at timestamptz NOT NULL DEFAULT now(),
    thread_id  bigint NOT NULL REFERENCES threads(id),
    PRIMARY KEY (user_id, thread_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at);

-- Members flag posts (once per post); moderators resolve or dismiss them from the review queue.
CREATE TABLE IF NOT EXISTS flags (
    id          bigserial PRIMARY KEY,
    post_id     bigint NOT NULL REFERENCES posts(id),
    thread_id   bigint NOT NULL REFERENCES threads(id),
    flagger_id  bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reason      text NOT NULL CHECK (reason IN ('spam', 'rude', 'off_topic', 'other')),
    note        text,
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved', 'dismissed')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_by bigint REFERENCES users(id),
    resolved_at timestamptz,
    UNIQUE (post_id, flagger_id)
);
CREATE INDEX IF NOT EXISTS flags_status ON flags (status, id DESC);

-- The public moderation log: every action of a moderator on someone else's content, written in
-- the transaction of the action. It names its target, never copies text.
CREATE TABLE IF NOT EXISTS modlog (
    id             bigserial PRIMARY KEY,
    action         text NOT NULL,
    moderator_id   bigint NOT NULL REFERENCES users(id),
    thread_id      bigint REFERENCES threads(id),
    post_id        bigint REFERENCES posts(id),
    target_user_id bigint REFERENCES users(id),
    reason         text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
