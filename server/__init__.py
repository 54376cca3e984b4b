"""Parley: a real-time discussion service (see docs/architecture.md)."""
