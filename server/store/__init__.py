"""SQL by subject, and only here. Only store/events.py writes a thread's seq and its event rows.

Write functions run inside a transaction the caller opens (db.transaction) and return a Written: what
the API answers, plus everything the write caused that must leave the process after COMMIT. They never
publish themselves: server/effects.after_commit() is the one way out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .events import Event

T = TypeVar("T")


@dataclass(frozen=True)
class SessionsEnded:
    """Sessions of one user that a write ended, whose sockets close (4001) on every process:
    `only` one session (its key: a sign-out), or every session made `before` a credential epoch (a password
    change, a suspension), or, with neither, all of them."""

    user_id: int
    only: str | None = None
    before: int | None = None


@dataclass
class Written(Generic[T]):
    """The result of one write: `value` for the answer, and its effects, each published after COMMIT by
    effects.after_commit() with one failure policy (logged and counted, never an error for the writer:
    each effect is stored first or is soft).

    - events: the thread events stored, in seq order per thread (broker: thread:{id});
    - notified: the new notifications (a list of {"user_id", "notification"}, or notifications.Notified);
    - recount: users whose unread count changed otherwise (a withdrawal);
    - feeds: threads whose list entry changed (feed:all and their categories' feeds); `moved_from`, the
      category a moved thread left, whose feeds hear it as deleted;
    - user_frames: other frames for one user's sockets on every process, (user id, frame);
    - sessions_ended: sessions whose sockets close (the sessions rows are already gone or stale: a hub's
      sweep closes them too if this is lost);
    - mail_queued: mails written to the outbox in this transaction, by kind (the rows are the truth: this
      only wakes the process's sender at once instead of at its next poll);
    - site_frames: frames for every socket on every process, guests too (a silence: soft, the pages reread)."""

    value: T
    events: list[Event] = field(default_factory=list)
    notified: Sequence[dict[str, Any]] = field(default_factory=list)
    recount: set[int] = field(default_factory=set)
    feeds: list[int] = field(default_factory=list)
    moved_from: int | None = None
    user_frames: list[tuple[int, bytes]] = field(default_factory=list)
    sessions_ended: list[SessionsEnded] = field(default_factory=list)
    mail_queued: list[str] = field(default_factory=list)
    site_frames: list[bytes] = field(default_factory=list)

    def merge(self, other: Written[Any]) -> Written[T]:
        """This write's effects followed by another's, made in the same transaction."""
        self.events += other.events
        self.notified = [*self.notified, *other.notified] if other.notified else self.notified
        self.recount |= other.recount
        self.feeds += [t for t in other.feeds if t not in self.feeds]
        self.user_frames += other.user_frames
        self.sessions_ended += other.sessions_ended
        self.mail_queued += other.mail_queued
        self.site_frames += other.site_frames
        return self
