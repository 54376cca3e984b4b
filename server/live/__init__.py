"""Live delivery: broker (doorbell), hub (fan-out), ws (the /ws protocol), presence. See docs/live.md."""
