"""The typing relay: "NAME is replying…" passed to a thread's other watchers.

Typing is a hint, never stored and never given a seq. The socket that types
publishes one message on the thread's channel (the same channel as its
events, so every process watching the thread hears it):

    b"T" + b"<process>:<conn id>" + b" " + <the frame for the watchers>

Every process hands the frame, unchanged, to its own sockets in that thread;
the process that sent it skips the sending socket, so the sender is never
echoed (its other tabs still hear it). Event frames start with b"{", so the
first byte tells the two apart without parsing anything. See docs/live.md.
"""

from __future__ import annotations

from collections.abc import Iterable

from .conn import Conn, Frame

PREFIX = b"T"


def message(process: str, conn_id: int, frame: bytes) -> bytes:
    """The channel message for `frame`, typed on socket `conn_id` of this `process` (the hub's origin)."""
    return PREFIX + f"{process}:{conn_id}".encode() + b" " + frame


def is_typing(message: bytes) -> bool:
    return message[:1] == PREFIX


def relay(process: str, message: bytes, conns: Iterable[Conn]) -> None:
    """Deliver a typing message to `conns` (a room's sockets on this process), except the one that sent it."""
    space = message.index(b" ")
    origin = message[1:space].decode()
    frame = Frame(message[space + 1:])
    sender_process, _, sender_conn = origin.rpartition(":")
    sender = int(sender_conn) if sender_process == process else -1  # another process: nobody here sent it
    for conn in list(conns):
        if conn.id != sender:
            conn.send(frame)
