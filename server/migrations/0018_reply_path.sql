-- The reply's PostgreSQL work (issue 33, bench/README.md "Where PostgreSQL's time per reply goes"): what the
-- one statement of a new post (store/posts.py) did per row without need. Nothing a reader sees changes.
--
-- 1. Three foreign keys of notifications are dropped: actor_id, thread_id and post_id. Each was checked once per
--    notification row (a query and a row lock per check): with 16 recipients, 48 of the reply's 75 checks. All three
--    name rows every writer of a notification has just written or locked in the same transaction (the post, its
--    thread, the writer), and none of those rows is ever deleted: posts and threads are deleted softly, a member
--    who leaves keeps their row; by hand, each is still held by a foreign key of its own (a thread by its posts, a
--    post by its revisions, an actor by what they did: their post, their revision, their acceptance). user_id keeps
--    its key and its ON DELETE CASCADE: a member deleted by hand takes their notifications with them.
ALTER TABLE notifications DROP CONSTRAINT notifications_actor_id_fkey,
                          DROP CONSTRAINT notifications_thread_id_fkey,
                          DROP CONSTRAINT notifications_post_id_fkey;

--    And notifications_thread goes: one of the six index entries each notification made, for the one statement
--    that read it (a deleted thread's notifications withdrawn, rarely), which now finds them by the thread's posts
--    (posts_thread, then the (post_id, user_id) key): a notification's thread is always its post's.
DROP INDEX notifications_thread;

-- 2. The followers of a thread, read by every response, from the index alone (an index-only scan): the old index
--    held thread_id only, so each follower cost a visit to the table (one page each: the rows of one thread are
--    spread over the table in the order people followed).
CREATE INDEX thread_follows_followers ON thread_follows (thread_id, user_id) WHERE following;
DROP INDEX thread_follows_thread;

-- 3. A response's or comment's search vector is its body's alone: the title's empty vector (weight A) added
--    nothing, and the title's subquery made every post's vector a query of its own (plpgsql runs an expression
--    holding a subquery through the executor); now only a question's does. The vectors are the same.
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

-- 4. A new post whose body links no upload does not call upload_refs_sync() at all (the call and its queued AFTER
--    event were every reply's; the function found nothing to do). An edit still always calls it: the old body's
--    references go.
DROP TRIGGER posts_upload_refs ON posts;
CREATE TRIGGER posts_upload_refs AFTER UPDATE OF body ON posts
    FOR EACH ROW EXECUTE FUNCTION upload_refs_sync();
CREATE TRIGGER posts_upload_refs_new AFTER INSERT ON posts
    FOR EACH ROW WHEN (strpos(NEW.body, '/uploads/') > 0) EXECUTE FUNCTION upload_refs_sync();
