"""Presence, this process's part: who its own sockets are, per scope (docs/presence.md).

Per scope ("site" or a thread id) a Local holds this process's signed-in users (sockets per user),
its guest sockets, the users lingering in their grace period and what changed since the last write to
Redis (presence_shared.py). A user counts from their first socket here until the grace period after
their last one ends: a second tab, or a reload within the grace period, changes nothing anyone sees.
An explicit unsubscribe or an ended session leaves at once (no linger).

Without Redis this is the whole truth (one process): Counts then also keeps each scope's names in
paging order, and answers the frame's list and the pages itself.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import time
from collections.abc import Callable
from typing import Any

from .channels import Scope

Brief = dict[str, Any]
TOP = 50                     # users in a frame: the most recently arrived (CONTRACT rev. 2)
PAGE_DEFAULT, PAGE_MAX = 50, 200


def name_key(user: Brief) -> str:
    """The paging order: lowercased display name, then user id (zero-padded, so ids sort as numbers)."""
    return f"{user['display_name'].lower()}\0{user['id']:020d}"


def encode_cursor(member: str) -> str:
    return base64.urlsafe_b64encode(member.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The :n member a `next` cursor names; ValueError if it is not one of ours."""
    member = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    name, sep, uid = member.rpartition("\0")
    if not sep or len(uid) != 20 or not uid.isdigit():
        raise ValueError("not a presence cursor")
    return member


class Local:
    """This process's sockets in one scope, and what of it Redis has not heard yet."""

    __slots__ = ("users", "briefs", "guests", "linger", "changed", "guests_changed", "rewrite", "pending", "names")

    def __init__(self) -> None:
        self.users: dict[int, int] = {}     # user id → open sockets here
        self.briefs: dict[int, Brief] = {}  # user id → brief, while present or lingering; in order of arrival
        self.guests = 0
        self.linger: dict[int, float] = {}  # user id → when the grace period ends (clock time)
        self.changed: dict[int, None] = {}  # user ids to write at the next flush, in order of change
        self.guests_changed = False
        self.rewrite = True                 # write everything (first write, or Redis lost it)
        # Users who arrived here and are not yet in what this process last read from Redis: shown first
        # (they are the newest) until a read issued after their write. uid → the flush generation that
        # wrote them (inf: not written yet).
        self.pending: dict[int, float] = {}
        self.names: list[str] = []          # sorted name keys, for paging without Redis

    def empty(self) -> bool:
        return not self.briefs and not self.guests


class Counts:
    """This process's Local per scope. `on_change(scope, people)` is told whenever what the scope shows may
    have changed: a user came or went (people True) or only a guest count moved (people False); `shared`
    is whether Redis holds the truth (then arrivals are `pending` until read back) or this process does
    (then names are kept for paging)."""

    def __init__(self, grace: float, on_change: Callable[[Scope, bool], None], shared: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.scopes: dict[Scope, Local] = {}
        self.grace = grace
        self.on_change = on_change
        self.shared = shared
        self.clock = clock

    def get(self, scope: Scope) -> Local | None:
        return self.scopes.get(scope)

    def present(self, scope: Scope, user_ids: list[int]) -> set[int]:
        """Those of `user_ids` with a socket here in `scope`, or lingering in their grace period."""
        loc = self.scopes.get(scope)
        if loc is None:
            return set()
        return {u for u in user_ids if loc.users.get(u) or u in loc.linger}

    def _loc(self, scope: Scope) -> Local:
        loc = self.scopes.get(scope)
        if loc is None:
            loc = self.scopes[scope] = Local()
        return loc

    def add(self, scope: Scope, user: Brief | None) -> None:
        """A socket of `user` (None: a guest) joined `scope`."""
        loc = self._loc(scope)
        if user is None:
            loc.guests += 1
            loc.guests_changed = True
            self.on_change(scope, False)
            return
        uid = user["id"]
        n = loc.users.get(uid, 0)
        loc.users[uid] = n + 1
        if loc.linger.pop(uid, None) is not None:
            return  # back within the grace period: nothing changed for anyone
        if n == 0 and uid not in loc.briefs:
            loc.briefs[uid] = user
            loc.changed[uid] = None
            if self.shared:
                loc.pending[uid] = float("inf")
            else:
                bisect.insort(loc.names, name_key(user))
            self.on_change(scope, True)

    def remove(self, scope: Scope, user: Brief | None, linger: bool = True) -> None:
        """A socket of `user` left `scope`; with linger, the user stays listed for the grace period."""
        loc = self.scopes.get(scope)
        if loc is None:
            return
        if user is None:
            if loc.guests > 0:
                loc.guests -= 1
                loc.guests_changed = True
                self.on_change(scope, False)
            return
        uid = user["id"]
        n = loc.users.get(uid, 0) - 1
        if n > 0:
            loc.users[uid] = n
            return
        if loc.users.pop(uid, None) is None:
            return  # not one of ours (already removed)
        if uid in loc.briefs:
            if linger and self.grace > 0:
                loc.linger[uid] = self.clock() + self.grace
            else:
                self._expire(scope, loc, uid)

    def _expire(self, scope: Scope, loc: Local, uid: int) -> None:
        loc.linger.pop(uid, None)
        if uid in loc.users:
            return
        brief = loc.briefs.pop(uid, None)
        if brief is not None:
            loc.pending.pop(uid, None)
            loc.changed.pop(uid, None)
            loc.changed[uid] = None
            if not self.shared:
                i = bisect.bisect_left(loc.names, name_key(brief))
                if i < len(loc.names) and loc.names[i] == name_key(brief):
                    del loc.names[i]
            self.on_change(scope, True)

    def end_grace(self) -> None:
        """Users whose grace period is over leave."""
        now = self.clock()
        for scope, loc in list(self.scopes.items()):
            for uid, until in list(loc.linger.items()):
                if until <= now:
                    self._expire(scope, loc, uid)

    def top(self, scope: Scope) -> tuple[list[Brief], int, int]:
        """Without Redis: (at most TOP users, newest first; count; guests)."""
        loc = self.scopes.get(scope)
        if loc is None:
            return [], 0, 0
        return [loc.briefs[u] for u in itertools.islice(reversed(loc.briefs), TOP)], len(loc.briefs), loc.guests

    def page(self, scope: Scope, limit: int, after: str | None) -> dict[str, Any]:
        """Without Redis: one page by display name, after the member `after`."""
        loc = self.scopes.get(scope)
        if loc is None:
            return {"users": [], "count": 0, "guests": 0, "next": None}
        start = bisect.bisect_right(loc.names, after) if after else 0
        members = loc.names[start:start + limit]
        more = start + limit < len(loc.names)
        users = [loc.briefs[int(m[-20:])] for m in members]
        return {"users": users, "count": len(loc.briefs), "guests": loc.guests,
                "next": encode_cursor(members[-1]) if more and members else None}
