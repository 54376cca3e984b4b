-- 0003: moderation. Members flag posts; moderators resolve or dismiss the flags, suspend members,
-- and every action of a moderator on someone else's content is entered in the public log.

ALTER TABLE users ADD COLUMN suspended_until timestamptz;
ALTER TABLE users ADD COLUMN suspension_reason text;

CREATE TABLE flags (
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
-- The review queue: flags by status, newest first, paged by id.
CREATE INDEX flags_status ON flags (status, id DESC);

CREATE TABLE modlog (
    id             bigserial PRIMARY KEY,
    action         text NOT NULL,
    moderator_id   bigint NOT NULL REFERENCES users(id),
    thread_id      bigint REFERENCES threads(id),
    post_id        bigint REFERENCES posts(id),
    target_user_id bigint REFERENCES users(id),
    reason         text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
