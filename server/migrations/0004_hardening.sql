-- 0004: an Idempotency-Key belongs to one user and one thread (CONTRACT, the idempotency paragraph):
-- the same key sent to another thread is a new request.
ALTER TABLE idempotency_keys ADD COLUMN thread_id bigint REFERENCES threads(id);
UPDATE idempotency_keys k SET thread_id = p.thread_id FROM posts p WHERE p.id = k.post_id;
-- A key without a post was in flight when the upgrade ran; its retry is simply a new request.
DELETE FROM idempotency_keys WHERE thread_id IS NULL;
ALTER TABLE idempotency_keys ALTER COLUMN thread_id SET NOT NULL;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (user_id, thread_id, key);
