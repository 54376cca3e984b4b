"""The typing relay: "NAME is replying…" passed to a thread's other watchers.

Typing is a hint, never stored and never given a seq. The socket that types
publishes one message on the thread's channel (the same channel as its
events, so every process watching the thread hears it): the frame for the
watchers, marked with the process and socket that sent it
(channels.typing_message). Every process hands the frame, unchanged, to its
own sockets in that thread; the process that sent it skips the sending
socket, so the sender is never echoed (its other tabs still hear it).
See docs/live.md.
"""

from __future__ import annotations

from collections.abc import Iterable

from .channels import typing_parts
from .conn import Conn, Frame


def relay(process: str, message: bytes, conns: Iterable[Conn]) -> None:
    """Deliver a typing message to `conns` (a room's sockets on this process), except the one that sent it."""
    origin, conn_id, data = typing_parts(message)
    sender = conn_id if origin == process else -1  # another process: nobody here sent it
    frame = Frame(data)
    for conn in list(conns):
        if conn.id != sender:
            conn.send(frame)
