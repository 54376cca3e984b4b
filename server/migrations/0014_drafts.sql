-- drafts (issue 32; CONTRACT rev. 3 "Drafts and transports"). Planned as 0016: named 0014 on its branch because
-- the runner refuses gaps; the lead renumbers at merge.
-- What a person is writing, per user and key (`ask`, `thread:ID`, `comment:ID`, `edit:ID`), so it follows
-- them to every tab and device. `revision` is the compare-and-set token of PUT /api/me/drafts/{key}; a post
-- that succeeds deletes its draft; housekeeping deletes drafts untouched for store/drafts.KEEP_DAYS.
CREATE TABLE drafts (
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key        text NOT NULL CONSTRAINT drafts_key CHECK (key ~ '^(ask|(thread|comment|edit):[1-9][0-9]{0,18})$'),
    body       text NOT NULL,
    revision   integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX drafts_updated ON drafts (updated_at);
