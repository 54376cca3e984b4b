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
    -- A client's time is in the years 2000–2999 as written (docs/api.md "Times"; migration 0009).
    suspended_until timestamptz CONSTRAINT users_suspended_until_range
        CHECK (suspended_until BETWEEN '1999-12-31 00:01:00+00' AND '3000-01-01 23:59:00+00'),
    suspension_reason text,
    -- Raised by a password change and a suspension: sessions made at an older epoch are dead (0007).
    credential_epoch bigint NOT NULL DEFAULT 0,
    -- E-mail (0010): one address, verified or not; preferences; the last digest; the epoch every one-click
    -- unsubscribe link is signed with (using one raises it).
    email         text,
    email_verified boolean NOT NULL DEFAULT false,
    email_notifications text NOT NULL DEFAULT 'away'
        CONSTRAINT users_email_notifications CHECK (email_notifications IN ('always', 'away', 'never')),
    digest        text NOT NULL DEFAULT 'weekly' CONSTRAINT users_digest CHECK (digest IN ('off', 'daily', 'weekly')),
    digest_at     timestamptz,
    unsubscribe_epoch bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS users_username_lower ON users (lower(username));
-- @mention completion (GET /api/users?q=): prefix search on username and display name, any case.
CREATE INDEX IF NOT EXISTS users_username_prefix ON users (lower(username) text_pattern_ops);
CREATE INDEX IF NOT EXISTS users_display_name_prefix ON users (lower(display_name) text_pattern_ops);
-- An address is unique among verified addresses, any case (0010).
CREATE UNIQUE INDEX IF NOT EXISTS users_email_verified ON users (lower(email)) WHERE email_verified;

-- Server-side sessions: the cookie carries only a signed random id; deleting
-- the row revokes the session everywhere at once.
CREATE TABLE IF NOT EXISTS sessions (
    id           text PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    -- The user's credential_epoch when it was made; it works only while the two are equal.
    epoch        bigint NOT NULL DEFAULT 0
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
    deleted    boolean NOT NULL DEFAULT false,
    -- The seq of its post.created event (0006): unread counts the posts after a read position.
    -- Null for posts whose event was pruned before 0006 (they count as read).
    seq        bigint
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
    -- A post.created/post.edited event of a live post stores its Post JSON without body and html: they are
    -- those of this revision, put back by every read (store/events.py), so a revision's text is stored once
    -- (0008). Null for every other event, and for a deleted post's (its text is emptied in `data`).
    post_id    bigint,
    revision   integer,
    PRIMARY KEY (thread_id, seq),
    CONSTRAINT thread_events_text FOREIGN KEY (post_id, revision) REFERENCES post_revisions (post_id, revision),
    CONSTRAINT thread_events_text_both CHECK ((post_id IS NULL) = (revision IS NULL))
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
    moderator_id   bigint REFERENCES users(id),  -- null: the system (auto-silence, 0014)
    thread_id      bigint REFERENCES threads(id),
    post_id        bigint REFERENCES posts(id),
    target_user_id bigint REFERENCES users(id),
    reason         text,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Q&A (migration 0005): accepted answers, the question's score on its thread, list indexes,
-- full-text search, profile lookups.

-- The thread's accepted response (null: none) and its question's score, kept beside the thread so
-- that every list sort reads one table through one index.
ALTER TABLE threads ADD COLUMN IF NOT EXISTS accepted_id bigint REFERENCES posts(id);
ALTER TABLE threads ADD COLUMN IF NOT EXISTS score integer NOT NULL DEFAULT 0;

-- posts.score of a question is mirrored into threads.score in the same transaction as the vote.
CREATE OR REPLACE FUNCTION parley_question_score() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE threads SET score = NEW.score WHERE id = NEW.thread_id;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER posts_question_score AFTER UPDATE OF score ON posts FOR EACH ROW
    WHEN (NEW.kind = 'question' AND OLD.score IS DISTINCT FROM NEW.score) EXECUTE FUNCTION parley_question_score();

-- Lists: one index per sort, site-wide and by category, and the unanswered filter site-wide
-- (by category it walks the category index and filters). Activity's two exist since 0001.
CREATE INDEX IF NOT EXISTS threads_newest ON threads (created_at DESC, id DESC) WHERE NOT deleted;
CREATE INDEX IF NOT EXISTS threads_category_newest ON threads (category_id, created_at DESC, id DESC) WHERE NOT deleted;
CREATE INDEX IF NOT EXISTS threads_top ON threads (score DESC, id DESC) WHERE NOT deleted;
CREATE INDEX IF NOT EXISTS threads_category_top ON threads (category_id, score DESC, id DESC) WHERE NOT deleted;
CREATE INDEX IF NOT EXISTS threads_unanswered_activity ON threads (last_activity_at DESC, id DESC)
    WHERE NOT deleted AND response_count = 0;
CREATE INDEX IF NOT EXISTS threads_unanswered_newest ON threads (created_at DESC, id DESC) WHERE NOT deleted AND response_count = 0;
CREATE INDEX IF NOT EXISTS threads_unanswered_top ON threads (score DESC, id DESC) WHERE NOT deleted AND response_count = 0;

-- Profiles: a user's posts, newest first.
CREATE INDEX IF NOT EXISTS posts_author ON posts (author_id, id DESC) WHERE NOT deleted;

-- Search: a stored tsvector per post, kept by triggers in the transaction of the write, so a post is
-- findable as soon as its request answered, an edit replaces its words and a deletion removes them.
-- A question's vector holds its thread's title at weight A, above the body (B).
ALTER TABLE posts ADD COLUMN IF NOT EXISTS search tsvector;

CREATE OR REPLACE FUNCTION parley_search_vector(title text, body text) RETURNS tsvector LANGUAGE sql IMMUTABLE AS $$
    SELECT setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, body), 'B')
$$;

-- A response's or comment's vector is its body's alone (0018: the title's part, empty, is not computed for it).
CREATE OR REPLACE FUNCTION parley_post_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.deleted THEN
        NEW.search := NULL;
    ELSIF NEW.kind = 'question' THEN
        NEW.search := parley_search_vector((SELECT title FROM threads WHERE id = NEW.thread_id), NEW.body);
    ELSE
        NEW.search := setweight(to_tsvector('english'::regconfig, NEW.body), 'B');
    END IF;
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER posts_search BEFORE INSERT OR UPDATE OF body, deleted ON posts
    FOR EACH ROW EXECUTE FUNCTION parley_post_search();

CREATE OR REPLACE FUNCTION parley_title_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE posts SET search = parley_search_vector(NEW.title, body)
    WHERE thread_id = NEW.id AND kind = 'question' AND NOT deleted;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER threads_title_search AFTER UPDATE OF title ON threads FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title) EXECUTE FUNCTION parley_title_search();

CREATE INDEX IF NOT EXISTS posts_search ON posts USING gin (search);

-- Who follows a thread (0006). following = false is an explicit unfollow, which posting again does
-- not undo; authors and posters get a row (following) when they write.
CREATE TABLE IF NOT EXISTS thread_follows (
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    thread_id  bigint NOT NULL REFERENCES threads(id),
    following  boolean NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, thread_id)
);
-- A thread's followers, read from the index alone by every response (0018).
CREATE INDEX IF NOT EXISTS thread_follows_followers ON thread_follows (thread_id, user_id) WHERE following;

-- How far each reader has read a thread: a seq that never moves backwards.
CREATE TABLE IF NOT EXISTS thread_reads (
    user_id   bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    thread_id bigint NOT NULL REFERENCES threads(id),
    seq       bigint NOT NULL,
    read_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, thread_id)
);

-- Notifications: one per user and post (the most specific kind), written in the transaction of the
-- post that causes them; deleted (withdrawn) with the post or its thread.
CREATE TABLE IF NOT EXISTS notifications (
    id         bigserial PRIMARY KEY,
    -- No foreign key on user_id (0019): checked once per recipient, it cost a reply to a followed thread a query and
    -- a shared lock on each recipient's users row. Recipients are read from tables keyed to users in the writer's
    -- statement; a users row deleted by hand takes its notifications along (users_deleted, below).
    user_id    bigint NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('response', 'comment', 'mention', 'accepted', 'followed', 'tagged')),
    -- No foreign keys on actor_id, thread_id, post_id (0018): checked once per row, they cost a reply to a followed
    -- thread most of its checks, and name rows the writer has just written or locked and that are never deleted.
    actor_id   bigint NOT NULL,
    thread_id  bigint NOT NULL,
    post_id    bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    read       boolean NOT NULL DEFAULT false,
    -- Looked at once for mail when due (0010): 'due', then 'mailed' or 'skipped'.
    mail       text NOT NULL DEFAULT 'due' CONSTRAINT notifications_mail CHECK (mail IN ('due', 'mailed', 'skipped')),
    UNIQUE (post_id, user_id)
);
CREATE INDEX IF NOT EXISTS notifications_user ON notifications (user_id, id DESC);
CREATE INDEX IF NOT EXISTS notifications_unread ON notifications (user_id) WHERE NOT read;
CREATE INDEX IF NOT EXISTS notifications_mail_due ON notifications (created_at) WHERE mail = 'due';

-- A users row deleted by hand (Parley never deletes one) takes its notifications along: one DELETE per statement.
CREATE OR REPLACE FUNCTION parley_users_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM notifications n USING gone g WHERE n.user_id = g.id;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER users_deleted AFTER DELETE ON users REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION parley_users_deleted();

-- Single-use tokens of verification and reset mails, kept only as a SHA-256 (0010). A reset token works
-- only at the credential epoch it was made at.
CREATE TABLE IF NOT EXISTS email_tokens (
    hash       bytea PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('verify', 'reset')),
    email      text NOT NULL,
    epoch      bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX IF NOT EXISTS email_tokens_user ON email_tokens (user_id);
CREATE INDEX IF NOT EXISTS email_tokens_expires ON email_tokens (expires_at);

-- The outbox (0010): every mail whole, written in the transaction of its cause, sent by any process.
-- next_try_at: when it is due, and the lease of a claim; sent_at: the SMTP server accepted it.
CREATE TABLE IF NOT EXISTS mail_outbox (
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
CREATE INDEX IF NOT EXISTS mail_outbox_due ON mail_outbox (next_try_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX IF NOT EXISTS mail_outbox_done ON mail_outbox (created_at) WHERE sent_at IS NOT NULL OR failed_at IS NOT NULL;

-- Pictures (0011): an upload is one user's row for bytes kept once in the store under their SHA-256 (the
-- image, its thumbnail, the square avatar crop once made); upload_refs (kept by a trigger on posts) and
-- users.avatar_upload_id say what refers to one.
CREATE TABLE IF NOT EXISTS uploads (
    id            bigserial PRIMARY KEY,
    owner_id      bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    ext           text NOT NULL CHECK (ext IN ('png', 'jpg', 'gif', 'webp')),
    content_type  text NOT NULL,
    size          integer NOT NULL CHECK (size > 0),
    width         integer NOT NULL CHECK (width > 0),
    height        integer NOT NULL CHECK (height > 0),
    thumb_sha256  text NOT NULL CHECK (thumb_sha256 ~ '^[0-9a-f]{64}$'),
    thumb_width   integer NOT NULL CHECK (thumb_width > 0),
    thumb_height  integer NOT NULL CHECK (thumb_height > 0),
    avatar_sha256 text CHECK (avatar_sha256 ~ '^[0-9a-f]{64}$'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, sha256)
);
CREATE INDEX IF NOT EXISTS uploads_sha256 ON uploads (sha256);
CREATE INDEX IF NOT EXISTS uploads_thumb_sha256 ON uploads (thumb_sha256);
CREATE INDEX IF NOT EXISTS uploads_created ON uploads (created_at);

CREATE TABLE IF NOT EXISTS upload_refs (
    sha256  text NOT NULL,
    post_id bigint NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    PRIMARY KEY (sha256, post_id)
);
CREATE INDEX IF NOT EXISTS upload_refs_post ON upload_refs (post_id);

CREATE OR REPLACE FUNCTION upload_refs_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.body IS NOT DISTINCT FROM OLD.body THEN
            RETURN NULL;
        END IF;
        DELETE FROM upload_refs WHERE post_id = NEW.id;
    END IF;
    IF strpos(NEW.body, '/uploads/') > 0 THEN
        INSERT INTO upload_refs (sha256, post_id)
        SELECT DISTINCT m[1], NEW.id FROM regexp_matches(NEW.body, '/uploads/([0-9a-f]{64})\.', 'g') AS m
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
-- A new post calls it only when its body names an upload (0018); an edit always does (the old references go).
DROP TRIGGER IF EXISTS posts_upload_refs ON posts;
CREATE TRIGGER posts_upload_refs AFTER UPDATE OF body ON posts
    FOR EACH ROW EXECUTE FUNCTION upload_refs_sync();
DROP TRIGGER IF EXISTS posts_upload_refs_new ON posts;
CREATE TRIGGER posts_upload_refs_new AFTER INSERT ON posts
    FOR EACH ROW WHEN (strpos(NEW.body, '/uploads/') > 0) EXECUTE FUNCTION upload_refs_sync();

ALTER TABLE users ADD COLUMN IF NOT EXISTS avatar_upload_id bigint REFERENCES uploads(id) ON DELETE SET NULL;
ALTER TABLE users ADD COLUMN IF NOT EXISTS avatar_url text;

-- Tags, duplicates, bookmarks, similar questions (0012). The notification kind `tagged` is in the CHECK above.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- A tag: its name as the contract spells it, and how many live threads carry it (kept by triggers below, in
-- the writer's transaction, so GET /api/tags reads counts without counting).
CREATE TABLE IF NOT EXISTS tags (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE CONSTRAINT tags_name_shape CHECK (name ~ '^[a-z0-9+#.-]{1,32}$'),
    count      integer NOT NULL DEFAULT 0,
    created_by bigint REFERENCES users(id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS tags_count ON tags (count DESC, name);
CREATE INDEX IF NOT EXISTS tags_name_prefix ON tags (name text_pattern_ops);

-- A thread's tags, for display, in the order given (the rows of thread_tags are for lists and counts).
ALTER TABLE threads ADD COLUMN IF NOT EXISTS tags text[] NOT NULL DEFAULT '{}';
-- A duplicate names its original (null: not a duplicate).
ALTER TABLE threads ADD COLUMN IF NOT EXISTS duplicate_of bigint REFERENCES threads(id);

-- Which live threads carry a tag, with the thread's list keys copied beside it so that a tag's list in
-- every sort walks one index in order (the same keyset as threads' own lists). A deleted thread's rows go.
CREATE TABLE IF NOT EXISTS thread_tags (
    tag_id           bigint NOT NULL REFERENCES tags(id),
    thread_id        bigint NOT NULL REFERENCES threads(id),
    last_activity_at timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    score            integer NOT NULL,
    response_count   integer NOT NULL,
    PRIMARY KEY (thread_id, tag_id)
);
CREATE INDEX IF NOT EXISTS thread_tags_activity ON thread_tags (tag_id, last_activity_at DESC, thread_id DESC);
CREATE INDEX IF NOT EXISTS thread_tags_newest ON thread_tags (tag_id, created_at DESC, thread_id DESC);
CREATE INDEX IF NOT EXISTS thread_tags_top ON thread_tags (tag_id, score DESC, thread_id DESC);

-- Statement-level, from the transition tables: one UPDATE per tag per statement (a row-level trigger would
-- update one tags row once per thread, and many updates of one row in one transaction grow quadratically).
CREATE OR REPLACE FUNCTION parley_tag_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE tags g SET count = g.count + c.n FROM (SELECT tag_id, count(*) AS n FROM added GROUP BY tag_id) c
        WHERE g.id = c.tag_id;
    ELSE
        UPDATE tags g SET count = g.count - c.n FROM (SELECT tag_id, count(*) AS n FROM removed GROUP BY tag_id) c
        WHERE g.id = c.tag_id;
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER thread_tags_added AFTER INSERT ON thread_tags REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION parley_tag_count();
CREATE OR REPLACE TRIGGER thread_tags_removed AFTER DELETE ON thread_tags REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION parley_tag_count();

CREATE OR REPLACE FUNCTION parley_thread_tags_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.deleted THEN
        DELETE FROM thread_tags WHERE thread_id = NEW.id;
    ELSE
        UPDATE thread_tags SET last_activity_at = NEW.last_activity_at, created_at = NEW.created_at,
                               score = NEW.score, response_count = NEW.response_count
        WHERE thread_id = NEW.id;
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER threads_tag_keys AFTER UPDATE OF last_activity_at, score, response_count, deleted ON threads
    FOR EACH ROW WHEN (NEW.tags <> '{}' AND (OLD.last_activity_at, OLD.score, OLD.response_count, OLD.deleted)
                       IS DISTINCT FROM (NEW.last_activity_at, NEW.score, NEW.response_count, NEW.deleted))
    EXECUTE FUNCTION parley_thread_tags_keys();

-- Followed tags: a new question carrying one notifies its followers (kind `tagged`).
CREATE TABLE IF NOT EXISTS tag_follows (
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tag_id     bigint NOT NULL REFERENCES tags(id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, tag_id)
);
CREATE INDEX IF NOT EXISTS tag_follows_tag ON tag_follows (tag_id);


-- Bookmarks: a user's saved posts, newest first.
CREATE TABLE IF NOT EXISTS bookmarks (
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    post_id    bigint NOT NULL REFERENCES posts(id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, post_id)
);
CREATE INDEX IF NOT EXISTS bookmarks_user ON bookmarks (user_id, created_at DESC, post_id DESC);

-- Similar questions (GET /api/threads/similar): trigram similarity of titles.
-- …and the question posts' stored vectors on their own, so matching a common word reads questions only.
CREATE INDEX IF NOT EXISTS posts_question_search ON posts USING gin (search) WHERE kind = 'question';
-- API keys (identity migration): only the token's SHA-256 (hex, as sessions.id) is kept; scopes read or
-- read+write; last_used_at written at most once a minute per key.
CREATE TABLE IF NOT EXISTS api_keys (
    id           bigserial PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         text NOT NULL,
    scopes       text[] NOT NULL CONSTRAINT api_keys_scopes CHECK (scopes IN ('{read}', '{read,write}')),
    token_hash   text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys (user_id, id);

-- trust and spam (issue 29; docs/moderation.md "Trust"): reputation as a ledger, auto-silence.
--
-- Reputation. users.reputation is the maintained sum (1 + the user's ledger deltas, never below 1);
-- reputation_events is the append-only ledger, one row per change that happened (a loss clipped at 1 is
-- recorded as clipped). The rule itself lives once, here, as the aggregate parley_reputation(): it replays a
-- user's live sources (reputation_sources: up and down votes on their live questions and responses, the
-- acceptance of their live response, their own acceptance of someone's answer) oldest first, capping what votes
-- earn per UTC day at 200 and never going below 1. The server adds a new vote with the same step function and
-- recounts with the aggregate whenever a source goes (server/store/reputation.py), so the sum is always what a
-- recount from scratch gives.
ALTER TABLE users ADD COLUMN IF NOT EXISTS reputation integer NOT NULL DEFAULT 1
    CONSTRAINT users_reputation_floor CHECK (reputation >= 1);
-- When the current acceptance was made and by whom (the asker earns +2 only when they accepted it themselves).
ALTER TABLE threads ADD COLUMN IF NOT EXISTS accepted_at timestamptz;
ALTER TABLE threads ADD COLUMN IF NOT EXISTS accepted_by bigint REFERENCES users(id);

CREATE TABLE IF NOT EXISTS reputation_events (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    delta      integer NOT NULL,
    reason     text NOT NULL CONSTRAINT reputation_events_reason CHECK (reason IN (
        'vote_up', 'vote_down', 'vote_undone', 'vote_changed', 'accepted', 'accept_undone', 'accepter',
        'accepter_undone', 'post_deleted', 'recount')),
    post_id    bigint REFERENCES posts(id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS reputation_events_user ON reputation_events (user_id, id DESC);

-- One step of the rule: state {reputation, UTC day of the last vote gain, earned by votes that day}.
CREATE OR REPLACE FUNCTION parley_reputation_step(s integer[], kind text, amount integer, at timestamptz) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    day integer := floor(extract(epoch FROM at) / 86400)::integer;
    gain integer;
BEGIN
    IF kind = 'vote_up' THEN
        IF s[2] IS DISTINCT FROM day THEN
            s[2] := day;
            s[3] := 0;
        END IF;
        gain := least(amount, 200 - s[3]);
        s[3] := s[3] + gain;
        s[1] := s[1] + gain;
    ELSIF amount < 0 THEN
        s[1] := greatest(1, s[1] + amount);
    ELSE
        s[1] := s[1] + amount;
    END IF;
    RETURN s;
END $$;

CREATE OR REPLACE AGGREGATE parley_reputation(text, integer, timestamptz) (
    SFUNC = parley_reputation_step, STYPE = integer[], INITCOND = '{1,-1,0}'
);

-- Every live source of reputation, per user: (user_id, kind, amount, at, post_id, actor_id).
CREATE OR REPLACE VIEW reputation_sources AS
    SELECT p.author_id AS user_id,
           CASE WHEN v.value > 0 THEN 'vote_up' ELSE 'vote_down' END AS kind,
           CASE WHEN v.value < 0 THEN -2 WHEN p.kind = 'question' THEN 5 ELSE 10 END AS amount,
           v.created_at AS at, p.id AS post_id, v.user_id AS actor_id
    FROM votes v JOIN posts p ON p.id = v.post_id JOIN threads t ON t.id = p.thread_id
    WHERE p.kind IN ('question', 'response') AND NOT p.deleted AND NOT t.deleted AND v.user_id <> p.author_id
    UNION ALL
    SELECT p.author_id, 'accepted', 15, t.accepted_at, p.id, t.accepted_by
    FROM threads t JOIN posts p ON p.id = t.accepted_id
    WHERE NOT t.deleted AND NOT p.deleted AND p.author_id <> t.author_id
    UNION ALL
    SELECT t.author_id, 'accepter', 2, t.accepted_at, p.id, t.accepted_by
    FROM threads t JOIN posts p ON p.id = t.accepted_id
    WHERE NOT t.deleted AND NOT p.deleted AND p.author_id <> t.author_id AND t.accepted_by = t.author_id;

-- Auto-silence: a silenced account's posts are hidden from all but moderators and itself, and it may not post.
-- silenced_at is set by three distinct spam flaggers (or a moderator) and cleared by a moderator, who also sets
-- silence_lifted_at: only spam flags raised after it count towards the next auto-silence.
ALTER TABLE users ADD COLUMN IF NOT EXISTS silenced_at timestamptz;
ALTER TABLE users ADD COLUMN IF NOT EXISTS silence_lifted_at timestamptz;
CREATE INDEX IF NOT EXISTS users_silenced ON users (id) WHERE silenced_at IS NOT NULL;

-- The spam check (server/spamcheck.py): a new account's post the checker calls spam waits, pending, for a moderator
-- (PUT /api/posts/{id}/approval); only its author and moderators see it, and it has no event until published.
ALTER TABLE posts ADD COLUMN IF NOT EXISTS pending boolean NOT NULL DEFAULT false;
-- A thread whose question is held: out of every list until it is published.
ALTER TABLE threads ADD COLUMN IF NOT EXISTS held boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS posts_pending ON posts (author_id) WHERE pending;

-- Ignoring: the ignorer gets the ignored member's posts collapsed and none of their notifications (nor mail).
CREATE TABLE IF NOT EXISTS user_ignores (
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    ignored_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, ignored_id)
);
-- Drafts (drafts migration): what a person is writing, per user and key (ask, thread:ID, comment:ID, edit:ID);
-- `revision` is the compare-and-set token; a successful post deletes its draft; old ones are pruned.
CREATE TABLE IF NOT EXISTS drafts (
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key        text NOT NULL CONSTRAINT drafts_key CHECK (key ~ '^(ask|(thread|comment|edit):[1-9][0-9]{0,18})$'),
    body       text NOT NULL,
    revision   integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX IF NOT EXISTS drafts_updated ON drafts (updated_at);

-- Leaving, webhooks and single sign-on (integrations migration).
-- Leaving (DELETE /api/me): the row stays, nameless, so the posts it wrote keep an author; deleted_at marks it.
ALTER TABLE users ADD COLUMN IF NOT EXISTS deleted_at timestamptz;

-- Webhooks (moderators). The secret is kept as given (base64 of the key's bytes): signing needs it.
CREATE TABLE IF NOT EXISTS webhooks (
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
CREATE TABLE IF NOT EXISTS webhook_deliveries (
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
CREATE INDEX IF NOT EXISTS webhook_deliveries_pending ON webhook_deliveries (webhook_id, thread_id, seq)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_try_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX IF NOT EXISTS webhook_deliveries_log ON webhook_deliveries (webhook_id, id DESC);

-- Single sign-on: which provider account is which user (issuer + subject, as OpenID Connect names one).
CREATE TABLE IF NOT EXISTS oidc_identities (
    issuer     text NOT NULL,
    subject    text NOT NULL,
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX IF NOT EXISTS oidc_identities_user ON oidc_identities (user_id);
