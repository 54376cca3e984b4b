"""A spare loopback port."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick; free again once this returns)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
