"""The session cache's own bookkeeping (server/sessioncache.py): bounded size, time-out, off at size 0."""

from __future__ import annotations

from server.sessioncache import Guard, SessionCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl() -> None:
    """An entry is answered within its time-out and forgotten after it."""
    clock = Clock()
    cache = SessionCache(size=10, ttl=30, clock=clock)
    cache.put("c", "sid", {"id": 1}, Guard("k", 7, 86400.0))
    clock.now = 29.0
    entry = cache.get("c")
    assert entry is not None and entry.guard.version == 7 and entry.session_id == "sid"
    clock.now = 31.0
    assert cache.get("c") is None and len(cache) == 0


def test_the_oldest_entry_goes_when_full() -> None:
    """At its size, putting one more drops the entry read longest ago, not the newest."""
    cache = SessionCache(size=2, ttl=30, clock=Clock())
    for name in ("a", "b", "c"):
        cache.put(name, name, {"id": name}, Guard(name, 1, 1.0))
    assert cache.get("a") is None and cache.get("b") is not None and cache.get("c") is not None


def test_size_zero_keeps_nothing() -> None:
    """With size 0 the cache is off: nothing put is kept."""
    cache = SessionCache(size=0)
    cache.put("c", "sid", {"id": 1}, Guard("k", 1, 1.0))
    assert not cache.enabled and cache.get("c") is None
