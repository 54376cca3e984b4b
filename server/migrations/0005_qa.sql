-- 0005 (issue 14): accepted answers, the question's score on its
-- thread, list indexes per sort and filter, full-text search, profile lookups.

-- The thread's accepted response (null: none) and its question's score, kept beside the thread so
-- that every list sort reads one table through one index.
ALTER TABLE threads ADD COLUMN accepted_id bigint REFERENCES posts(id);
ALTER TABLE threads ADD COLUMN score integer NOT NULL DEFAULT 0;
UPDATE threads t SET score = q.score FROM posts q WHERE q.thread_id = t.id AND q.kind = 'question' AND q.score <> 0;

-- posts.score of a question is mirrored into threads.score in the same transaction as the vote.
CREATE FUNCTION parley_question_score() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE threads SET score = NEW.score WHERE id = NEW.thread_id;
    RETURN NULL;
END $$;
CREATE TRIGGER posts_question_score AFTER UPDATE OF score ON posts FOR EACH ROW
    WHEN (NEW.kind = 'question' AND OLD.score IS DISTINCT FROM NEW.score) EXECUTE FUNCTION parley_question_score();

-- Lists: one index per sort, site-wide and by category, and the unanswered filter site-wide
-- (by category it walks the category index and filters). Activity's two exist since 0001.
CREATE INDEX threads_newest ON threads (created_at DESC, id DESC) WHERE NOT deleted;
CREATE INDEX threads_category_newest ON threads (category_id, created_at DESC, id DESC) WHERE NOT deleted;
CREATE INDEX threads_top ON threads (score DESC, id DESC) WHERE NOT deleted;
CREATE INDEX threads_category_top ON threads (category_id, score DESC, id DESC) WHERE NOT deleted;
CREATE INDEX threads_unanswered_activity ON threads (last_activity_at DESC, id DESC)
    WHERE NOT deleted AND response_count = 0;
CREATE INDEX threads_unanswered_newest ON threads (created_at DESC, id DESC) WHERE NOT deleted AND response_count = 0;
CREATE INDEX threads_unanswered_top ON threads (score DESC, id DESC) WHERE NOT deleted AND response_count = 0;

-- Profiles: a user's posts, newest first.
CREATE INDEX posts_author ON posts (author_id, id DESC) WHERE NOT deleted;

-- Search: a stored tsvector per post, kept by triggers in the transaction of the write, so a post is
-- findable as soon as its request answered, an edit replaces its words and a deletion removes them.
-- A question's vector holds its thread's title at weight A, above the body (B).
ALTER TABLE posts ADD COLUMN search tsvector;

CREATE FUNCTION parley_search_vector(title text, body text) RETURNS tsvector LANGUAGE sql IMMUTABLE AS $$
    SELECT setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, body), 'B')
$$;

CREATE FUNCTION parley_post_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.deleted THEN
        NEW.search := NULL;
    ELSE
        NEW.search := parley_search_vector(
            CASE WHEN NEW.kind = 'question' THEN (SELECT title FROM threads WHERE id = NEW.thread_id) END, NEW.body);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER posts_search BEFORE INSERT OR UPDATE OF body, deleted ON posts
    FOR EACH ROW EXECUTE FUNCTION parley_post_search();

CREATE FUNCTION parley_title_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE posts SET search = parley_search_vector(NEW.title, body)
    WHERE thread_id = NEW.id AND kind = 'question' AND NOT deleted;
    RETURN NULL;
END $$;
CREATE TRIGGER threads_title_search AFTER UPDATE OF title ON threads FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title) EXECUTE FUNCTION parley_title_search();

UPDATE posts p SET search = parley_search_vector(CASE WHEN p.kind = 'question' THEN t.title END, p.body)
FROM threads t WHERE t.id = p.thread_id AND NOT p.deleted;

CREATE INDEX posts_search ON posts USING gin (search);
