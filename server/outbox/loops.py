"""The loops both outbox workers run (mail: sender.py, webhooks: webhooks.py).

Each worker claims due rows from its table (FOR UPDATE SKIP LOCKED plus a lease) in a few concurrent loops, sleeps
when a claim finds nothing until a write in this process wakes it or its poll interval passes (other processes'
rows are found then), and keeps a gauge of its oldest waiting row for operators. The shapes are the same; only what
a round does differs, so they live here once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import Gauge

log = logging.getLogger(__name__)


async def claim_loop(name: str, round_: Callable[[], Awaitable[int]], woken: asyncio.Event, poll: float, *,
                     stagger: float = 0.0, idle: Callable[[], Awaitable[None]] | None = None) -> None:
    """Run round_() forever; after a round that claimed nothing, call idle() and sleep until woken or about poll
    seconds (jittered, so the processes' polls spread). An error (the database away, most likely) is logged and
    the loop goes on after poll seconds: the rows wait in their table."""
    await asyncio.sleep(random.random() * stagger)
    while True:
        try:
            if await round_() == 0:
                if idle is not None:
                    await idle()
                woken.clear()
                try:
                    await asyncio.wait_for(woken.wait(), poll * random.uniform(0.8, 1.2))
                except TimeoutError:
                    pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: %s", name, exc)
            await asyncio.sleep(poll)


async def gauge_loop(gauge: Gauge, measure: Callable[[], Awaitable[float]], every: float) -> None:
    """Set gauge to measure() every `every` seconds; a failed read leaves the last value (the loops log the cause)."""
    while True:
        try:
            gauge.set(await measure())
        except asyncio.CancelledError:
            raise
        except Exception:
            pass
        await asyncio.sleep(every)


async def stop_all(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel the loops and wait until each has ended."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
