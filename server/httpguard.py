"""Deadlines and a size cap on the HTTP request (slow-loris, trickled bodies and giant headers).

uvicorn's httptools protocol has none of them: every byte of a request that
is still arriving cancels its keep-alive timer, and the parser buffers
headers of any size. This subclass

* starts a HEAD_TIMEOUT timer when a connection opens and when a request
  begins, cancels it once the head is complete, and answers 400 as soon as
  the URL and headers pass HEAD_MAX bytes;
* then gives the body (if any) a deadline of its own, from the end of the head
  to its last byte (PARLEY_BODY_TIMEOUT_SECONDS, 20 s): past it the request is
  answered 408 in the contract's JSON error shape when no answer has started
  (the handler waiting on the body then sees the client gone), and the
  connection is closed in any case (a handler that answered without reading
  the body no longer holds it open). A websocket upgrade has no body: the
  live protocol takes the connection over.

Used by `parley serve`; the size cap of the body itself is in api/inputs.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import is_ssl

HEAD_TIMEOUT = 10.0     # seconds from the first byte of a request (or the connection) to its last header
HEAD_MAX = 16 * 1024    # bytes of URL plus headers
BODY_TIMEOUT = 20.0     # seconds from the end of the head to the last byte of the body (PARLEY_BODY_TIMEOUT_SECONDS)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _head_refused = False
    _body_timer: asyncio.TimerHandle | None = None
    _body_timeout_seconds: float | None = None

    def shutdown(self) -> None:
        """uvicorn is stopping: a server-sent-events response would run until its graceful timeout, so every
        stream ends first (live/sse.py), then the connection is asked to finish as usual."""
        from .live import sse  # imported when needed: this module is loaded by the CLI before the app
        sse.stop_all()
        super().shutdown()

    def connection_made(self, transport: Any) -> None:
        # uvicorn's connection_made, with the addresses from the transport (see addresses()).
        self.connections.add(self)
        self.transport = transport
        self.flow = FlowControl(transport)
        self.server, self.client = addresses(transport)
        self.scheme = "https" if is_ssl(transport) else "http"
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

    def handle_websocket_upgrade(self) -> None:
        """uvicorn's, with the request handed to Parley's websocket protocol as parsed (live/conn.py
        handshake_request) instead of written out as bytes and parsed again; a request that check declines,
        or another websocket protocol, goes uvicorn's way."""
        from .live.conn import ParleyWsProtocol, handshake_request  # the live package loads after the CLI's
        proto_class: Any = self.ws_protocol_class
        request = (handshake_request(self.scope["method"], self.url, list(self.scope["headers"]))
                   if isinstance(proto_class, type) and issubclass(proto_class, ParleyWsProtocol) else None)
        if request is None:
            super().handle_websocket_upgrade()
            return
        self.connections.discard(self)
        protocol: ParleyWsProtocol = proto_class(config=self.config, server_state=self.server_state,
                                                 app_state=self.app_state)
        protocol.connection_made(self.transport)
        self.transport.set_protocol(protocol)
        protocol.upgraded(request)

    def on_headers_complete(self) -> None:
        self._stop_timer()
        if self._head_refused:
            return
        super().on_headers_complete()
        if not (self.parser.should_upgrade() and self._should_upgrade()):
            self._stop_body_timer()
            self._body_timer = self.loop.call_later(self._body_seconds(), self._body_timeout)

    def on_message_complete(self) -> None:
        self._stop_body_timer()
        super().on_message_complete()

    def _body_seconds(self) -> float:
        """PARLEY_BODY_TIMEOUT_SECONDS, from the app's settings (create_app() made it; config.py read it)."""
        if self._body_timeout_seconds is None:
            app, seconds = self.app, None
            for _ in range(5):  # uvicorn may wrap the app (trace logging, proxy headers)
                settings = getattr(app, "settings", None)
                if settings is not None:
                    seconds = getattr(settings, "body_timeout_seconds", None)
                    break
                app = getattr(app, "app", None)
            type(self)._body_timeout_seconds = float(seconds) if seconds is not None else BODY_TIMEOUT
        return self._body_timeout_seconds  # type: ignore[return-value]

    def _stop_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timeout(self) -> None:
        self._body_timer = None
        transport = self.transport
        if transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            body = (b'{"error":{"code":"request_timeout","message":"The request body did not arrive within %d s"}}'
                    % round(self._body_seconds()))
            head = [b"HTTP/1.1 408 Request Timeout\r\n"]
            for name, value in self.server_state.default_headers:
                head.append(name + b": " + value + b"\r\n")
            head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                        % len(body))
            transport.write(b"".join(head) + body)
        if cycle is not None:  # as connection_lost() does: the handler's receive() answers http.disconnect and
            cycle.disconnected = True  # its own answer, if it makes one, is dropped
            cycle.message_event.set()
        transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        self._stop_body_timer()
        super().connection_lost(exc)


def _address(info: Any) -> tuple[str, int | None] | None:
    if isinstance(info, tuple) and len(info) >= 2:  # IPv4 (host, port), IPv6 (host, port, flow, scope)
        return (str(info[0]), int(info[1]))
    if isinstance(info, str) and info:  # a Unix socket's path
        return (info, None)
    return None


def addresses(transport: Any) -> tuple[tuple[str, int | None] | None, tuple[str, int] | None]:
    """(local, remote) address of a connection, as uvicorn's get_local_addr() and get_remote_addr() give
    them, from what asyncio's transport read once when it was made. uvicorn asks the socket again
    (getsockname, getpeername: two system calls and two socket wrappers) in the HTTP protocol and once more
    in the websocket protocol it upgrades to: 8 % of a connect storm's CPU (bench/README.md, "The socket
    floor")."""
    local = _address(transport.get_extra_info("sockname"))
    remote = _address(transport.get_extra_info("peername"))
    return local, (remote if remote is None or remote[1] is not None else None)  # type: ignore[return-value]
