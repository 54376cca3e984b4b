"""Channel names and message formats (server/live/channels.py): each built and read in that one module, and
byte for byte what earlier versions put on the broker, so two versions' processes interoperate."""

from __future__ import annotations

import re
from pathlib import Path

from server.live import channels
from server.live.channels import Channels

SERVER = Path(__file__).resolve().parents[2] / "server"


def test_names_are_under_the_namespace_and_read_back():
    """Every name lives under the forum's namespace; thread_of/user_of/is_feed recognise only their own kind."""
    ch = Channels("parley:abc")
    assert (ch.thread(7), ch.user(42), ch.users, ch.feed(None), ch.feed(3), ch.presence) == (
        "parley:abc:thread:7", "parley:abc:user:42", "parley:abc:users", "parley:abc:feed:all",
        "parley:abc:feed:category:3", "parley:abc:presence")
    assert ch.thread_of(ch.thread(7)) == 7 and ch.user_of(ch.user(42)) == 42
    for other in (ch.user(7), ch.users, ch.presence, ch.feed(None), "parley:other:thread:7", ch.thread(7) + "x"):
        assert ch.thread_of(other) is None, other
    assert ch.user_of(ch.users) is None and ch.user_of(ch.thread(7)) is None
    assert ch.is_feed(ch.feed(3)) and ch.is_feed(ch.feed(None)) and not ch.is_feed(ch.thread(3))


def test_message_formats_are_unchanged_and_round_trip():
    """Typing, control, batch, feed and doorbell messages have the documented bytes and parse back."""
    frame = b'{"type":"typing","thread":5}'
    assert channels.typing_message("p1", 9, frame) == b"Tp1:9 " + frame
    assert channels.typing_parts(b"Tp1:9 " + frame) == ("p1", 9, frame)
    assert channels.is_typing(b"T") and not channels.is_typing(b'{"type":"event"')
    control = channels.end_sessions_message("k", None)
    assert control == b'!{"action":"end_sessions","only":"k","before":null}'
    assert channels.parse_control(control) == {"action": "end_sessions", "only": "k", "before": None}
    assert channels.parse_control(b'{"type":"notifications"}') is None
    batch = channels.batch_message({"post_id": 1}, [["reply", "t", [2, 10]]], [3])
    assert batch == b'{"n":{"post_id":1},"groups":[["reply","t",[2,10]]],"recount":[3]}'
    assert channels.parse_batch(batch) == ({"post_id": 1}, [["reply", "t", [2, 10]]], [3])
    assert channels.feed_message(12, b'{"type":"feed"}') == b'12 {"type":"feed"}'
    assert channels.parse_feed(b'12 {"type":"feed"}') == (12, b'{"type":"feed"}')
    assert channels.doorbell(["site", "12"]) == b'["site","12"]'
    assert channels.parse_doorbell(b'["site","12","x",null]') == ["site", 12]
    assert channels.parse_doorbell(b"not json") == []


def test_no_other_module_spells_a_channel_name():
    """Only live/channels.py builds a channel name from the namespace (`{namespace}:thread:` and the like)."""
    spelled = re.compile(r"\{[\w.]*(namespace|ns)\}:(thread|users?|feed|presence)\b")
    offenders = [str(p.relative_to(SERVER)) for p in SERVER.rglob("*.py")
                 if p.name != "channels.py" and spelled.search(p.read_text())]
    assert offenders == []
