"""The wire contract in code: JSON encoding, times, and the websocket frames.

Every frame the server sends is built here, and declared here once as a msgspec Struct (`FRAMES`, below):
tests/unit/test_frames.py decodes what each builder makes into its Struct, strictly, and encodes it back to
the same bytes, as tests/unit/test_shapes.py does for the HTTP answers. The builders themselves encode
dicts they are handed, ready-made by the store, so a frame costs no conversion. Event frames are built
once, by the writer, as bytes with a fixed key order (type, thread, seq, name, data), so every process
can read the seq without parsing the JSON and forwards the same bytes to every socket (ARCHITECTURE rule 3).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from . import shapes

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


def error(code: str, message: str, *, thread: int | None = None, feed: str | None = None) -> bytes:
    """An error frame; it names the thread or the feed the refused frame was about, when it was about one."""
    msg: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if thread is not None:
        msg["thread"] = thread
    if feed is not None:
        msg["feed"] = feed
    return encode(msg)


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


def reputation_frame(reputation: int, event: dict[str, Any]) -> bytes:
    """{"type":"reputation","reputation":R,"event":{delta,reason,post_id,created_at}}: to the user's own sockets
    when their reputation changed (the new sum, and the ledger row that changed it)."""
    return encode({"type": "reputation", "reputation": reputation, "event": event})


def silenced_frame(user: dict[str, Any] | None, silenced: bool) -> bytes:
    """{"type":"silenced","user":U,"silenced":B}: to every socket (guests too) when an account is silenced or its
    silence lifted: pages hide (or reread) that account's posts."""
    return encode({"type": "silenced", "user": user, "silenced": silenced})


def draft(item: dict[str, Any]) -> bytes:
    """{"type":"draft","draft":Draft}: to every socket of the draft's writer ("body": null when it was deleted:
    by DELETE, or by the post that sent it)."""
    return encode({"type": "draft", "draft": item})


def feed_subscribed(feed: str) -> bytes:
    return encode({"type": "subscribed", "feed": feed})


def feed_unsubscribed(feed: str) -> bytes:
    return encode({"type": "unsubscribed", "feed": feed})


def feed(feed_name: str, thread: dict[str, Any]) -> bytes:
    """{"type":"feed","feed":FEED,"thread":Thread} (with "deleted": true when the thread was deleted)."""
    return encode({"type": "feed", "feed": feed_name, "thread": thread})


# --- The frames, declared (CONTRACT "Live updates"). `type` is each Struct's tag; optional keys are left out
# of a frame when they hold their default (omit_defaults), as the builders leave them out.
class _Frame(msgspec.Struct, tag_field="type", omit_defaults=True, forbid_unknown_fields=True):
    pass


class Hello(_Frame, tag="hello"):
    user: shapes.UserBrief | None
    heartbeat: float


class Subscribed(_Frame, tag="subscribed"):
    thread: shapes.Id
    seq: shapes.Seq
    reset: bool = False


class Unsubscribed(_Frame, tag="unsubscribed"):
    thread: shapes.Id


class FeedSubscribed(_Frame, tag="subscribed"):
    feed: str


class FeedUnsubscribed(_Frame, tag="unsubscribed"):
    feed: str


class Event(_Frame, tag="event"):
    thread: shapes.Id
    seq: shapes.Seq
    name: Literal["post.created", "post.edited", "post.deleted", "vote.changed", "thread.updated"]
    data: dict[str, Any]
    created_at: shapes.Time | None = None  # only in GET /api/threads/{id}/events


class Pong(_Frame, tag="pong"):
    id: Any


class Error(_Frame, tag="error"):
    code: str
    message: str
    thread: shapes.Id | None = None
    feed: str | None = None


class Typing(_Frame, tag="typing"):
    thread: shapes.Id
    user: shapes.UserBrief
    parent: shapes.Id | None = None


class SitePresence(_Frame, tag="presence"):
    scope: Literal["site"]
    users: list[shapes.UserBrief]
    count: shapes.Count
    guests: shapes.Count


class ThreadPresence(_Frame, tag="presence"):
    scope: Literal["thread"]
    thread: shapes.Id
    users: list[shapes.UserBrief]
    count: shapes.Count
    guests: shapes.Count


class Flags(_Frame, tag="flags"):
    open: shapes.Count


class NotificationFrame(_Frame, tag="notification"):
    notification: shapes.Notification
    unread: shapes.Count


class Notifications(_Frame, tag="notifications"):
    unread: shapes.Count


class MyVote(_Frame, tag="my_vote"):
    thread: shapes.Id
    post_id: shapes.Id
    score: int
    my_vote: shapes.Vote


class Reputation(_Frame, tag="reputation"):
    reputation: shapes.Reputation
    event: shapes.ReputationEvent


class Silenced(_Frame, tag="silenced"):
    user: shapes.UserBrief
    silenced: bool


class DraftChange(shapes.Draft):
    body: str | None  # type: ignore[assignment]  # null: deleted


class DraftFrame(_Frame, tag="draft"):
    draft: DraftChange


class FeedThread(shapes.Thread, omit_defaults=True):
    deleted: bool = False


class Feed(_Frame, tag="feed"):
    feed: str
    thread: FeedThread


# Each builder and the Struct its frames are.
FRAMES = {hello: Hello, subscribed: Subscribed, unsubscribed: Unsubscribed, feed_subscribed: FeedSubscribed,
          feed_unsubscribed: FeedUnsubscribed, event_frame: Event, pong: Pong, error: Error, typing: Typing,
          presence: (SitePresence, ThreadPresence), flag_count: Flags, notification: NotificationFrame,
          notifications: Notifications, feed: Feed, my_vote: MyVote, draft: DraftFrame,
          reputation_frame: Reputation, silenced_frame: Silenced}
