"""Coming back (issue 15): idle home-page sockets on the `feed` subscription while a hot thread is written.

    python -m bench.feeds                                  # 5,000 sockets on feed "all", 100 replies/s, 20 s
    python -m bench.feeds --sockets 1000 --rate 50 --duration 10

Two `parley serve` processes: the measured one holds every socket (guests, `{"type":"subscribe",
"feed":"all"}`, then idle); the poster takes the replies (open loop, `--rate` per second over 8 HTTP
connections, into `--hot` threads in turn), so its writes and its feed publishing (coalesced per thread
by the writer's process, server/feedpublisher.py) stay out of the measured process's CPU. Measured:

* server CPU of the measured process (user+system) while idle for `--duration` s, then while the hot
  thread is written for as long: what the feed costs over the idle sockets themselves;
* feed frames per socket per second per thread (coalescing must keep it at or below 1), mean and
  the highest of any socket;
* delivery lag: the frame's arrival minus its thread's `last_activity_at` (when the newest reply the
  frame reflects was written), p50/p99/max over every frame every socket received.

The sockets are raw clients in load-generator processes (the same technique as bench/loadgen.py: a
handshake, then the server's unmasked frames read without parsing JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
from array import array
from datetime import datetime
from typing import Any

from . import common
from .common import Env, Http, parley_proc, pct
from .loadgen import Pool, client_frame, server_frames, split_head, switched, upgrade_request

FEED = b'{"type":"feed"'
SUBSCRIBED = b'{"type":"subscribed"'
THREAD_ID = b'"thread":{"id":'
ACTIVITY = b'"last_activity_at":"'


class FeedSock(asyncio.Protocol):
    """One idle guest socket on feed "all": counts feed frames per thread and records each one's lag."""

    def __init__(self, w: FeedWorker, port: int) -> None:
        self.w, self.port = w, port
        self.transport: asyncio.Transport | None = None
        self.upgraded = False
        self.buf = b""
        self.subscribed: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.frames: dict[int, list[float]] = {}  # thread id → [feed frames since mark, first, last arrival]
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(upgrade_request(self.port, f"Origin: http://127.0.0.1:{self.port}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError("closed before subscribed"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            head, buf = split_head(buf)
            if head is None:
                self.buf = buf
                return
            if not switched(head):
                self.transport.close()  # type: ignore[union-attr]
                return
            self.upgraded = True
            self.transport.write(client_frame(b'{"type":"subscribe","feed":"all"}'))  # type: ignore[union-attr]
        frames, pos = server_frames(buf)
        for b0, payload in frames:
            op = b0 & 0x0F
            if op == 1:
                if payload.startswith(FEED):
                    now = time.time()
                    i = payload.find(THREAD_ID) + len(THREAD_ID)
                    tid = int(payload[i:payload.find(b",", i)])
                    seen = self.frames.get(tid)
                    if seen is None:
                        self.frames[tid] = [1, now, now]
                    else:
                        seen[0] += 1
                        seen[2] = now
                    j = payload.find(ACTIVITY) + len(ACTIVITY)
                    if self.w.measuring:
                        at = datetime.fromisoformat(payload[j:j + 27].decode()).timestamp()
                        self.w.lag.append((now - at) * 1000)
                elif payload.startswith(SUBSCRIBED) and not self.subscribed.done():
                    self.subscribed.set_result(time.time())
            elif op == 9:
                self.transport.write(client_frame(payload, 10))  # type: ignore[union-attr]
            elif op == 8:
                self.transport.close()  # type: ignore[union-attr]
                return
        self.buf = buf[pos:] if pos < len(buf) else b""


class FeedWorker:
    def __init__(self) -> None:
        self.socks: list[FeedSock] = []
        self.lag: array[float] = array("f")
        self.measuring = False

    async def open(self, port: int, sem: asyncio.Semaphore) -> FeedSock | None:
        loop = asyncio.get_running_loop()
        s = FeedSock(self, port)
        async with sem:
            try:
                raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                raw.setblocking(False)
                await loop.sock_connect(raw, ("127.0.0.1", port))
                await loop.create_connection(lambda: s, sock=raw)
                await asyncio.wait_for(s.subscribed, 120)
                return s
            except Exception:
                return None

    async def handle(self, cmd: str, arg: Any) -> Any:
        if cmd == "connect":
            sem = asyncio.Semaphore(200)
            got = await asyncio.gather(*(self.open(arg["port"], sem) for _ in range(arg["n"])))
            self.socks = [s for s in got if s is not None]
            return len(self.socks)
        if cmd == "mark":
            for s in self.socks:
                s.frames = {}
            self.lag = array("f")
            self.measuring = True
            return True
        if cmd == "stats":
            self.measuring = False
            per = [s.frames.get(arg["thread"], [0, 0.0, 0.0]) for s in self.socks]
            return {"sockets": len(self.socks), "open": sum(not s.closed for s in self.socks),
                    "frames": per,
                    "other": sum(v[0] for s in self.socks for t, v in s.frames.items() if t != arg["thread"]),
                    "lag": self.lag.tobytes()}
        if cmd == "close":
            for s in self.socks:
                if s.transport is not None:
                    s.transport.close()
            await asyncio.sleep(0.2)
            return True
        raise ValueError(cmd)


async def post_at_rate(port: int, cookie: str, threads: list[int], rate: float, duration: float) -> dict[str, Any]:
    """Open loop: reply i is sent at t0 + i/rate (8 connections; a late one goes at once, none is skipped)."""
    conns = [Http(port, cookie) for _ in range(8)]
    free: asyncio.Queue[Http] = asyncio.Queue()
    for h in conns:
        free.put_nowait(h)
    ok = failed = 0
    lat: list[float] = []

    async def one(i: int) -> None:
        nonlocal ok, failed
        h = await free.get()
        try:
            t = time.perf_counter()
            st, _, _ = await h.request("POST", f"/api/threads/{threads[i % len(threads)]}/posts",
                                       {"body": f"hot reply {i}"})
            lat.append((time.perf_counter() - t) * 1000)
            ok += st == 201
            failed += st != 201
        finally:
            free.put_nowait(h)
    t0 = time.perf_counter()
    tasks = []
    i = 0
    while (due := t0 + i / rate) < t0 + duration:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i)))
        i += 1
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    for h in conns:
        h.close()
    return {"offered": i, "ok": ok, "failed": failed, "rate": round(ok / elapsed, 1),
            **common.summary_ms(lat)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m bench.feeds", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sockets", type=int, default=5000)
    ap.add_argument("--rate", type=float, default=100, help="replies per second, all to the hot thread(s)")
    ap.add_argument("--hot", type=int, default=1, help="hot threads the replies go to in turn")
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--procs", type=int, default=2, help="load-generator processes")
    ap.add_argument("--profile", action="store_true", help="py-spy the measured process while it is written")
    a = ap.parse_args(argv)
    common.raise_nofile()
    env = Env(common.create_db())
    workers = None
    try:
        srv = env.add(parley_proc(env.db_url, name="parley-feeds"))
        poster = env.add(parley_proc(env.db_url, name="parley-poster"))
        forum = asyncio.run(common.setup_forum(poster.port, env.db_url, a.hot))
        hot = forum["threads"]
        workers = Pool(a.procs, make=FeedWorker)
        share = [a.sockets // a.procs + (i < a.sockets % a.procs) for i in range(a.procs)]
        t = time.time()
        opened = sum(workers.call("connect", [{"port": srv.port, "n": n} for n in share]))
        print(f"{opened}/{a.sockets} sockets on feed all in {time.time() - t:.1f}s; rss {srv.rss() >> 20} MiB")
        time.sleep(2)
        cpu0 = srv.cpu()
        time.sleep(a.duration)
        idle_cpu = srv.cpu() - cpu0
        workers.call("mark", [None] * a.procs)
        prof = common.Profile(srv.pid, "feeds", a.duration) if a.profile else None
        cpu0, pcpu0 = srv.cpu(), poster.cpu()
        posted = asyncio.run(post_at_rate(poster.port, forum["cookie"], hot, a.rate, a.duration))
        time.sleep(1.5)  # the last coalesced frame of each thread goes out up to a second after its reply
        busy_cpu, poster_cpu = srv.cpu() - cpu0, poster.cpu() - pcpu0
        window = a.duration + 1.5
        stats = workers.call("stats", [{"thread": hot[0]}] * a.procs)
        frames = [f for s in stats for f in s["frames"]]
        # A socket's rate: the frames after its first over the time from its first to its last (the first
        # goes out at once, then at most one per interval), so the tail after the writes stop is not counted.
        rates = [(n - 1) / (last - first) for n, first, last in frames if n > 1 and last > first]
        lag = [x for s in stats for x in array("f", s["lag"])]
        result = {
            "args": vars(a), "machine": common.machine(), "sockets": opened,
            "open_at_end": sum(s["open"] for s in stats), "posted": posted,
            "server_cpu_idle_pct": round(100 * idle_cpu / a.duration, 1),
            "server_cpu_busy_pct": round(100 * busy_cpu / window, 1),
            "server_cpu_feed_ms_per_s": round(1000 * (busy_cpu / window - idle_cpu / a.duration), 1),
            "poster_cpu_pct": round(100 * poster_cpu / window, 1),
            "frames_per_socket_s_mean": round(sum(rates) / max(1, len(rates)), 3),
            "frames_per_socket_s_max": round(max(rates, default=0.0), 3),
            "frames_per_socket_mean": round(sum(f[0] for f in frames) / max(1, len(frames)), 2),
            "sockets_without_frames": sum(1 for f in frames if f[0] == 0),
            "frames_other_threads": sum(s["other"] for s in stats),
            "frames_total": sum(f[0] for f in frames),
            "lag_p50_ms": pct(lag, 50), "lag_p99_ms": pct(lag, 99), "lag_max_ms": max(lag, default=None),
            "rss_mib": srv.rss() >> 20,
            "profile": prof.finish() if prof else None,
        }
        for k, v in result.items():
            if k not in ("args", "machine", "profile"):
                print(f"  {k:28} {v}")
        print(f"→ {common.write_result('feeds', result).relative_to(common.ROOT)}")
        return result
    finally:
        if workers is not None:
            try:
                workers.call("close", [None] * a.procs)
            except Exception:
                pass
            workers.close()
        env.close()


if __name__ == "__main__":
    main()
