"""Live delivery: ws (the /ws protocol), hub (rooms, backfill, replay, users), channels (names and bytes),
broker (the doorbell between processes), presence. See docs/live.md and docs/architecture.md."""
