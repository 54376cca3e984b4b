"""Periodic pruning of what expires: one job per deployment, however many processes serve it.

Every process runs the loop; each round takes a try-lock of its database (`store/meta.try_round_lock`), so only one
process does a round at a time and the others skip it (a try-lock: nobody ever waits). A
round deletes at most BATCH rows per table (short transactions, no long row locks on a big
backlog); when a table had more, the next round comes soon instead of in an hour.
Later features add their own entries to store/pruning.PRUNERS (the SQL lives there).
"""

from __future__ import annotations

import asyncio
import logging
import random

import asyncpg

from . import config, metrics
from .store import pruning, uploads
from .uploads.storage import Storage

log = logging.getLogger(__name__)

LOCK = 0x70610001  # a round lock of this database (store/meta.try_round_lock); DIGEST_LOCK is beside it
BATCH = 5000
EVERY = 600.0  # seconds between rounds that found little to do
SOON = 1.0  # seconds before the next round when a table had more than BATCH to prune


async def run_round(pool: asyncpg.Pool, settings: config.Settings, batch: int = BATCH) -> dict[str, int] | None:
    """One round: rows deleted per table, or None when another process holds the round."""
    done = await pruning.prune(pool, LOCK, batch, settings)
    if done is None:
        return None
    for table, n in done.items():
        if n:
            metrics.PRUNED_ROWS.labels(table).inc(n)
    if any(done.values()):
        log.info("housekeeping pruned %s", ", ".join(f"{t}={n}" for t, n in done.items() if n))
    return done


async def clean_uploads(pool: asyncpg.Pool, storage: Storage, batch: int = 500,
                        hours: float = uploads.KEEP_UNREFERENCED_HOURS) -> int | None:
    """Delete uploads that nothing has referred to for `hours` (CONTRACT "Pictures": 24 h) and the stored files
    no upload names any more; how many uploads, or None when another process holds the cleanup. The files go
    before COMMIT: if the store fails, the rows come back and the next round tries again."""
    async with pool.acquire() as conn, conn.transaction():
        done = await uploads.delete_unreferenced(conn, batch, hours)
        if done is None:
            return None
        count, keys = done
        for key in keys:
            await storage.delete(key)
    if count:
        metrics.UPLOADS_DELETED.inc(count)
        metrics.UPLOAD_FILES_DELETED.inc(len(keys))
        log.info("housekeeping deleted %d unreferenced uploads (%d files)", count, len(keys))
    return count


async def loop(pool: asyncpg.Pool, settings: config.Settings, storage: Storage | None = None) -> None:
    """Run rounds forever (a lifespan task): soon after start, then about every EVERY seconds."""
    delay = 5.0 * random.random()
    while True:
        await asyncio.sleep(delay)
        delay = EVERY * (0.5 + random.random())
        try:
            done = await run_round(pool, settings)
            if done and any(n >= BATCH for n in done.values()):
                delay = SOON
            if storage is not None and (await clean_uploads(pool, storage) or 0) >= 500:
                delay = SOON
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("housekeeping round failed: %s", exc)
