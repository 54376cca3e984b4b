"""A server-sent-events client for the live tests (GET /api/stream): an SseWatcher records every message like
support.ws.Watcher records frames (same wait_for/seqs), plus each message's `id` and named events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from .ws import undeclared


class SseWatcher:
    """One stream, read in the background; `frames` are the messages' data, `ids` the id of each (or None)."""

    def __init__(self, client: httpx.AsyncClient, response: httpx.Response) -> None:
        self.client = client
        self.response = response
        self.frames: list[dict[str, Any]] = []
        self.ids: list[str | None] = []
        self.named: list[tuple[str, str]] = []  # (event name, data) of messages with an `event:` field
        self.comments = 0
        self.undeclared: list[str] = []
        self.events: dict[int, list[dict[str, Any]]] = {}
        self.ended = False
        self.clean = False  # the response finished as HTTP says (not cut off)
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, base_url: str, thread: int | None = None, *, since: int | None = None, feed: str | None = None,
                   last_event_id: str | None = None, cookie: str | None = None,
                   headers: dict[str, str] | None = None) -> SseWatcher:
        """Open the stream and wait for its `hello` (a non-200 answer raises with its body)."""
        params: dict[str, Any] = {}
        if thread is not None:
            params["thread"] = thread
        if since is not None:
            params["since"] = since
        if feed is not None:
            params["feed"] = feed
        hdrs = dict(headers or {})
        if cookie:
            hdrs["Cookie"] = f"parley_session={cookie}"
        if last_event_id is not None:
            hdrs["Last-Event-ID"] = last_event_id
        client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30, read=None))
        request = client.build_request("GET", "/api/stream", params=params, headers=hdrs)
        response = await client.send(request, stream=True)
        if response.status_code != 200:
            body = await response.aread()
            await client.aclose()
            raise StreamRefused(response.status_code, body)
        assert response.headers["content-type"].startswith("text/event-stream"), response.headers
        w = cls(client, response)
        await w.wait_for(lambda f: f["type"] == "hello")
        return w

    async def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            async for line in self.response.aiter_lines():
                if line == "":
                    self._dispatch(fields)
                    fields = {}
                elif line.startswith(":"):
                    self.comments += 1
                else:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    fields[name] = fields[name] + "\n" + value if name == "data" and name in fields else value
            self.clean = True
        except (httpx.HTTPError, asyncio.CancelledError):
            pass
        finally:
            self.ended = True
            self.changed.set()

    def _dispatch(self, fields: dict[str, str]) -> None:
        if "data" not in fields:
            return
        if "event" in fields:
            self.named.append((fields["event"], fields["data"]))
        else:
            frame = json.loads(fields["data"])
            if (why := undeclared(frame)) is not None:
                self.undeclared.append(why)
            self.frames.append(frame)
            self.ids.append(fields.get("id"))
            if frame.get("type") == "event":
                self.events.setdefault(frame["thread"], []).append(frame)
        self.changed.set()

    async def wait_for(self, pred: Any, timeout: float = 10, start: int = 0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        i = start
        while True:
            assert not self.undeclared, f"the server sent a frame it does not declare: {self.undeclared[0]}"
            while i < len(self.frames):
                if pred(self.frames[i]):
                    return self.frames[i]
                i += 1
            if self.ended:
                raise AssertionError(f"stream ended before the frame arrived; the last: {self.frames[-5:]}")
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"timed out; {len(self.frames)} frames so far, the last: {self.frames[-5:]}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                pass

    async def wait_seq(self, thread: int, seq: int, timeout: float = 20) -> list[dict[str, Any]]:
        await self.wait_for(lambda f: f["type"] == "event" and f["thread"] == thread and f["seq"] >= seq,
                            timeout=timeout)
        return self.events[thread]

    async def wait_end(self, timeout: float = 10) -> None:
        await asyncio.wait_for(self.task, timeout)

    def seqs(self, thread: int) -> list[int]:
        return [e["seq"] for e in self.events.get(thread, [])]

    async def close(self) -> None:
        self.task.cancel()
        await self.response.aclose()
        await self.client.aclose()


class StreamRefused(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"{status}: {body[:300]!r}")
        self.status = status
        self.body = body
