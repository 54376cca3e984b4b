-- similar questions no longer read titles by trigram index (issue 30, bench/README.md "Tags and similar questions"):
-- pg_trgm's similarity() only re-ranks the few hundred full-text candidates, row by row, so threads_title_trgm is
-- never used by any statement and only costs every new or retitled thread a GIN update (and 9.5 s to build at 1M
-- posts). The extension stays: similarity() needs it.
DROP INDEX IF EXISTS threads_title_trgm;
