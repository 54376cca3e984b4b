"""SQL by subject. Only this package writes thread events (see events.append).

Write functions run inside a transaction the caller opens (db.transaction) and
return what the API answers plus the encoded event frames to publish after
COMMIT; they never publish themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass
class Written(Generic[T]):
    """The result of a write and what to publish after commit: the thread event frames, the new
    notifications ({"user_id", "notification"}) and the users whose unread count changed otherwise."""

    value: T
    frames: list[tuple[int, bytes]] = field(default_factory=list)
    notified: Sequence[dict[str, Any]] = field(default_factory=list)  # a list, or notifications.Notified
    recount: set[int] = field(default_factory=set)
