"""Watcher load generators: processes, each with its own event loop, holding many raw websocket clients.

The client is written against the wire (a 101 handshake, then unmasked server frames) so that it costs
a few µs per received frame: the load generator shares the 2 cores with the server and must stay far
cheaper than what it measures. It never parses JSON: an event frame's seq is read like
server/wire.frame_seq does, and the post's send time from the `bench:<time_ns>` its body starts with.

Per socket it checks seq continuity (lost, duplicate, out-of-order) and records post→delivery latency.
The parent drives the processes through a Pipe with small commands (see Worker.handle).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import socket
import struct
import time
import zlib
from array import array
from collections.abc import Callable
from typing import Any

from .common import pin, raise_nofile

EVENT = b'{"type":"event"'
SUBSCRIBED = b'{"type":"subscribed"'
SEQ = b'"seq":'
STAMP = b"bench:"
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
DEBUG = bool(os.environ.get("BENCH_DEBUG"))


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    """A masked client frame with a zero mask key (allowed by RFC 6455: payload unchanged)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    else:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    return head + b"\0\0\0\0" + payload


def server_frames(buf: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """The whole (unmasked) server frames at the start of buf, as (first byte, payload), and how many bytes
    they took; the rest waits for more data. The one frame parser of every bench client."""
    frames: list[tuple[int, bytes]] = []
    pos, size = 0, len(buf)
    while size - pos >= 2:
        b0, n, p = buf[pos], buf[pos + 1] & 0x7F, pos + 2
        if n == 126:
            if size - p < 2:
                break
            n, p = (buf[p] << 8) | buf[p + 1], p + 2
        elif n == 127:
            if size - p < 8:
                break
            n, p = struct.unpack_from(">Q", buf, p)[0], p + 8
        if size - p < n:
            break
        frames.append((b0, buf[p:p + n]))
        pos = p + n
    return frames, pos


def upgrade_request(port: int, *headers: str) -> bytes:
    """The client's websocket handshake for /ws on 127.0.0.1:`port`, with extra header lines (`Name: value`)."""
    extra = "".join(h + "\r\n" for h in headers)
    return (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {KEY.decode()}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode()


def split_head(buf: bytes) -> tuple[bytes | None, bytes]:
    """(the handshake answer's head, the bytes after it) once the head is whole; (None, buf) until then."""
    end = buf.find(b"\r\n\r\n")
    return (None, buf) if end < 0 else (buf[:end], buf[end + 4:])


def switched(head: bytes) -> bool:
    """Whether a handshake answer's head says 101 Switching Protocols."""
    return b" 101 " in head.split(b"\r\n", 1)[0]


class Sock(asyncio.Protocol):
    def __init__(self, w: Worker, target: int, port: int, thread: int, since: int | None, slow: bool,
                 compress: bool) -> None:
        self.w, self.target, self.port, self.thread, self.since = w, target, port, thread, since
        self.slow, self.compress = slow, compress
        self.transport: asyncio.Transport | None = None
        self.upgraded = False
        self.buf = b""
        self.subscribed = asyncio.get_running_loop().create_future()
        self.live = False
        self.closed = False
        self.close_code: int | None = None
        self.last = since or 0   # highest seq seen (kept across reconnects)
        self.base = self.last    # seq at the last mark()
        self.n = 0               # event frames since mark()
        self.dups = 0
        self.gaps = 0           # seqs skipped when a later one arrived (out of order or lost)
        self.late = 0           # seqs that arrived after a later one (reordered)
        self.missing: set[int] = set()
        self.inflate = None
        self.hist: list = []

    # -- asyncio.Protocol ---------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        ext = ("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",) if self.compress else ()
        transport.write(upgrade_request(self.port, *ext))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.live = False
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError(f"closed before subscribed ({self.close_code})"))
        self.w.closes[self.close_code] = self.w.closes.get(self.close_code, 0) + 1

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            head, buf = split_head(buf)
            if head is None:
                self.buf = buf
                return
            if not switched(head):
                self.close_code = -int(head.split()[1]) if len(head.split()) > 1 else -1
                self.transport.close()  # type: ignore[union-attr]
                return
            if self.compress and b"permessage-deflate" in head.lower():
                self.inflate = zlib.decompressobj(-15)
            self.upgraded = True
            if self.thread:
                msg = b'{"type":"subscribe","thread":%d%s}' % (
                    self.thread, b',"since":%d' % self.since if self.since is not None else b"")
                self.transport.write(client_frame(msg))  # type: ignore[union-attr]
            elif not self.subscribed.done():  # thread 0: an idle socket, done once upgraded
                self.subscribed.set_result(time.time())
        now = 0
        w = self.w
        frames, pos = server_frames(buf)
        for b0, payload in frames:
            op = b0 & 0x0F
            if op == 1 or op == 0:
                if b0 & 0x40 and self.inflate is not None:
                    payload = self.inflate.decompress(payload + b"\x00\x00\xff\xff")
                if payload.startswith(EVENT):
                    i = payload.find(SEQ) + 6
                    seq = int(payload[i:payload.find(b",", i)])
                    if DEBUG:
                        self.hist.append((seq, self.live, len(data)))
                    last = self.last
                    if seq <= last:
                        if seq in self.missing:  # arrived late (out of order), not twice
                            self.missing.discard(seq)
                            self.late += 1
                        else:
                            self.dups += 1
                    else:
                        if seq != last + 1 and last != 0:
                            self.gaps += seq - last - 1
                            self.missing.update(range(last + 1, seq))
                        self.last = seq
                    self.n += 1
                    if self.live and not self.slow:
                        j = payload.find(STAMP)
                        if j > 0:
                            if not now:
                                now = time.time_ns()
                            w.lat[self.target].append((now - int(payload[j + 6:j + 25])) / 1e6)
                            w.seqs[self.target].append(seq)
                elif payload.startswith(SUBSCRIBED):
                    self.live = True
                    if self.last == 0:
                        i = payload.find(SEQ)
                        if i > 0:
                            v = payload[i + 6:].split(b",")[0].split(b"}")[0]
                            if v.isdigit():
                                self.last = self.base = int(v)
                    if not self.subscribed.done():
                        self.subscribed.set_result(time.time())
                    if self.slow:
                        self.transport.pause_reading()  # type: ignore[union-attr]
            elif op == 9:
                self.transport.write(client_frame(payload, 10))  # type: ignore[union-attr]
            elif op == 8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.transport.write(client_frame(payload[:2], 8))  # type: ignore[union-attr]
                self.transport.close()  # type: ignore[union-attr]
                return
        self.buf = buf[pos:] if pos < len(buf) else b""


class Worker:
    def __init__(self) -> None:
        self.socks: list[Sock] = []
        self.lat: list[array[float]] = [array("f"), array("f")]
        self.seqs: list[array[int]] = [array("q"), array("q")]
        self.closes: dict[int | None, int] = {}

    async def open(self, target: int, port: int, thread: int, since: int | None, slow: bool, compress: bool,
                   sem: asyncio.Semaphore | None, sock: Sock | None = None) -> Sock | None:
        loop = asyncio.get_running_loop()
        s = sock or Sock(self, target, port, thread, since, slow, compress)
        if sock is not None:  # reconnect with since = last seq seen
            s.since, s.port, s.upgraded, s.buf, s.closed, s.live = s.last, port, False, b"", False, False
            s.subscribed = loop.create_future()
            s.close_code = None
        try:
            if sem is not None:
                await sem.acquire()
            try:
                raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                raw.setblocking(False)
                if slow:
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
                await loop.sock_connect(raw, ("127.0.0.1", port))
                await loop.create_connection(lambda: s, sock=raw)
                await asyncio.wait_for(s.subscribed, 120)
            finally:
                if sem is not None:
                    sem.release()
            return s
        except Exception as exc:
            self.errors.append(repr(exc)[:200])
            return None

    errors: list[str] = []

    async def handle(self, cmd: str, arg: dict[str, Any]) -> Any:
        if cmd == "connect":
            sem = asyncio.Semaphore(arg["concurrency"]) if arg.get("concurrency") else None
            t0 = time.time()
            specs = arg["specs"]
            got = await asyncio.gather(*(self.open(*spec, sem) for spec in specs))
            new = [s for s in got if s is not None]
            self.socks.extend(new)
            times = [s.subscribed.result() for s in new]
            return {"ok": len(new), "failed": len(specs) - len(new), "t0": t0,
                    "t_last": max(times) if times else None, "errors": self.errors[:5]}
        if cmd == "reconnect":
            sem = asyncio.Semaphore(arg["concurrency"]) if arg.get("concurrency") else None
            t0 = time.time()
            todo = [s for s in self.socks if s.closed and not s.slow]
            got = await asyncio.gather(*(self.open(s.target, arg["port"], s.thread, None, False, s.compress, sem,
                                                   sock=s) for s in todo))
            ok = [s for s in got if s is not None]
            times = [s.subscribed.result() for s in ok]
            return {"ok": len(ok), "failed": len(todo) - len(ok), "t0": t0,
                    "t_last": max(times) if times else None, "errors": self.errors[:5]}
        if cmd == "mark":
            seqs = (arg or {}).get("seqs", {})
            for s in self.socks:
                if s.last == 0:  # the reference server's `subscribed` carries no seq
                    s.last = seqs.get(str(s.thread), 0)
                s.base, s.n, s.dups, s.gaps, s.late = s.last, 0, 0, 0, 0
                s.missing.clear()
            self.lat = [array("f"), array("f")]
            self.seqs = [array("q"), array("q")]
            return True
        if cmd == "progress":
            out: dict[str, Any] = {}
            for s in self.socks:
                if s.slow or s.closed:
                    continue
                key = f"{s.target}:{s.thread}"
                out[key] = min(out.get(key, 1 << 62), s.last)
            return out
        if cmd == "stats":
            final: dict[str, int] = arg["final"]
            res: dict[str, Any] = {"closes": {str(k): v for k, v in self.closes.items()}, "targets": {}}
            for t in (0, 1):
                socks = [s for s in self.socks if s.target == t]
                if not socks:
                    continue
                normal = [s for s in socks if not s.slow]
                slow = [s for s in socks if s.slow]

                def lost(group: list[Sock]) -> int:
                    return sum(max(0, final.get(str(s.thread), s.last) - s.base - (s.n - s.dups)) for s in group)
                if DEBUG:
                    odd = sorted(normal, key=lambda s: -s.n)[:3]
                    res["debug"] = [(s.thread, s.n, s.last, s.base, s.gaps, s.hist[:60]) for s in odd]
                res["targets"][t] = {
                    "sockets": len(normal), "slow_sockets": len(slow),
                    "received": sum(s.n for s in normal), "lost": lost(normal),
                    "dups": sum(s.dups for s in normal), "gaps": sum(s.gaps for s in normal),
                    "out_of_order": sum(s.late for s in normal),
                    "closed": sum(1 for s in normal if s.closed),
                    "slow_closed": sum(1 for s in slow if s.closed or s.close_code is not None),
                    "lat": self.lat[t].tobytes(), "seqs": self.seqs[t].tobytes(),
                }
            return res
        if cmd == "resume_slow":
            for s in self.socks:
                if s.slow and not s.closed and s.transport is not None:
                    s.transport.resume_reading()
            return True
        if cmd == "close":  # every socket, or only those of one target ({"target": 1})
            target = (arg or {}).get("target")
            for s in self.socks:
                if (target is None or s.target == target) and s.transport is not None and not s.closed:
                    s.transport.close()
            await asyncio.sleep(0.2)
            self.socks = [] if target is None else [s for s in self.socks if s.target != target]
            return True
        raise ValueError(cmd)


def _main(conn: Any, cpus: set[int] | None, make: Callable[[], Any]) -> None:
    """A load-generator process: `make()` builds the object whose `handle(cmd, arg)` answers the parent's commands
    (this module's Worker, transports.Clients, feeds.FeedWorker), each answered as it completes."""
    raise_nofile()
    pin(0, cpus)
    Worker.errors = []

    async def run() -> None:
        w = make()
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        loop.add_reader(conn.fileno(), lambda: inbox.put_nowait(conn.recv()))
        while True:
            cmd, arg = await inbox.get()
            if cmd == "exit":
                conn.send(True)
                return

            async def reply(cmd: str = cmd, arg: Any = arg) -> None:
                try:
                    conn.send(await w.handle(cmd, arg))
                except Exception as exc:  # the parent sees it
                    conn.send({"error": repr(exc)})
            loop.create_task(reply())
    asyncio.run(run())


class Pool:
    """N load-generator processes. call(cmd, [arg per process]) → [answer per process]."""

    """`n` forked load-generator processes (pinned to `cpus` if given), each running a `make()` object; `call`
    sends a command to every one and returns their answers in order."""

    def __init__(self, n: int, cpus: set[int] | None = None, make: Callable[[], Any] = Worker) -> None:
        ctx = mp.get_context("fork")
        self.conns = []
        self.procs = []
        for _ in range(n):
            a, b = ctx.Pipe()
            p = ctx.Process(target=_main, args=(b, cpus, make), daemon=True)
            p.start()
            self.conns.append(a)
            self.procs.append(p)

    def call(self, cmd: str, args: list[Any] | Any = None, timeout: float = 600) -> list[Any]:
        if not isinstance(args, list):
            args = [args] * len(self.conns)
        for c, a in zip(self.conns, args):
            c.send((cmd, a or {}))
        out = []
        for c in self.conns:
            if not c.poll(timeout):
                raise TimeoutError(f"load generator did not answer {cmd}")
            r = c.recv()
            if isinstance(r, dict) and "error" in r:
                raise RuntimeError(f"load generator failed on {cmd}: {r['error']}")
            out.append(r)
        return out

    def cpu(self) -> float:
        import psutil
        total = 0.0
        for p in self.procs:
            try:
                t = psutil.Process(p.pid).cpu_times()
                total += t.user + t.system
            except Exception:
                pass
        return total

    def shutdown(self) -> None:
        """Close every socket the generators hold (their "close" command), then end the processes."""
        try:
            self.call("close", timeout=30)
        except Exception:
            pass
        self.close()

    def close(self) -> None:
        for c in self.conns:
            try:
                c.send(("exit", None))
            except Exception:
                pass
        for p in self.procs:
            p.join(3)
            if p.is_alive():
                p.kill()


def spread(specs: list[tuple[Any, ...]], n: int) -> list[list[tuple[Any, ...]]]:
    return [specs[i::n] for i in range(n)]


def n_procs(default: int) -> int:
    return int(os.environ.get("BENCH_LOADGEN_PROCS", default))
