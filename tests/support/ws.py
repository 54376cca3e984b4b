"""Websocket clients for the live tests: a Watcher collects every frame in the background."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
import websockets
from websockets.http11 import Request
from websockets.streams import StreamReader

from server import wire


def undeclared(frame: dict[str, Any]) -> str | None:
    """Why `frame` is none of the frames server/wire.py declares, or None when it is one of them."""
    kind = frame.get("type")
    candidates = [s for b, ss in wire.FRAMES.items() for s in (ss if isinstance(ss, tuple) else (ss,))
                  if s.__struct_config__.tag == kind]
    errors = []
    for struct in candidates:
        try:
            msgspec.convert(frame, struct, strict=True)
            return None
        except msgspec.ValidationError as exc:
            errors.append(f"{struct.__name__}: {exc}")
    return f"{json.dumps(frame)[:300]}: " + ("; ".join(errors) or "no frame of this type is declared")


class Watcher:
    """A /ws client that records frames; events are kept per thread in arrival order."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.undeclared: list[str] = []  # frames off server/wire.py's declarations: wait_for fails on the first
        self.events: dict[int, list[dict[str, Any]]] = {}
        self.closed: int | None = None
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, ws_url: str, cookie: str | None = None, origin: str | None = None,
                   compress: bool = False, headers: dict[str, str] | None = None) -> Watcher:
        """Connect and wait for `hello`; `compress` offers permessage-deflate (the server uses it only when
        PARLEY_WS_COMPRESSION is on); `headers` are added to the handshake (an API key's Authorization)."""
        headers = dict(headers or {})
        if cookie:
            headers["Cookie"] = f"parley_session={cookie}"
        if origin:
            headers["Origin"] = origin
        ws = await websockets.connect(ws_url, additional_headers=headers, max_size=None,
                                      compression="deflate" if compress else None,
                                      open_timeout=20)
        w = cls(ws)
        await w.wait_for(lambda f: f["type"] == "hello")
        return w

    def brief(self, n: int = 10) -> list[str]:
        """The last n frames, each cut to 200 characters (a failure message stays readable)."""
        return [json.dumps(f)[:200] for f in self.frames[-n:]]

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                if (why := undeclared(frame)) is not None:
                    self.undeclared.append(why)
                self.frames.append(frame)
                if frame.get("type") == "event":
                    self.events.setdefault(frame["thread"], []).append(frame)
                self.changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed = self.ws.close_code or 1006
            self.changed.set()

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def wait_for(self, pred: Any, timeout: float = 10, start: int = 0) -> dict[str, Any]:
        """The first frame (from index `start`) matching pred, waiting for it."""
        deadline = asyncio.get_running_loop().time() + timeout
        i = start
        while True:
            assert not self.undeclared, f"the server sent a frame it does not declare: {self.undeclared[0]}"
            while i < len(self.frames):
                if pred(self.frames[i]):
                    return self.frames[i]
                i += 1
            if self.closed is not None:
                raise AssertionError(f"socket closed ({self.closed}) before the frame arrived; "
                                     f"got {len(self.frames)} frames, the last: {self.brief()}")
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"timed out; {len(self.frames)} frames so far, the last: {self.brief()}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                pass

    async def subscribe(self, thread: int, since: int | None = None) -> dict[str, Any]:
        start = len(self.frames)
        msg: dict[str, Any] = {"type": "subscribe", "thread": thread}
        if since is not None:
            msg["since"] = since
        await self.send(msg)
        return await self.wait_for(lambda f: f["type"] in ("subscribed", "error") and f.get("thread") == thread,
                                   start=start, timeout=20)

    async def wait_seq(self, thread: int, seq: int, timeout: float = 20) -> list[dict[str, Any]]:
        """Wait until an event with this seq (or later) arrived for the thread; return the thread's events."""
        await self.wait_for(lambda f: f["type"] == "event" and f["thread"] == thread and f["seq"] >= seq,
                            timeout=timeout)
        return self.events[thread]

    def seqs(self, thread: int) -> list[int]:
        return [e["seq"] for e in self.events.get(thread, [])]

    async def close(self) -> None:
        await self.ws.close()
        self.task.cancel()


def library_request(method: bytes, url: bytes, headers: list[tuple[bytes, bytes]]) -> Request:
    """What websockets' own parser makes of a handshake request as uvicorn writes it out (its
    handle_websocket_upgrade): the bytes, then websockets.http11.Request.parse over them."""
    reader = StreamReader()
    reader.feed_data(b"".join([method, b" ", url, b" HTTP/1.1\r\n", *(n + b": " + v + b"\r\n" for n, v in headers),
                               b"\r\n"]))
    parser = Request.parse(reader.read_line)
    try:
        next(parser)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise AssertionError("the request was not complete")
