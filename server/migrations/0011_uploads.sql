-- 0011: pictures (issue 28; docs/operations.md "Pictures"). An upload is one user's row for bytes kept once
-- in the store under their SHA-256 (the image, its thumbnail, and the square avatar crop once made): many
-- rows may share the same bytes, and a user uploading the same bytes again gets the same row.
CREATE TABLE uploads (
    id            bigserial PRIMARY KEY,
    owner_id      bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    ext           text NOT NULL CHECK (ext IN ('png', 'jpg', 'gif', 'webp')),
    content_type  text NOT NULL,
    size          integer NOT NULL CHECK (size > 0),
    width         integer NOT NULL CHECK (width > 0),
    height        integer NOT NULL CHECK (height > 0),
    thumb_sha256  text NOT NULL CHECK (thumb_sha256 ~ '^[0-9a-f]{64}$'),
    thumb_width   integer NOT NULL CHECK (thumb_width > 0),
    thumb_height  integer NOT NULL CHECK (thumb_height > 0),
    avatar_sha256 text CHECK (avatar_sha256 ~ '^[0-9a-f]{64}$'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, sha256)
);
CREATE INDEX uploads_sha256 ON uploads (sha256);
CREATE INDEX uploads_thumb_sha256 ON uploads (thumb_sha256);
CREATE INDEX uploads_created ON uploads (created_at);

-- What refers to an upload: the posts whose current text names one of its URLs (by the SHA-256 in the URL),
-- kept by a trigger on every insert and every change of a post's text; and a user's avatar.
CREATE TABLE upload_refs (
    sha256  text NOT NULL,
    post_id bigint NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    PRIMARY KEY (sha256, post_id)
);
CREATE INDEX upload_refs_post ON upload_refs (post_id);

CREATE OR REPLACE FUNCTION upload_refs_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.body IS NOT DISTINCT FROM OLD.body THEN
            RETURN NULL;
        END IF;
        DELETE FROM upload_refs WHERE post_id = NEW.id;
    END IF;
    IF strpos(NEW.body, '/uploads/') > 0 THEN
        INSERT INTO upload_refs (sha256, post_id)
        SELECT DISTINCT m[1], NEW.id FROM regexp_matches(NEW.body, '/uploads/([0-9a-f]{64})\.', 'g') AS m
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER posts_upload_refs AFTER INSERT OR UPDATE OF body ON posts
    FOR EACH ROW EXECUTE FUNCTION upload_refs_sync();

ALTER TABLE users ADD COLUMN avatar_upload_id bigint REFERENCES uploads(id) ON DELETE SET NULL;
ALTER TABLE users ADD COLUMN avatar_url text;
