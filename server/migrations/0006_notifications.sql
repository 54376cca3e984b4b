-- 0006: coming back (issue 15). Notifications, following, read positions, and the seq of each post.

-- The seq of the post.created event of each post: a read position is a seq, and "unread" counts the
-- posts created after it. Posts whose event was already pruned keep null (they count as read).
ALTER TABLE posts ADD COLUMN seq bigint;
UPDATE posts p SET seq = e.seq FROM thread_events e
WHERE e.thread_id = p.thread_id AND e.name = 'post.created' AND (e.data->>'id')::bigint = p.id;

-- Who follows a thread. A row with following = false is an explicit unfollow, which posting again
-- does not undo. Authors and posters get a row (following) when they write.
CREATE TABLE thread_follows (
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    thread_id  bigint NOT NULL REFERENCES threads(id),
    following  boolean NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, thread_id)
);
-- The followers of a thread, read by every new response.
CREATE INDEX thread_follows_thread ON thread_follows (thread_id) WHERE following;

-- Backfill: the authors of the threads and everyone who posted in them follow what they wrote in,
-- as if they had written it after this release.
INSERT INTO thread_follows (user_id, thread_id, following)
SELECT DISTINCT p.author_id, p.thread_id, true FROM posts p
ON CONFLICT DO NOTHING;

-- How far each reader has read a thread (a seq; it never moves backwards).
CREATE TABLE thread_reads (
    user_id   bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    thread_id bigint NOT NULL REFERENCES threads(id),
    seq       bigint NOT NULL,
    read_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, thread_id)
);

-- One per user and post (the most specific kind); deleted when the post is (withdrawn).
CREATE TABLE notifications (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('response', 'comment', 'mention', 'accepted', 'followed')),
    actor_id   bigint NOT NULL REFERENCES users(id),
    thread_id  bigint NOT NULL REFERENCES threads(id),
    post_id    bigint NOT NULL REFERENCES posts(id),
    created_at timestamptz NOT NULL DEFAULT now(),
    read       boolean NOT NULL DEFAULT false,
    UNIQUE (post_id, user_id)
);
-- A user's list, newest first, paged by id; and their unread count.
CREATE INDEX notifications_user ON notifications (user_id, id DESC);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE NOT read;
CREATE INDEX notifications_thread ON notifications (thread_id);

-- @mention completion: prefix search on username and display name, any case.
CREATE INDEX users_username_prefix ON users (lower(username) text_pattern_ops);
CREATE INDEX users_display_name_prefix ON users (lower(display_name) text_pattern_ops);
