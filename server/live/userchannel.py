"""The per-user channel `user:{id}` (ARCHITECTURE "Channels"; docs/live.md "User channel").

What one person must hear on every tab and every server process goes through
it: the end of a session (sign-out, a password change, suspension), notifications, unread counts,
moderators' flag counts. Publish only after COMMIT (the stored rows are the truth; nothing on this
channel is replayed). Every process subscribes a user's channel while it holds
at least one socket of that user, and its hub hands each message to all of
them (users.py, the receiving side).

A message is a frame (written as-is to every socket of the user: publish_frame) or a control
message, an action the hub performs on those sockets; the one action so far is end_sessions (close
with 4001), see below. Their bytes: live/channels.py.

Sessions are named by their key (store.sessions.key(): the SHA-256 kept in the
database), never by the cookie's id.

A large fan-out (one post notifying BROADCAST_MIN users or more: a thread with
many followers) does not go through the users' channels: one PUBLISH per
recipient was most of such a reply's cost. The writer publishes ONE batch on
the process-wide channel `users` (Channels.users), which every process
subscribes at start: the shared part of the notification once, then (user id,
notification id) per recipient, grouped by kind, plus the users whose count
changed otherwise. Each process (users.Batches) keeps the entries of users it holds
sockets of, reads THEIR unread counts (none at all when it holds none: offline
recipients cost no count query anywhere) and writes each frame to those
sockets. Same guarantees as the user channel: after COMMIT, every socket of
each recipient on every process, not replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..store import notifications as store
from .broker import Broker
from .channels import Channels, batch_message, end_sessions_message, site_message

# Recipients from which one post's notifications go out as one batch instead of one PUBLISH each.
# Measured (bench/README "Coming back (issue 15)"): 20 @mentions cost the writer +40-55 % over a plain
# reply as targeted frames (a count query, 20 PUBLISH) and -3 to +19 % as a batch; below ~16 the two are
# inside the machine's noise, and targeted frames reach only the processes holding the user's sockets.
BROADCAST_MIN = 16


async def publish_frame(broker: Broker, channels: Channels, user_id: int, frame: bytes) -> None:
    """Send `frame` (an encoded JSON object) to every socket of the user, on every process."""
    await broker.publish(channels.user(user_id), frame)


async def publish_frames(broker: Broker, channels: Channels, frames: list[tuple[int, bytes]]) -> None:
    """Several (user id, frame) pairs, each to every socket of its user, in one broker round trip where
    the backend can (the notifications of one post)."""
    await broker.publish_many([(channels.user(uid), frame) for uid, frame in frames])


async def end_sessions(broker: Broker, channels: Channels, user_id: int, only: str | None = None,
                       before: int | None = None) -> None:
    """Close (4001) the user's sockets of ended sessions, on every process.

    only:   close only the sockets of this session (sign-out)
    before: close the sockets of every session made at a credential epoch below this one (a password change
            or a suspension raised the user's epoch to it); a socket of a session made at it or later stays
    Neither: every socket of the user.
    """
    await broker.publish(channels.user(user_id), end_sessions_message(only, before))


def batch(notified: Sequence[dict[str, Any]], recount: set[int]) -> bytes | None:
    """One post's notifications (store.notifications.published()) and other count changes as one batch
    message (channels.batch_message); None when the notifications are not of one post (then they go out
    one by one)."""
    if isinstance(notified, store.Notified):  # one post's, straight from its columns
        return batch_message(notified.shared() if notified else None, notified.groups(),
                             sorted(recount - set(notified.users)))
    if not notified:
        shared = None
    else:
        first = notified[0]["notification"]
        shared = {k: v for k, v in first.items() if k not in ("id", "kind", "created_at")}
        actor, thread, post_id = first["actor"], first["thread"], first["post_id"]
    groups: dict[tuple[str, str], list[int]] = {}
    for item in notified:
        n = item["notification"]
        # published() gives every row of a post the same actor and thread objects: `is` is the fast check
        if n["post_id"] != post_id or (n["actor"] is not actor and n["actor"] != actor) \
                or (n["thread"] is not thread and n["thread"] != thread) or n.keys() != first.keys():
            return None
        key = (n["kind"], n["created_at"])
        if (ids := groups.get(key)) is None:
            ids = groups[key] = []
        ids += (item["user_id"], n["id"])
    notified_users = {item["user_id"] for item in notified}
    return batch_message(shared, [[k, c, ids] for (k, c), ids in groups.items()], sorted(recount - notified_users))


async def publish_batch(broker: Broker, channels: Channels, message: bytes) -> None:
    await broker.publish(channels.users, message)


async def publish_site_frame(broker: Broker, channels: Channels, frame: bytes) -> None:
    """A frame for every socket of every process, guests too, on the process-wide `users` channel."""
    await broker.publish(channels.users, site_message(frame))
