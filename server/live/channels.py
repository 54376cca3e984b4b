"""Every broker channel's name, and the bytes each one carries (docs/live.md "Channels").

Channels live under the forum's namespace `parley:<deployment id>` (read from the database at start),
so forums that share a Redis never hear each other. `Channels(namespace)` builds and reads the names:

    {ns}:thread:{id}          a thread's events, and its typing relay      every process watching it
    {ns}:user:{id}            what every socket of one user must hear      every process holding one
    {ns}:users                large notification fan-outs, as batches      every process, from start
    {ns}:feed:all             thread-list updates, every thread            every process following it
    {ns}:feed:category:{id}   ... of one category and its descendants      likewise
    {ns}:presence             presence doorbells                           every process, from start

What goes on them (byte for byte what earlier versions sent, so processes of two versions interoperate
during a rolling upgrade). Where one channel carries two kinds, the first byte tells them apart without
parsing anything:

thread:{id}
    event       b'{"type":"event","thread":ID,"seq":N,...}', the websocket frame itself, encoded once by
                the writer (wire.event_frame); every process forwards the bytes. Its seq is read from
                the frame's head (wire.frame_seq), never by decoding the JSON.
    typing      b"T" + b"<process>:<conn id>" + b" " + <typing frame> (typing_message): the frame for
                the thread's other watchers; <process>:<conn id> names the sender, never echoed to it.
user:{id}
    frame       b"{...}": a JSON object written as-is to every socket of the user (notifications,
                unread counts, moderators' flag counts).
    control     b"!" + JSON (end_sessions_message): an action on the user's sockets. The one action:
                {"action": "end_sessions", "only": session key | null, "before": epoch | null}.
users
    site        b"*" + <frame> (site_message): a frame for every socket of every process, guests too (a
                silence, store/silence.py); older processes log it as a bad batch and drop it.
    batch       JSON {"n": the notification without id, kind, created_at (or null),
                      "groups": [[kind, created_at, [user id, notification id, user id, ...]], ...],
                      "recount": [user id, ...]} (batch_message): one post's notifications; each process
                hands them to the sockets of its own users, with counts it reads for them.
feed:...
    update      b"<thread id> " + <feed frame> (feed_message): the id lets a process coalesce per
                thread without parsing the frame.
presence
    doorbell    JSON list of the scopes that changed, ["site", "12", ...] (doorbell): every process
                reads those scopes again from Redis.

Names and formats are built and read here only; nothing else in the server spells a channel.
"""

from __future__ import annotations

from typing import Any

from ..wire import decode, encode

Scope = str | int  # a presence scope: "site" or a thread id

TYPING = b"T"   # first byte of a typing message on a thread's channel (events begin with b"{")
CONTROL = b"!"  # first byte of a control message on a user's channel (frames begin with b"{")
SITE = b"*"  # first byte of a site frame on the users channel (batches begin with b"{")


class Channels:
    """The channel names of one forum (its namespace), built once and compared by prefix."""

    __slots__ = ("namespace", "users", "presence", "feed_all", "_thread", "_user", "_feed", "_category")

    def __init__(self, namespace: str = "parley") -> None:
        self.namespace = namespace
        self.users = f"{namespace}:users"
        self.presence = f"{namespace}:presence"
        self.feed_all = f"{namespace}:feed:all"
        self._thread = f"{namespace}:thread:"
        self._user = f"{namespace}:user:"
        self._feed = f"{namespace}:feed:"
        self._category = f"{namespace}:feed:category:"

    def thread(self, thread_id: int) -> str:
        return f"{self._thread}{thread_id}"

    def thread_of(self, channel: str) -> int | None:
        """The thread id of one of our thread channels, else None."""
        prefix = self._thread
        if channel.startswith(prefix):
            tail = channel[len(prefix):]
            if tail.isdigit():
                return int(tail)
        return None

    def user(self, user_id: int) -> str:
        return f"{self._user}{user_id}"

    def user_of(self, channel: str) -> int | None:
        prefix = self._user
        if channel.startswith(prefix):
            tail = channel[len(prefix):]
            if tail.isdigit():
                return int(tail)
        return None

    def feed(self, category_id: int | None) -> str:
        """feed:all (None) or feed:category:{id}."""
        return self.feed_all if category_id is None else f"{self._category}{category_id}"

    def is_feed(self, channel: str) -> bool:
        return channel.startswith(self._feed)


# -- thread:{id}: typing -----------------------------------------------------------------------------

def typing_message(process: str, conn_id: int, frame: bytes) -> bytes:
    """The thread-channel message for a typing `frame` sent by socket `conn_id` of `process`."""
    return TYPING + f"{process}:{conn_id}".encode() + b" " + frame


def is_typing(message: bytes) -> bool:
    return message[:1] == TYPING


def typing_parts(message: bytes) -> tuple[str, int, bytes]:
    """(process, conn id, frame) of a typing message (conn id -1 if it is not one)."""
    space = message.index(b" ")
    process, _, conn_id = message[1:space].decode().rpartition(":")
    return process, int(conn_id) if conn_id.isdigit() else -1, message[space + 1:]


# -- user:{id}: control --------------------------------------------------------------------------------

def end_sessions_message(only: str | None, before: int | None) -> bytes:
    return CONTROL + encode({"action": "end_sessions", "only": only, "before": before})


def parse_control(message: bytes) -> dict[str, Any] | None:
    """The action of a control message, or None for a frame (raises on a broken control message)."""
    if message[:1] != CONTROL:
        return None
    action = decode(message[1:])
    return action if isinstance(action, dict) else {}


# -- users: batches --------------------------------------------------------------------------------------

Groups = list[list[Any]]  # [[kind, created_at, [user id, notification id, ...]], ...]


def batch_message(shared: dict[str, Any] | None, groups: Groups, recount: list[int]) -> bytes:
    return encode({"n": shared, "groups": groups, "recount": recount})


def site_message(frame: bytes) -> bytes:
    return SITE + frame


def parse_site(message: bytes) -> bytes | None:
    """The frame of a site message, or None for a batch."""
    return message[1:] if message[:1] == SITE else None


def parse_batch(message: bytes) -> tuple[dict[str, Any] | None, Groups, list[int]]:
    msg = decode(message)
    return msg["n"], msg["groups"], msg["recount"]


# -- feed:…: updates -----------------------------------------------------------------------------------

def feed_message(thread_id: int, frame: bytes) -> bytes:
    return b"%d %s" % (thread_id, frame)


def parse_feed(message: bytes) -> tuple[int, bytes]:
    """(thread id, feed frame); ValueError if it is not a feed message."""
    space = message.index(b" ")
    return int(message[:space]), message[space + 1:]


# -- presence: doorbells ---------------------------------------------------------------------------------

def doorbell(scopes: list[str]) -> bytes:
    return encode(scopes)


def parse_doorbell(message: bytes) -> list[Scope]:
    """The scopes a doorbell names ("site" or thread ids); what is not a scope is skipped."""
    try:
        names = decode(message)
    except Exception:
        return []
    out: list[Scope] = []
    for s in names if isinstance(names, list) else ():
        if s == "site":
            out.append("site")
            continue
        try:
            out.append(int(s))
        except (TypeError, ValueError):
            continue
    return out
