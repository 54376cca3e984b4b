"""The websocket handshake's request, parsed twice or once (issue 33's socket floor).

    .venv/bin/python -m bench.handshake --rounds 5

Before, uvicorn's HTTP protocol wrote the request httptools had parsed back out as bytes and websockets parsed
them again (`Request.parse` over a `StreamReader`); now `live/conn.handshake_request` builds websockets' Request
from the parsed headers (httpguard's upgrade). Both on a browser's handshake headers (host, upgrade, key,
version, origin, cookie, user agent, encodings, languages, extensions, cache headers), in this process, rounds
alternating: µs of CPU per handshake for each.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from websockets.http11 import Request

from server.live.conn import handshake_request
from tests.support.ws import library_request

from . import common

URL = b"/ws?thread=12345"
HEADERS = [
    (b"host", b"forum.example.org"), (b"connection", b"Upgrade"), (b"pragma", b"no-cache"),
    (b"cache-control", b"no-cache"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 "
                    b"Safari/537.36"),
    (b"upgrade", b"websocket"), (b"origin", b"https://forum.example.org"), (b"sec-websocket-version", b"13"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"), (b"accept-language", b"en-GB,en;q=0.9,fr;q=0.8"),
    (b"cookie", b"parley_session=eyJzIjoiYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTYifQ.Z1x2Yw."
                b"abcdefghijklmnopqrstuvwxyz; theme=dark"),
    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
]


def twice() -> Request:
    """uvicorn's handle_websocket_upgrade (the bytes) and websockets' ServerProtocol.parse (the request)."""
    return library_request(b"GET", URL, HEADERS)


def once() -> Request:
    """httpguard's upgrade: the Request made from the headers httptools parsed."""
    request = handshake_request("GET", URL, HEADERS)
    assert request is not None
    return request


def cpu_us(fn: Callable[[], Request], n: int) -> float:
    t = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t) / n * 1e6


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(prog="python -m bench.handshake", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--n", type=int, default=20000, help="handshakes per variant per round")
    a = p.parse_args(argv)
    a_req, b_req = twice(), once()
    assert (a_req.path, list(a_req.headers.raw_items())) == (b_req.path, list(b_req.headers.raw_items()))
    rows = []
    for r in range(1, a.rounds + 1):
        rows.append({"round": r, "twice_us": cpu_us(twice, a.n), "once_us": cpu_us(once, a.n)})
        print("round {round}: parsed twice {twice_us:.1f} µs CPU, once {once_us:.1f} µs".format(**rows[-1]))
    result = {"args": vars(a), "rows": rows, "machine": common.machine()}
    print(f"→ {common.write_result('handshake', result).relative_to(common.ROOT)}")
    return result


if __name__ == "__main__":
    main()
