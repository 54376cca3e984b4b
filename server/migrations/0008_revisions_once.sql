-- 0008: a revision's text is stored once (issue 25, finding 12).
--
-- Until now every post.created / post.edited event kept the whole Post JSON, body and html included, beside
-- the same text in post_revisions: each edit of a long post stored its text twice. From here on such an event
-- keeps the Post JSON without body and html and names the revision that holds them; reads (the events
-- endpoint, /ws replay and backfill) put the two fields back, so what they answer does not change.
ALTER TABLE thread_events ADD COLUMN post_id bigint, ADD COLUMN revision integer;
ALTER TABLE thread_events ADD CONSTRAINT thread_events_text
    FOREIGN KEY (post_id, revision) REFERENCES post_revisions (post_id, revision);
ALTER TABLE thread_events ADD CONSTRAINT thread_events_text_both CHECK ((post_id IS NULL) = (revision IS NULL));

-- The stored events of live posts move their text out where the revision they describe holds exactly that
-- text. Any other event keeps its text where it is: those of deleted posts (already emptied) and any that differ.
UPDATE thread_events e
SET data = e.data - 'body' - 'html', post_id = r.post_id, revision = r.revision
FROM post_revisions r JOIN posts p ON p.id = r.post_id
WHERE e.name IN ('post.created', 'post.edited') AND NOT p.deleted
  AND r.post_id = CASE WHEN jsonb_typeof(e.data->'id') = 'number' THEN (e.data->>'id')::numeric END
  AND r.revision = CASE WHEN jsonb_typeof(e.data->'revision') = 'number' THEN (e.data->>'revision')::numeric END
  AND e.data->>'body' = r.body AND e.data->>'html' = r.html;
