"""The per-user channel `user:{id}` (ARCHITECTURE "Channels"; docs/live.md "User channel").

What one person must hear on every tab and every server process goes through
it: the end of a session (sign-out, a password change, suspension), notifications, unread counts,
moderators' flag counts. Publish only after COMMIT (the stored rows are the truth; nothing on this
channel is replayed). Every process subscribes a user's channel while it holds
at least one socket of that user, and its hub hands each message to all of
them (Hub.on_user_message).

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
changed otherwise. Each process (Batches) keeps the entries of users it holds
sockets of, reads THEIR unread counts (none at all when it holds none: offline
recipients cost no count query anywhere) and writes each frame to those
sockets. Same guarantees as the user channel: after COMMIT, every socket of
each recipient on every process, not replayed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from .. import wire
from ..store import notifications as store
from .broker import Broker
from .channels import Channels, batch_message, end_sessions_message, parse_batch
from .conn import Conn, Frame

log = logging.getLogger(__name__)

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


class Batches:
    """This process's listener on the batch channel (Hub.listen): hands each entry to the local sockets
    of its user only (`by_user`, the hub's), building the frame here with the count read here."""

    def __init__(self, by_user: dict[int, set[Conn]],
                 acquire: Callable[[], AbstractAsyncContextManager[Any]],
                 spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[Any]]) -> None:
        self.by_user = by_user
        self.acquire = acquire  # the hub's pooled connection, with its acquire deadline
        self.spawn = spawn
        self.count_queries = 0  # unread-count reads this process made for batches (tests, bench)

    def on_message(self, message: bytes) -> None:
        by_user = self.by_user
        try:
            shared, groups, recount = parse_batch(message)
            # Only the entries of users with a socket here are looked at further (most are offline).
            local = [(uid, nid, kind, created) for kind, created, ids in groups
                     for uid, nid in zip(ids[::2], ids[1::2], strict=True) if uid in by_user]
            local_recount = [uid for uid in recount if uid in by_user]
        except Exception:
            log.warning("bad notification batch (%d bytes)", len(message))
            return
        if local or local_recount:  # nobody here: nothing to read or send
            self.spawn(self._deliver(shared, local, local_recount), "notify-batch")

    def on_reconnect(self) -> None:
        """Batches lost meanwhile are not replayed: the rows are stored, and the page rereads them."""

    async def _deliver(self, shared: dict[str, Any] | None, entries: list[tuple[int, int, str, str]],
                       recount: list[int]) -> None:
        users = sorted({e[0] for e in entries} | set(recount))
        try:
            self.count_queries += 1
            async with self.acquire() as conn:
                counts = await store.unread_counts(conn, users)
        except Exception as exc:  # stored: the recipients read them over HTTP
            log.warning("unread counts for a notification batch failed: %s", exc)
            return
        for uid, nid, kind, created in entries:
            frame = Frame(wire.notification({"id": nid, "kind": kind, "created_at": created, **(shared or {})},
                                            counts.get(uid, 0)))
            for conn in list(self.by_user.get(uid, ())):
                conn.send(frame)
        for uid in recount:
            frame = Frame(wire.notifications(counts.get(uid, 0)))
            for conn in list(self.by_user.get(uid, ())):
                conn.send(frame)
