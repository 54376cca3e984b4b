"""PUBLISH on one Redis connection of our own, pipelined: what RedisBroker sends with.

redis-py spends tens of µs of Python per command (connection pool, retry wrapper, packing, parsing):
more than the rest of a reply's fan-out when one post notifies a thousand users. Here a publish is the
RESP bytes (resp.command) written at once, and the replies come back in order on the same
connection, parsed by hiredis. So every publish in flight shares the one connection, in the order
written, and a batch (publish_many) is one write and one wait.

Replies are matched to publishes by position, so a connection that fails or answers too late is
closed: every publish waiting on it fails (the API logs it; the events are stored, and the watchers'
hubs backfill them), and the next publish opens a new connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import hiredis

from .resp import Endpoint, command, open_connection

log = logging.getLogger(__name__)


class _Waiting:
    __slots__ = ("left", "future", "error")

    def __init__(self, left: int, future: asyncio.Future[None]) -> None:
        self.left, self.future = left, future
        self.error: Exception | None = None  # the first error Redis answered for one of its publishes


class Publisher:
    def __init__(self, ep: Endpoint, timeout: float) -> None:
        self.ep = ep
        self.timeout = timeout
        self.writer: asyncio.StreamWriter | None = None
        self.waiting: deque[_Waiting] = deque()
        self.opening: asyncio.Lock | None = None
        self.reader_task: asyncio.Task[None] | None = None

    async def publish(self, items: list[tuple[str, bytes]]) -> None:
        """PUBLISH each (channel, message), in order, in one write; raises if any failed."""
        if not items:
            return
        async with asyncio.timeout(self.timeout):
            writer = await self._connection()
            waiting = _Waiting(len(items), asyncio.get_running_loop().create_future())
            self.waiting.append(waiting)
            writer.write(b"".join(command("PUBLISH", channel, message) for channel, message in items))
            try:
                await asyncio.shield(waiting.future)
            except TimeoutError:
                self._drop(writer, ConnectionError("redis did not answer the publish in time"))
                raise

    async def _connection(self) -> asyncio.StreamWriter:
        writer = self.writer
        if writer is not None and not writer.is_closing():
            return writer
        if self.opening is None:
            self.opening = asyncio.Lock()
        async with self.opening:
            if self.writer is None or self.writer.is_closing():
                reader, self.writer = await open_connection(self.ep)
                self.reader_task = asyncio.get_running_loop().create_task(
                    self._read(reader, self.writer), name="redis-publisher")
            return self.writer

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = hiredis.Reader()
        error: BaseException = ConnectionError("redis closed the publishing connection")
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    break
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    self._answer(reply)
        except (OSError, hiredis.ProtocolError) as exc:
            error = exc
        finally:
            self._drop(writer, error)

    def _answer(self, reply: Any) -> None:
        if not self.waiting:
            return
        head = self.waiting[0]
        if isinstance(reply, Exception) and head.error is None:
            head.error = reply
        head.left -= 1
        if head.left == 0:
            self.waiting.popleft()
            if not head.future.done():
                if head.error is not None:
                    head.future.set_exception(ConnectionError(f"redis refused a publish: {head.error}"))
                else:
                    head.future.set_result(None)

    def _drop(self, writer: asyncio.StreamWriter, error: BaseException) -> None:
        """Close a connection whose replies can no longer be matched, failing everything waiting on it."""
        if self.writer is writer:
            self.writer = None
            waiting, self.waiting = self.waiting, deque()
            for w in waiting:
                if not w.future.done():
                    w.future.set_exception(error)
                    w.future.exception()  # retrieved here: a waiter that timed out is gone
        writer.close()

    async def close(self) -> None:
        if self.writer is not None:
            self._drop(self.writer, ConnectionError("publisher closed"))
        if self.reader_task is not None:
            self.reader_task.cancel()
