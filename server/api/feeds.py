"""Publishing thread-list updates on the feed channels after COMMIT (server/live/feeds.py)."""

from __future__ import annotations

import asyncio
import logging

from .. import wire
from ..live import feeds
from ..state import AppState
from ..store import categories, threads

log = logging.getLogger(__name__)


async def publish(st: AppState, thread_ids: list[int], moved_from: int | None = None) -> None:
    """The current Thread of each (`deleted: true` when it was deleted) to feed:all and to the feeds of
    its category and every ancestor. Feeds are soft: a failure is logged, never an error for the writer.

    `moved_from`: the category a (single) thread was moved out of; the feeds it left hear it as deleted."""
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
            chain = feeds.channels_for(st.broker, tree, row["category_id"])
            for channel, name in chain:
                sends.append(st.broker.publish(channel, feeds.message(row["id"], wire.feed(name, thread))))
            if moved_from is not None and moved_from != row["category_id"] and moved_from in tree.by_id:
                kept = {c for c, _ in chain}
                gone = {**thread, "deleted": True}
                for channel, name in feeds.channels_for(st.broker, tree, moved_from):
                    if channel not in kept:
                        sends.append(st.broker.publish(channel, feeds.message(row["id"], wire.feed(name, gone))))
        for r in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(r, Exception):
                log.warning("feed publish failed: %s", r)
    except Exception as exc:
        log.warning("feed update of %s failed: %s", thread_ids, exc)
