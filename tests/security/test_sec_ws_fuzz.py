"""Fuzzing /ws: thousands of random and mutated frames never crash the server or starve a well-behaved client."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from support.api import Api, new_thread
from support.databases import make_moderator

FRAMES = 3000
SERVER_TYPES = {"hello", "presence", "event", "subscribed", "unsubscribed", "typing", "pong", "error"}
ERROR_CODES = {"bad_json", "invalid", "unknown_type", "bad_frame", "forbidden", "not_subscribed", "not_found",
               "too_many_subscriptions", "unavailable"}
WEIRD_NUMBERS = ["0", "-0", "-1", "1.5", "1e3", "1e400", "-1e400", "9223372036854775807", "9223372036854775808",
                 "18446744073709551616", "9" * 400, "-" + "9" * 400, "0.0000001", "1E-400", "true", "null", '"1"',
                 "[]", "{}", '"\\u0031"']
WEIRD_STRINGS = ['"\\ud800"', '"\\udfff"', '"\\ud800\\udc00"', '"\\udc00\\ud800"', '"\\u0000"', '"\\uffff"',
                 '"\\ufeff"', '"\u202e\u0041"', '"\U0010ffff"', '"\u0301"', '"\U0001F600"', '""',
                 '"' + "x" * 8000 + '"',
                 '"<script>alert(1)</script>"', '"\\\\"', '"\\/"', '"\u00e9\u0065\u0301"', '"\\uD834\\uDD1E"']
BAD_JSON = ["", " ", "{", "}", "[", "{]", '{"type":', '{"type":"ping"', '{"type":"ping",}', "{'type':'ping'}",
            "NaN", "Infinity", "-Infinity", "undefined", '{"type":"ping","id":NaN}', '{"type":"ping" "id":1}',
            "\x00", "\ufeff{}", '{"type":"ping"}garbage', '{"a":1}{"b":2}', '"unterminated', "01", "--1", "1.",
            ".5", "+1", "0x10", "[1,]", '{"type":"ping","id":"\\x41"}', '{"type":"ping","id":"\\u12"}']
TYPES = ['"subscribe"', '"unsubscribe"', '"typing"', '"ping"', '"SUBSCRIBE"', '"event"', '"hello"', '""', "1",
         "null", "[]", '"subscribe\\u0000"', '"ping "', '"\\u0070ing"']


def deep(rng: random.Random) -> str:
    depth = rng.choice([64, 500, 2000, 7000])
    if rng.random() < 0.5:
        inner = "[" * depth + "]" * depth
    else:
        inner = '{"a":' * min(depth, 2500) + "1" + "}" * min(depth, 2500)
    return inner if rng.random() < 0.3 else '{"type":"ping","id":' + inner + '}'


def structured(rng: random.Random, thread_id: int) -> str:
    """A frame shaped like a client frame, with any field swapped for something odd."""
    fields: dict[str, str] = {"type": rng.choice(TYPES)}
    for key in rng.sample(["thread", "since", "id", "extra", "type"], rng.randint(0, 3)):
        fields[key] = rng.choice([rng.choice(WEIRD_NUMBERS), rng.choice(WEIRD_STRINGS), str(thread_id),
                                  str(rng.randint(-5, 10**6)), str(rng.randint(1, 200))])
    body = ",".join(f'"{k}":{v}' for k, v in fields.items())
    if rng.random() < 0.1:  # duplicate keys
        body += ',"type":' + rng.choice(TYPES)
    return "{" + body + "}"


def mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        i = rng.randrange(len(chars) + 1)
        if op == 0 and chars:
            del chars[min(i, len(chars) - 1)]
        elif op == 1:
            chars.insert(i, rng.choice('{}[]",:\\ 0-9eE.\u0000\u00ff\u2028\U0001F4A9'))
        elif op == 2 and chars:
            chars[min(i, len(chars) - 1)] = chr(rng.choice([rng.randint(0, 0x7F), rng.randint(0x80, 0xD7FF),
                                                             rng.randint(0xE000, 0x10FFFF)]))
        else:
            chars = chars[:i]
    return "".join(chars)


def frames(rng: random.Random, thread_id: int, n: int) -> list[str | bytes]:
    valid = [f'{{"type":"subscribe","thread":{thread_id}}}', f'{{"type":"unsubscribe","thread":{thread_id}}}',
             f'{{"type":"subscribe","thread":{thread_id},"since":0}}', '{"type":"ping","id":[1,{"a":null}]}',
             f'{{"type":"typing","thread":{thread_id}}}']
    out: list[str | bytes] = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.15:
            out.append(rng.choice(BAD_JSON))
        elif kind < 0.5:
            out.append(structured(rng, thread_id))
        elif kind < 0.75:
            out.append(mutate(rng, rng.choice(valid)))
        elif kind < 0.8:
            out.append(deep(rng))
        elif kind < 0.88:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 64))))
        elif kind < 0.93:
            out.append("".join(chr(rng.choice([rng.randint(0x20, 0x7E), rng.randint(0xA0, 0xD7FF),
                                               rng.randint(0xE000, 0x10FFFF)])) for _ in range(rng.randint(1, 200))))
        else:
            out.append(rng.choice(valid))
    return out


async def read_until_pong(ws: ClientConnection, token: str, seen: list[dict[str, Any]]) -> None:
    while True:
        raw = await asyncio.wait_for(ws.recv(), 20)
        assert isinstance(raw, str), "the server sends text frames only"
        msg = json.loads(raw)
        assert isinstance(msg, dict) and msg.get("type") in SERVER_TYPES, raw[:300]
        if msg["type"] == "error":
            assert msg["code"] in ERROR_CODES and isinstance(msg["message"], str), raw[:300]
        seen.append(msg)
        if msg == {"type": "pong", "id": token}:
            return


async def wait_for_event(ws: ClientConnection, post_id: int) -> None:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if msg["type"] == "event" and msg["name"] == "post.created" and msg["data"]["id"] == post_id:
            return


@pytest.mark.slow
async def test_ws_fuzz_answers_every_frame_and_stays_healthy(spawn: Any, pg_url: str) -> None:
    """3,000 random/mutated frames (bad JSON, odd types, huge numbers, lone surrogates, binary, deep nesting)
    get only contract frames back on an open socket; a watcher of the same thread keeps getting replies."""
    srv = spawn(PARLEY_RATE_LIMITS="off")
    author = Api(srv.url).sign_up()
    replier = Api(srv.url).sign_up()
    slug = "fuzz-" + author.user["username"][1:]  # type: ignore[index]
    make_moderator(pg_url, author.user["username"])  # type: ignore[index]
    assert author.post("/api/categories", json={"slug": slug, "name": "Fuzz"}).status_code == 201
    thread_id = new_thread(author, slug)["thread"]["id"]
    rng = random.Random(20261128)
    sent = answered = 0
    seen: list[dict[str, Any]] = []
    cookie = {"Cookie": f"parley_session={replier.session_cookie}"}
    async with connect(srv.ws_url) as watcher, connect(srv.ws_url, additional_headers=cookie) as fuzzer:
        await watcher.send(json.dumps({"type": "subscribe", "thread": thread_id}))
        batch = frames(rng, thread_id, FRAMES)
        for start in range(0, len(batch), 100):
            for frame in batch[start:start + 100]:
                await fuzzer.send(frame)
                sent += 1
            token = f"sync-{start}"
            await fuzzer.send(json.dumps({"type": "ping", "id": token}))
            before = len(seen)
            await read_until_pong(fuzzer, token, seen)
            answered += len(seen) - before
            # The well-behaved watcher hears a reply posted meanwhile.
            r = replier.post(f"/api/threads/{thread_id}/posts", json={"body": f"reply after {sent} frames"})
            assert r.status_code == 201, r.text
            await wait_for_event(watcher, r.json()["post"]["id"])
        assert fuzzer.close_code is None
    errors = [m for m in seen if m["type"] == "error"]
    codes = {m["code"] for m in errors}
    assert {"bad_json", "invalid", "unknown_type", "bad_frame"} <= codes, codes
    assert answered >= sent * 0.9, (answered, sent)
    assert httpx.get(srv.url + "/healthz").status_code == 200
    assert "Traceback" not in srv.output() and "Exception in ASGI application" not in srv.output()
    print(f"ws fuzz: {sent} frames sent, {len(errors)} error frames, codes {sorted(codes)}")


@pytest.mark.parametrize("frame", [
    '{"type":"ping","id":' + "[" * 5000 + "]" * 5000 + "}",
    '{"type":"ping","id":' + '{"a":' * 2000 + "1" + "}" * 2000 + "}",
    "[" * 8000 + "]" * 8000,
])
async def test_ws_deeply_nested_frame_is_an_error_frame(server: Any, frame: str) -> None:
    """A frame under 16 KiB nested thousands deep gets a bad_json error frame; the socket stays open."""
    async with connect(server.ws_url) as ws:
        await ws.recv()
        await ws.send(frame)
        await ws.send('{"type":"ping","id":"after"}')
        seen: list[dict[str, Any]] = []
        await read_until_pong(ws, "after", seen)
        assert [m["code"] for m in seen if m["type"] == "error"] in (["bad_json"], ["invalid"])
    assert "RecursionError" not in server.output()


async def test_ws_frame_over_16_kib_closes_1009(server: Any) -> None:
    """A client frame over 16 KiB closes the socket with 1009; the next socket works."""
    async with connect(server.ws_url, max_size=None) as ws:
        await ws.recv()
        await ws.send('{"type":"ping","id":"' + "x" * (16 * 1024) + '"}')
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1009
    async with connect(server.ws_url) as ws:
        await ws.recv()
        await ws.send('{"type":"ping","id":1}')
        seen: list[dict[str, Any]] = []
        await read_until_pong(ws, 1, seen)  # type: ignore[arg-type]


async def test_ws_invalid_utf8_text_frame_closes_1007(server: Any) -> None:
    """A text frame that is not UTF-8 is a protocol error: closed with 1007, never a crash."""
    async with connect(server.ws_url) as ws:
        await ws.recv()
        # websockets refuses to send bad UTF-8 as text; write the masked frame by hand.
        payload = b'{"type":"ping","id":"\xff\xfe"}'
        mask = b"\x01\x02\x03\x04"
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        ws.transport.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1007
    assert httpx.get(server.url + "/healthz").status_code == 200
