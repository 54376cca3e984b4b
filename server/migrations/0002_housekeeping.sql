-- 0002: housekeeping deletes expired sessions in batches; find them by last use.
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);
