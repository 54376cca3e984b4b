"""A deadline and a size cap on the HTTP request head (slow-loris and giant headers).

uvicorn's httptools protocol has neither: every byte of a request head that
is still arriving cancels its keep-alive timer, and the parser buffers
headers of any size. This subclass starts a HEAD_TIMEOUT timer when a
connection opens and when a request begins, cancels it once the head is
complete (the body has its own limits in api/common.py), and answers 400 as
soon as the URL and headers pass HEAD_MAX bytes. Used by `parley serve`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_TIMEOUT = 10.0     # seconds from the first byte of a request (or the connection) to its last header
HEAD_MAX = 16 * 1024    # bytes of URL plus headers


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _head_refused = False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_timeout)

    def _head_timeout(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _stop_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_timeout)

    def _count(self, n: int) -> bool:
        self._head_bytes += n
        if self._head_bytes > HEAD_MAX:
            if not self._head_refused:
                self._head_refused = True
                self._stop_timer()
                self.send_400_response("Request head too large")  # also closes the connection
            return False
        return True

    def on_url(self, url: bytes) -> None:
        if self._count(len(url)):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._count(len(name) + len(value)):
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_timer()
        if not self._head_refused:
            super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)
