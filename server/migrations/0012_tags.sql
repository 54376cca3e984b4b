-- 0012: tags, duplicates, bookmarks, similar questions (issue 30; docs/api.md "Tags, duplicates, bookmarks").
--
-- Nothing here rewrites or scans a big table for long: the new columns of threads have constant defaults (no
-- rewrite), the new tables start empty, and the one index on existing rows (the titles' trigrams) is built on
-- threads, one short row per question (measured in bench/README.md "Tags and similar questions": the figure
-- at 1M posts). Migrations run in a transaction each (server/migrations/__init__.py), where
-- CREATE INDEX CONCURRENTLY cannot run.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- A tag: its name as the contract spells it, and how many live threads carry it (kept by triggers below, in
-- the writer's transaction, so GET /api/tags reads counts without counting).
CREATE TABLE tags (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE CONSTRAINT tags_name_shape CHECK (name ~ '^[a-z0-9+#.-]{1,32}$'),
    count      integer NOT NULL DEFAULT 0,
    created_by bigint REFERENCES users(id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tags_count ON tags (count DESC, name);
CREATE INDEX tags_name_prefix ON tags (name text_pattern_ops);

-- A thread's tags, for display, in the order given (the rows of thread_tags are for lists and counts).
ALTER TABLE threads ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
-- A duplicate names its original (null: not a duplicate).
ALTER TABLE threads ADD COLUMN duplicate_of bigint REFERENCES threads(id);

-- Which live threads carry a tag, with the thread's list keys copied beside it so that a tag's list in
-- every sort walks one index in order (the same keyset as threads' own lists). A deleted thread's rows go.
CREATE TABLE thread_tags (
    tag_id           bigint NOT NULL REFERENCES tags(id),
    thread_id        bigint NOT NULL REFERENCES threads(id),
    last_activity_at timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    score            integer NOT NULL,
    response_count   integer NOT NULL,
    PRIMARY KEY (thread_id, tag_id)
);
CREATE INDEX thread_tags_activity ON thread_tags (tag_id, last_activity_at DESC, thread_id DESC);
CREATE INDEX thread_tags_newest ON thread_tags (tag_id, created_at DESC, thread_id DESC);
CREATE INDEX thread_tags_top ON thread_tags (tag_id, score DESC, thread_id DESC);

-- Statement-level, from the transition tables: one UPDATE per tag per statement (a row-level trigger would
-- update one tags row once per thread, and many updates of one row in one transaction grow quadratically).
CREATE FUNCTION parley_tag_count() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER thread_tags_added AFTER INSERT ON thread_tags REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION parley_tag_count();
CREATE TRIGGER thread_tags_removed AFTER DELETE ON thread_tags REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION parley_tag_count();

CREATE FUNCTION parley_thread_tags_keys() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER threads_tag_keys AFTER UPDATE OF last_activity_at, score, response_count, deleted ON threads
    FOR EACH ROW WHEN (NEW.tags <> '{}' AND (OLD.last_activity_at, OLD.score, OLD.response_count, OLD.deleted)
                       IS DISTINCT FROM (NEW.last_activity_at, NEW.score, NEW.response_count, NEW.deleted))
    EXECUTE FUNCTION parley_thread_tags_keys();

-- Followed tags: a new question carrying one notifies its followers (kind `tagged`).
CREATE TABLE tag_follows (
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tag_id     bigint NOT NULL REFERENCES tags(id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, tag_id)
);
CREATE INDEX tag_follows_tag ON tag_follows (tag_id);

ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('response', 'comment', 'mention', 'accepted', 'followed', 'tagged'));

-- Bookmarks: a user's saved posts, newest first.
CREATE TABLE bookmarks (
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    post_id    bigint NOT NULL REFERENCES posts(id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, post_id)
);
CREATE INDEX bookmarks_user ON bookmarks (user_id, created_at DESC, post_id DESC);

-- Similar questions (GET /api/threads/similar): trigram similarity of titles.
CREATE INDEX threads_title_trgm ON threads USING gin (title gin_trgm_ops) WHERE NOT deleted;
-- …and the question posts' stored vectors on their own, so matching a common word reads questions only.
CREATE INDEX posts_question_search ON posts USING gin (search) WHERE kind = 'question';
