"""A broker listener for the broker tests: records every message and reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Recorder:
    """The `listener` a Broker calls: messages in arrival order, reconnects counted."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.reconnects = 0
        self.got = asyncio.Event()

    def on_message(self, channel: str, message: bytes) -> None:
        self.messages.append((channel, message))
        self.got.set()

    def on_reconnect(self) -> None:
        self.reconnects += 1

    def on(self, channel: str) -> list[bytes]:
        """The messages of one channel, in order."""
        return [m for c, m in self.messages if c == channel]

    async def wait(self, until: int | Callable[[], bool], timeout: float = 10) -> None:
        """Until `until` messages have arrived (an int) or the predicate holds; TimeoutError otherwise."""
        done = (lambda: len(self.messages) >= until) if isinstance(until, int) else until
        async with asyncio.timeout(timeout):
            while not done():
                self.got.clear()
                await self.got.wait()
