"""The per-user channel `user:{id}` (ARCHITECTURE "Channels"; docs/live.md "User channel").

What one person must hear on every tab and every server process goes through
it: the end of a session today; notifications, unread counts and suspension
next. Publish only after COMMIT (the stored rows are the truth; nothing on this
channel is replayed). Every process subscribes a user's channel while it holds
at least one socket of that user, and its hub hands each message to all of
them (Hub.on_user_message).

A message is one of:

* a frame, the bytes of a JSON object (`{...}`): written as-is to every socket
  of the user (use publish_frame);
* a control message, b"!" + JSON, an action the hub performs on those sockets.
  The one action so far is end_sessions (close with 4001), see below.

Sessions are named by their key (store.sessions.key(): the SHA-256 kept in the
database), never by the cookie's id.
"""

from __future__ import annotations

from typing import Any

from ..wire import decode, encode
from .broker import Broker


async def publish_frame(broker: Broker, user_id: int, frame: bytes) -> None:
    """Send `frame` (an encoded JSON object) to every socket of the user, on every process."""
    await broker.publish(broker.user_channel(user_id), frame)


async def end_sessions(broker: Broker, user_id: int, only: str | None = None, keep: str | None = None,
                       rebind: str | None = None) -> None:
    """Close (4001) the user's sockets of ended sessions, on every process.

    only:   close only the sockets of this session (sign-out); None means every session of the user
            (suspension, a password change)
    keep:   ...except this one, whose sockets stay open (the device that changed the password)
    rebind: the kept sockets now belong to this session (the password change issued it a new one)
    """
    await broker.publish(broker.user_channel(user_id),
                         b"!" + encode({"action": "end_sessions", "only": only, "keep": keep, "rebind": rebind}))


def parse_control(message: bytes) -> dict[str, Any] | None:
    """The action of a control message, or None for a frame."""
    if message[:1] != b"!":
        return None
    action = decode(message[1:])
    return action if isinstance(action, dict) else {}
