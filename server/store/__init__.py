"""SQL by subject. Only this package writes thread events (see events.append).

Write functions run inside a transaction the caller opens (db.transaction) and
return what the API answers plus the encoded event frames to publish after
COMMIT; they never publish themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Written(Generic[T]):
    """The result of a write and the event frames it produced, to publish after commit."""

    value: T
    frames: list[tuple[int, bytes]] = field(default_factory=list)
