"""Publishing thread-list updates on the feed channels after COMMIT (server/live/feeds.py)."""

from __future__ import annotations

import asyncio
import logging

from .. import wire
from ..live import feeds
from ..state import AppState
from ..store import categories, threads

log = logging.getLogger(__name__)


async def publish(st: AppState, thread_ids: list[int]) -> None:
    """The current Thread of each (`deleted: true` when it was deleted) to feed:all and to the feeds of
    its category and every ancestor. Feeds are soft: a failure is logged, never an error for the writer."""
    if not thread_ids:
        return
    try:
        rows = await st.pool.fetch(threads.THREAD_SELECT + " WHERE t.id = any($1::bigint[])", thread_ids)
        tree = await categories.tree(st.pool)
        sends = []
        for row in rows:
            thread = threads.thread_dict(row, tree)
            if row["deleted"]:
                thread["deleted"] = True
            for channel, name in feeds.channels_for(st.broker, tree, row["category_id"]):
                sends.append(st.broker.publish(channel, feeds.message(row["id"], wire.feed(name, thread))))
        for r in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(r, Exception):
                log.warning("feed publish failed: %s", r)
    except Exception as exc:
        log.warning("feed update of %s failed: %s", thread_ids, exc)
