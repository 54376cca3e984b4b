"""A spare loopback port, safe under parallel test workers.

The kernel's pick for bind(0) comes from the ephemeral range (32768-60999 on Linux), the same range every
outgoing connection takes its source port from: between free_port() returning and the server binding,
another worker's server or any test's client socket could take it. So ports come from below that range
instead, from a slice of PORTS_PER_WORKER ports of this worker's own (PYTEST_XDIST_WORKER gw0, gw1, …),
starting at a random offset, each checked free before it is handed out and not handed out again until
the slice has gone round once. Two suites running at once (two checkouts) can still meet in a slice; the
bind check makes that a miss rather than a clash unless both take the same port in the same instant.
"""

from __future__ import annotations

import os
import random
import socket

FIRST = 20000  # below the ephemeral range (ip_local_port_range starts at 32768)
PORTS_PER_WORKER = 1500  # slices for gw0..gw7 end at 32000
_handed_out: set[int] = set()


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = "".join(c for c in worker if c.isdigit())
    return int(digits or 0) % 8


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port nobody listens on right now, in this worker's own slice, not handed out lately."""
    base = FIRST + _worker_index() * PORTS_PER_WORKER
    start = random.randrange(PORTS_PER_WORKER)
    for i in range(PORTS_PER_WORKER):
        port = base + (start + i) % PORTS_PER_WORKER
        if port not in _handed_out and _is_free(port):
            _handed_out.add(port)
            return port
    if _handed_out:  # the slice went round: the first ports are long closed
        _handed_out.clear()
        return free_port()
    raise RuntimeError(f"no free port in {base}..{base + PORTS_PER_WORKER - 1}")
