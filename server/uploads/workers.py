"""Image work off the event loop: a pool of worker processes, shared fairly between users.

Decoding and encoding a phone photo takes a CPU for a good part of a second, so it never runs on the event
loop (nor in a thread, which would hold the GIL for much of it). Jobs wait for a free worker in their user's
queue (render.FairQueue, the render workers' rule): one account sending many images delays someone else's
by about the jobs already running, not by its whole queue. The workers run at a lower priority (nice 10).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.process
import logging
import multiprocessing
import os
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from ..errors import Unavailable
from ..render import FairQueue

T = TypeVar("T")
log = logging.getLogger(__name__)


def _nice() -> None:
    try:
        os.nice(10)
    except OSError:
        pass


class ImageWorkers:
    def __init__(self, workers: int = 2, wait: float = 180.0) -> None:
        self.size = workers
        self.wait = wait
        self.free = workers
        self.queue = FairQueue()
        self.pool = self._new_pool()

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            self.size, mp_context=multiprocessing.get_context("forkserver"), initializer=_nice)

    async def run(self, key: Hashable, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) in a worker process, after the jobs that FairQueue puts before this user's."""
        await self._acquire(key)
        charged = self.queue.start(key)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            pool = self.pool
            try:
                return await asyncio.wrap_future(pool.submit(fn, *args))
            except concurrent.futures.process.BrokenProcessPool:
                # A worker died (killed for its memory, a crash in a decoder): a new pool for the next job.
                log.error("an image worker died; starting new ones")
                if self.pool is pool:
                    pool.shutdown(wait=False, cancel_futures=True)
                    self.pool = self._new_pool()
                raise Unavailable("The image could not be processed; try again") from None
        finally:
            self.queue.finish(key, charged, loop.time() - started)
            self._release()

    async def _acquire(self, key: Hashable) -> None:
        if self.free and not len(self.queue):
            self.free -= 1
            return
        job: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.push(key, job)
        try:
            await asyncio.wait_for(asyncio.shield(job), self.wait)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if job.done() and not job.cancelled():
                self._release()  # handed a slot just as we gave up: pass it on
            else:
                self.queue.remove(key, job)
                job.cancel()
            if isinstance(exc, TimeoutError):
                raise Unavailable("The server is busy with images; try again shortly") from None
            raise

    def _release(self) -> None:
        while (nxt := self.queue.pop()) is not None:
            _, job = nxt
            if not job.done():
                job.set_result(None)
                return
        self.free += 1

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
