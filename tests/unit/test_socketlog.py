"""Sockets in the log (server/live/socketlog.py): a summary per interval, one line only for an unusual close."""

from __future__ import annotations

import logging

import pytest

from server.live.socketlog import SocketLog


class FakeConn:
    def __init__(self, i: int, close_code: int | None = None) -> None:
        self.id, self.user, self.close_code = i, None, close_code


def test_ordinary_sockets_are_summarized_and_an_unusual_close_is_named(caplog: pytest.LogCaptureFixture) -> None:
    """Opens and ordinary closes log nothing one by one at INFO; a 1008 close does; the summary counts them
    by code and resets; with nothing new there is no summary."""
    caplog.set_level(logging.INFO, logger="server.live.ws")
    sl = SocketLog()
    for i in range(3):
        sl.open(FakeConn(i), ("10.0.0.1", 5000 + i))  # type: ignore[arg-type]
    sl.close(FakeConn(0), ("10.0.0.1", 5000))  # type: ignore[arg-type]
    sl.close(FakeConn(1, 1008), ("10.0.0.1", 5001))  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records] == ["ws close 1 10.0.0.1:5001 code=1008"]
    sl.summary(1)
    assert caplog.records[-1].getMessage() == "ws sockets: 3 opened, 2 closed (client=1, 1008=1), 1 open"
    n = len(caplog.records)
    sl.summary(1)
    assert len(caplog.records) == n


def test_each_socket_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    """At DEBUG every open and close has its line, with the address and the code."""
    caplog.set_level(logging.DEBUG, logger="server.live.ws")
    sl = SocketLog()
    sl.open(FakeConn(7), ("::1", 4000))  # type: ignore[arg-type]
    sl.close(FakeConn(7, 1000), None)  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records] == ["ws open 7 ::1:4000 user=-", "ws close 7 ? code=1000"]
