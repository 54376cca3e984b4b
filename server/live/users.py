"""This process's signed-in sockets by user: the receiving side of `user:{id}` and of the `users` batches.

Every process subscribes a user's channel while it holds at least one socket of that user
(userchannel.py publishes to it) and hands each message to all of them: a frame as-is, or a control
action (end_sessions: close with 4001). A large notification fan-out arrives once per process on the
`users` channel (Batches): only the entries of users with a socket here are looked at, and their
unread counts read here.

Sessions end by message (after the row is gone) and, as the net under it, by a sweep every reconcile
round that asks the database which of the open sockets' sessions still live (store.sessions.live_keys):
a lost end_sessions message is a delay of seconds, never a socket left signed in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from .. import wire
from ..db import Acquire
from ..errors import WS_4001_SESSION_ENDED
from ..store import notifications as store_notifications
from ..store import sessions as store_sessions
from .broker import Broker
from .channels import Channels, parse_batch, parse_control, parse_site
from .conn import Conn, Frame
from .rooms import Spawn

log = logging.getLogger(__name__)

SWEEP_BATCH = 5000  # session keys asked about per query


class Users:
    """Signed-in sockets by user id, the user channels they need, and the session sweep."""

    def __init__(self, broker: Broker, channels: Channels, acquire: Acquire, spawn: Spawn,
                 session_idle_days: float = 30.0) -> None:
        self.broker = broker
        self.channels = channels
        self.acquire = acquire
        self.spawn = spawn
        self.session_idle_days = session_idle_days  # sockets of sessions idle longer are closed
        self.by_user: dict[int, set[Conn]] = {}
        self.batches = Batches(self.by_user, acquire, spawn)

    async def add(self, conn: Conn) -> None:
        """Put a signed-in socket on its user's channel (subscribed before this returns), then check its
        session once more: a sign-out that committed between the handshake and the subscription is not
        missed. Raises if the broker or the database fails (the sweep still covers the socket)."""
        assert conn.user is not None
        user_id = conn.user["id"]
        first = user_id not in self.by_user
        self.by_user.setdefault(user_id, set()).add(conn)
        if first:
            await self.broker.subscribe(self.channels.user(user_id))
        if conn.session is not None:
            async with self.acquire() as db:
                live = await store_sessions.live_keys(db, [conn.session], self.session_idle_days)
            if not live:
                self.end_session(conn)

    def remove(self, conn: Conn) -> None:
        if conn.user is None:
            return
        mine = self.by_user.get(conn.user["id"])
        if mine is not None:
            mine.discard(conn)
            if not mine:
                del self.by_user[conn.user["id"]]
                self.spawn(self._unsubscribe(conn.user["id"]), "user-unsubscribe")

    async def _unsubscribe(self, user_id: int) -> None:
        if user_id not in self.by_user:
            try:
                await self.broker.unsubscribe(self.channels.user(user_id))
            except Exception as exc:
                log.warning("unsubscribe user %d failed: %s", user_id, exc)

    def on_message(self, user_id: int, message: bytes) -> None:
        """A frame for every socket of the user, or a control action on them."""
        conns = list(self.by_user.get(user_id, ()))
        if not conns:
            return
        try:
            action = parse_control(message)
        except Exception:
            log.warning("bad control message for user %d", user_id)
            return
        if action is None:
            frame = Frame(message)
            for conn in conns:
                conn.send(frame)
        elif action.get("action") == "end_sessions":
            only, before = action.get("only"), action.get("before")
            for conn in conns:
                # One session (sign-out), or every session made before the user's epoch `before` (a password
                # change, a suspension; None: all of them). A socket of a session made at the new epoch (the
                # changer's page reconnecting with its new cookie) stays.
                if (conn.session == only) if only is not None else (before is None or conn.epoch < before):
                    self.end_session(conn)

    def end_session(self, conn: Conn) -> None:
        log.info("ws %d: its session ended; closing with 4001", conn.id)
        conn.close(WS_4001_SESSION_ENDED, "session ended")

    async def sweep(self, conns: Iterable[Conn]) -> None:
        """Close the sockets whose session is gone (revoked, expired idle, made before the user's credential
        epoch, the user suspended: store.sessions.live_keys): the net under the channel."""
        seen = [(c, c.session) for c in conns if c.session is not None and c.alive]
        if not seen:
            return
        keys = sorted({key for _, key in seen if key is not None})
        live: set[str] = set()
        for i in range(0, len(keys), SWEEP_BATCH):
            async with self.acquire() as db:
                live |= await store_sessions.live_keys(db, keys[i:i + SWEEP_BATCH], self.session_idle_days)
        for conn, key in seen:
            if key not in live and conn.alive:
                self.end_session(conn)

    async def sweep_quietly(self, conns: Iterable[Conn]) -> None:
        try:
            await self.sweep(conns)
        except Exception as exc:  # database down or pool busy: the reconcile loop sweeps again in 5 s
            log.warning("session sweep failed: %s", exc)


class Batches:
    """This process's listener on the batch channel (Hub.listen): hands each entry to the local sockets
    of its user only (`by_user`, Users'), building the frame here with the count read here."""

    def __init__(self, by_user: dict[int, set[Conn]], acquire: Acquire, spawn: Spawn) -> None:
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
                counts = await store_notifications.unread_counts(conn, users)
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


class UsersChannel:
    """The hub's listener on the `users` channel: a site frame goes to every socket of this process (guests
    too), a batch to Batches."""

    def __init__(self, batches: Batches, conns: set[Conn]) -> None:
        self.batches = batches
        self.conns = conns  # the hub's sockets, all of them

    def on_message(self, message: bytes) -> None:
        frame = parse_site(message)
        if frame is None:
            self.batches.on_message(message)
            return
        shared = Frame(frame)
        for conn in list(self.conns):
            conn.send(shared)

    def on_reconnect(self) -> None:
        self.batches.on_reconnect()
