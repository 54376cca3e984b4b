-- trust and spam (issue 29; docs/moderation.md "Trust"; planned as 0014; drafts and integrations took 0014 and 0015 first): reputation as a ledger, auto-silence.
--
-- Reputation. users.reputation is the maintained sum (1 + the user's ledger deltas, never below 1);
-- reputation_events is the append-only ledger, one row per change that happened (a loss clipped at 1 is
-- recorded as clipped). The rule itself lives once, here, as the aggregate parley_reputation(): it replays a
-- user's live sources (reputation_sources: up and down votes on their live questions and responses, the
-- acceptance of their live response, their own acceptance of someone's answer) oldest first, capping what votes
-- earn per UTC day at 200 and never going below 1. The server adds a new vote with the same step function and
-- recounts with the aggregate whenever a source goes (server/store/reputation.py), so the sum is always what a
-- recount from scratch gives.
ALTER TABLE users ADD COLUMN reputation integer NOT NULL DEFAULT 1
    CONSTRAINT users_reputation_floor CHECK (reputation >= 1);
-- When the current acceptance was made and by whom (the asker earns +2 only when they accepted it themselves).
ALTER TABLE threads ADD COLUMN accepted_at timestamptz;
ALTER TABLE threads ADD COLUMN accepted_by bigint REFERENCES users(id);

CREATE TABLE reputation_events (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    delta      integer NOT NULL,
    reason     text NOT NULL CONSTRAINT reputation_events_reason CHECK (reason IN (
        'vote_up', 'vote_down', 'vote_undone', 'vote_changed', 'accepted', 'accept_undone', 'accepter',
        'accepter_undone', 'post_deleted', 'recount')),
    post_id    bigint REFERENCES posts(id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reputation_events_user ON reputation_events (user_id, id DESC);

-- One step of the rule: state {reputation, UTC day of the last vote gain, earned by votes that day}.
CREATE FUNCTION parley_reputation_step(s integer[], kind text, amount integer, at timestamptz) RETURNS integer[]
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

CREATE AGGREGATE parley_reputation(text, integer, timestamptz) (
    SFUNC = parley_reputation_step, STYPE = integer[], INITCOND = '{1,-1,0}'
);

-- Every live source of reputation, per user: (user_id, kind, amount, at, post_id, actor_id).
CREATE VIEW reputation_sources AS
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

-- Existing acceptances: when is not known (the response's own time is the earliest it can have been); by the
-- moderator whose log entry made it, else by the asker.
UPDATE threads t SET accepted_at = p.created_at,
       accepted_by = coalesce((SELECT m.moderator_id FROM modlog m WHERE m.action = 'thread.accepted'
                               AND m.thread_id = t.id AND m.post_id = t.accepted_id ORDER BY m.id DESC LIMIT 1),
                              t.author_id)
FROM posts p WHERE p.id = t.accepted_id;

-- Existing users start with what their existing votes and acceptances give them, recorded as one `recount` row.
WITH r AS (
    SELECT user_id, (parley_reputation(kind, amount, at ORDER BY at, kind, post_id, actor_id))[1] AS reputation
    FROM reputation_sources GROUP BY user_id
)
UPDATE users u SET reputation = r.reputation FROM r WHERE r.user_id = u.id AND r.reputation <> 1;
INSERT INTO reputation_events (user_id, delta, reason) SELECT id, reputation - 1, 'recount' FROM users
WHERE reputation <> 1;

-- Auto-silence: a silenced account's posts are hidden from all but moderators and itself, and it may not post.
-- silenced_at is set by three distinct spam flaggers (or a moderator) and cleared by a moderator, who also sets
-- silence_lifted_at: only spam flags raised after it count towards the next auto-silence.
ALTER TABLE users ADD COLUMN silenced_at timestamptz;
ALTER TABLE users ADD COLUMN silence_lifted_at timestamptz;
CREATE INDEX users_silenced ON users (id) WHERE silenced_at IS NOT NULL;
-- The system (auto-silence) acts without a moderator: its log entries have none.
ALTER TABLE modlog ALTER COLUMN moderator_id DROP NOT NULL;

-- The spam check (server/spamcheck.py): a new account's post the checker calls spam waits, pending, for a moderator
-- (PUT /api/posts/{id}/approval); only its author and moderators see it, and it has no event until published.
ALTER TABLE posts ADD COLUMN pending boolean NOT NULL DEFAULT false;
-- A thread whose question is held: out of every list until it is published.
ALTER TABLE threads ADD COLUMN held boolean NOT NULL DEFAULT false;
CREATE INDEX posts_pending ON posts (author_id) WHERE pending;

-- Ignoring: the ignorer gets the ignored member's posts collapsed and none of their notifications (nor mail).
CREATE TABLE user_ignores (
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    ignored_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, ignored_id)
);
