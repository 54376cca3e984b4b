"""The image workers (server/uploads/workers.py): real worker processes, shared fairly between users, and
replaced when one dies."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from server.errors import Unavailable
from server.uploads.workers import ImageWorkers


def _sleep(seconds: float, tag: str) -> str:
    time.sleep(seconds)
    return tag


def _die() -> None:
    os._exit(3)


async def test_a_dead_worker_is_503_and_the_next_job_runs() -> None:
    """A worker that dies (killed for its memory, a crash in a decoder) answers 503; the pool is replaced and the
    next job is served."""
    workers = ImageWorkers(1)
    try:
        with pytest.raises(Unavailable):
            await workers.run("ada", _die)
        assert await workers.run("ada", pow, 2, 10) == 1024
    finally:
        workers.close()


async def test_one_users_queue_does_not_hold_back_another_user() -> None:
    """With one worker, a user who queued six slow jobs first waits behind another user's single job once their
    first job has run: the other's job is served second, not seventh."""
    workers = ImageWorkers(1)
    order: list[str] = []
    try:
        await workers.run("warm", pow, 1, 1)  # the worker process started

        async def job(user: str, tag: str) -> None:
            order.append(await workers.run(user, _sleep, 0.3, tag))

        flood = [asyncio.create_task(job("flooder", f"f{i}")) for i in range(6)]
        await asyncio.sleep(0.1)
        other = asyncio.create_task(job("other", "o"))
        await asyncio.gather(*flood, other)
    finally:
        workers.close()
    assert order.index("o") <= 2, order
