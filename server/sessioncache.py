"""The reply's session cache: who a session cookie belongs to, kept for the write that is made most often
(a new response or comment, api/forum.create_post), without trading away "sessions revocable on the server".

Every other request looks its session up in PostgreSQL (store/sessions.user_for), as before. A reply takes the
user from here when it can, with the version of their users row it was read at (the row's xmin: every UPDATE of
the row, by any process, the CLI or by hand, gives it a new one). The reply's own statement then checks, in its
snapshot, that the session is still live and the row still at that version (store/sessions.guard_sql); when it
is not, nothing is written and the request runs again from a fresh lookup (StaleSession). So a cached entry can never
make a write that the lookup would have refused: a logout, a revoked session, a password change, a suspension, a
silence, a demotion or any other change of the row stops it in the very statement it would have written with,
on every process at once: no broadcast, no window. What a cached row only decides before that statement (the
checks of silence, privileges, the new account's limits) is believed only when it allows: a refusal from a
cached row is made again from a fresh one (also StaleSession).

This is the issue 33 "session cache with a revocation epoch": the epoch is the row's version, checked where the
write happens rather than pushed to every process.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

from .store.sessions import StaleSession

__all__ = ["Entry", "Guard", "SessionCache", "StaleSession"]


class Guard(NamedTuple):
    """What the reply's statement checks: the session's key (its SHA-256, as the table holds it), the users
    row's version it was read at, and the idle limit in seconds."""
    key: str
    version: int
    idle_seconds: float


class Entry(NamedTuple):
    session_id: str
    user: Any  # the users row (asyncpg.Record) as store/sessions.user_for read it, with row_version
    guard: Guard
    at: float


class SessionCache:
    """At most `size` entries by raw cookie value (so a hit skips the signature check and the hash too), each
    kept `ttl` seconds at most: the staleness a hit can carry only delays a refusal until the statement's check
    (above), and the time-out bounds how long a changed row is kept before being read again. size 0: off."""

    def __init__(self, size: int = 10_000, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.ttl = ttl
        self.clock = clock
        self.entries: OrderedDict[str, Entry] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.size > 0

    def get(self, cookie: str) -> Entry | None:
        entry = self.entries.get(cookie)
        if entry is None:
            return None
        if self.clock() - entry.at > self.ttl:
            del self.entries[cookie]
            return None
        return entry

    def put(self, cookie: str, session_id: str, user: Any, guard: Guard) -> None:
        if not self.enabled:
            return
        self.entries.pop(cookie, None)
        self.entries[cookie] = Entry(session_id, user, guard, self.clock())
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)  # the oldest read first

    def drop(self, cookie: str) -> None:
        self.entries.pop(cookie, None)

    def __len__(self) -> int:
        return len(self.entries)
