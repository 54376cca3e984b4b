-- A notification's recipient without a foreign key (issue 33, bench/README.md "The recipient's key").
--
-- 0018 kept notifications.user_id's key for its ON DELETE CASCADE. Checked once per row, it was the last check
-- a recipient cost a reply: a query and a FOR KEY SHARE lock on the recipient's users row, which concurrent
-- replies notifying the same people share (a MultiXact each time two hold it). Measured with bench.reply_cost on
-- a copy with and without the key: 56-64 recipients, 2,550-2,900 -> 1,525-2,075 us of PostgreSQL CPU per reply;
-- 16 connections at once, 16 recipients, 1,477-1,911 -> 1,305-1,794 us and 8-24 % more replies per second.
--
-- What the key guaranteed still holds:
-- * every recipient a writer names is a row that exists: followers come from thread_follows, askers and response
--   authors from posts, mentions from users (each with its own key to users), read in the writer's statement;
--   Parley never deletes a users row (a member who leaves keeps it: store/leaving.py, CONTRACT "Leaving");
-- * a member deleted by hand still takes their notifications with them: the statement trigger below, one DELETE
--   per statement that deletes users (through notifications_user), where the key was one check per notification.
ALTER TABLE notifications DROP CONSTRAINT notifications_user_id_fkey;

CREATE FUNCTION parley_users_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM notifications n USING gone g WHERE n.user_id = g.id;
    RETURN NULL;
END $$;
CREATE TRIGGER users_deleted AFTER DELETE ON users REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION parley_users_deleted();
