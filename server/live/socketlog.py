"""Sockets in the log: counted, summarized once a minute, one by one only at DEBUG or when unusual.

Logged by the `server.live.ws` logger, the same one that logged a line per open and per close before.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from .conn import Conn

log = logging.getLogger("server.live.ws")

SUMMARY_EVERY = 60.0  # seconds between the INFO summaries of sockets opened and closed
# Ordinary ends of a socket (closed by the client, going away, no code, dropped): counted in the summary.
# Any other code (1008 a policy, 1009 too big, 1011 an error, 1013 too slow, 4001 the session ended) is
# also logged one by one at INFO: an operator looks for those sockets by name.
ORDINARY_CLOSES = frozenset({None, 1000, 1001, 1005, 1006})


def _client(addr: Any) -> str:
    return f"{addr[0]}:{addr[1]}" if addr else "?"


class SocketLog:
    """What the log says about sockets: per interval one INFO line while any opened or closed (how many,
    by close code, how many are open), each socket's open and close at DEBUG, and an unusual close at INFO.

    Two INFO lines per socket were 6.1 % of a 10,000-socket connect storm's CPU (bench/README.md, "The
    socket floor") and told an operator less than the counts do; parley_ws_open_sockets has the level."""

    __slots__ = ("opened", "closed", "codes")

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0
        self.codes: Counter[int | None] = Counter()

    def open(self, conn: Conn, addr: Any) -> None:
        self.opened += 1
        if log.isEnabledFor(logging.DEBUG):
            user = conn.user
            log.debug("ws open %d %s user=%s", conn.id, _client(addr), user["username"] if user else "-")

    def close(self, conn: Conn, addr: Any) -> None:
        self.closed += 1
        code = conn.close_code
        self.codes[code] += 1
        if code not in ORDINARY_CLOSES:
            log.info("ws close %d %s code=%s", conn.id, _client(addr), code)
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("ws close %d %s code=%s", conn.id, _client(addr), code)

    def summary(self, open_now: int) -> None:
        """One INFO line for what happened since the last one; nothing when nothing did."""
        if not self.opened and not self.closed:
            return
        # The server's close code, or "client" for a socket the client closed or dropped (no code of ours).
        codes = ", ".join(f"{'client' if c is None else c}={n}" for c, n in
                          sorted(self.codes.items(), key=lambda kv: -1 if kv[0] is None else kv[0]))
        log.info("ws sockets: %d opened, %d closed (%s), %d open", self.opened, self.closed, codes or "-",
                 open_now)
        self.opened = self.closed = 0
        self.codes.clear()

    async def run(self, open_now: Callable[[], int], every: float = SUMMARY_EVERY) -> None:
        while True:
            await asyncio.sleep(every)
            self.summary(open_now())
