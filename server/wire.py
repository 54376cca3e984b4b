"""The wire contract in code: JSON encoding, times, and the websocket frames.

Every frame the server sends is built here. Event frames are built once, by
the writer, as bytes with a fixed key order (type, thread, seq, name, data),
so every process can read the seq without parsing the JSON and forwards the
same bytes to every socket (ARCHITECTURE rule 3).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
encode = _encoder.encode
decode = msgspec.json.decode


# Times a client sends (a suspension's `until`; the times inside list cursors): the year as written is
# 2000–2999, whatever the offset, so the instant lies between 1999-12-31T00:01Z and 3000-01-01T23:59Z, which
# PostgreSQL, asyncpg and Python all hold exactly (asyncpg stores datetime.max as 'infinity', and an offset past
# year 9999 overflows). A JSON Schema pattern states it exactly (docs/api.md "Times").
TIME_YEARS = (2000, 2999)
TIME_PATTERN = "^2[0-9]{3}-"


def time_in_range(ts: datetime) -> bool:
    """Whether a client's time is one Parley accepts: aware, its year as written TIME_YEARS[0]–TIME_YEARS[1]."""
    return ts.tzinfo is not None and TIME_YEARS[0] <= ts.year <= TIME_YEARS[1]


def iso(ts: datetime | None) -> str | None:
    """ISO 8601 in UTC with microseconds and a Z."""
    if ts is None:
        return None
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_frame(thread_id: int, seq: int, name: str, data_json: bytes | str) -> bytes:
    """{"type":"event","thread":T,"seq":N,"name":NAME,"data":DATA} from already-encoded data."""
    if isinstance(data_json, str):
        data_json = data_json.encode()
    return b'{"type":"event","thread":%d,"seq":%d,"name":%s,"data":%s}' % (
        thread_id, seq, encode(name), data_json)


_SEQ = b'"seq":'


def frame_seq(frame: bytes) -> int:
    """The seq of an event frame built by event_frame(), read without parsing the JSON."""
    start = frame.index(_SEQ) + len(_SEQ)
    return int(frame[start:frame.index(b",", start)])


def hello(user: dict[str, Any] | None, heartbeat: float) -> bytes:
    return encode({"type": "hello", "user": user, "heartbeat": heartbeat})


def subscribed(thread_id: int, seq: int, reset: bool = False) -> bytes:
    msg: dict[str, Any] = {"type": "subscribed", "thread": thread_id, "seq": seq}
    if reset:
        msg["reset"] = True
    return encode(msg)


def unsubscribed(thread_id: int) -> bytes:
    return encode({"type": "unsubscribed", "thread": thread_id})


def pong(ping_id: Any) -> bytes:
    return encode({"type": "pong", "id": ping_id})


def error(code: str, message: str, **extra: Any) -> bytes:
    return encode({"type": "error", "code": code, "message": message, **extra})


def typing(thread_id: int, user: dict[str, Any], parent: int | None = None) -> bytes:
    """The relayed typing frame; `parent` (the response being commented on) only when the typist named one."""
    msg: dict[str, Any] = {"type": "typing", "thread": thread_id, "user": user}
    if parent is not None:
        msg["parent"] = parent
    return encode(msg)


def presence(users: list[dict[str, Any]], guests: int, thread_id: int | None = None,
             count: int | None = None) -> bytes:
    """A presence frame: at most 50 users (most recently arrived first) plus `count` of everyone present."""
    n = len(users) if count is None else count
    if thread_id is None:
        return encode({"type": "presence", "scope": "site", "users": users, "count": n, "guests": guests})
    return encode({"type": "presence", "scope": "thread", "thread": thread_id, "users": users, "count": n,
                   "guests": guests})


def flag_count(open_items: int) -> bytes:
    """To every moderator's sockets: the number of posts with open flags (the header's queue count)."""
    return encode({"type": "flags", "open": open_items})


def notification(item: dict[str, Any], unread: int) -> bytes:
    """{"type":"notification","notification":N,"unread":U}: sent on the recipient's user channel."""
    return encode({"type": "notification", "notification": item, "unread": unread})


def notifications(unread: int) -> bytes:
    """{"type":"notifications","unread":U}: the count changed otherwise (read elsewhere, withdrawn)."""
    return encode({"type": "notifications", "unread": unread})


def my_vote(thread_id: int, post_id: int, score: int, value: int) -> bytes:
    """{"type":"my_vote","thread":T,"post_id":P,"score":S,"my_vote":V}: to the voter's own sockets, so their
    other tabs show the pressed arrow too (thread events carry `my_vote: 0` for everyone)."""
    return encode({"type": "my_vote", "thread": thread_id, "post_id": post_id, "score": score, "my_vote": value})


def feed_subscribed(feed: str) -> bytes:
    return encode({"type": "subscribed", "feed": feed})


def feed_unsubscribed(feed: str) -> bytes:
    return encode({"type": "unsubscribed", "feed": feed})


def feed(feed_name: str, thread: dict[str, Any]) -> bytes:
    """{"type":"feed","feed":FEED,"thread":Thread} (with "deleted": true when the thread was deleted)."""
    return encode({"type": "feed", "feed": feed_name, "thread": thread})
