"""An aiohttp application served on loopback from a thread of its own, for the real peers the tests run beside the
server under test (the webhook receiver, the OpenID Connect provider): sync tests and in-process apps on other
event loops can reach it, and stop() ends it cleanly."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class ThreadedServer:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.runner: web.AppRunner | None = None

    def serve(self, app: web.Application) -> int:
        """Start the thread and serve `app` on 127.0.0.1 at a free port; that port."""
        self.thread.start()

        async def run() -> int:
            self.runner = web.AppRunner(app, access_log=None)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
