"""Active Now at scale (issue 20): a join storm of N signed-in sockets, then churn, on two processes.

    python -m bench.presence --sockets 2000 --churn 20 --duration 60
    python -m bench.presence --sockets 500 --server-root /tmp/parley-main   # the code of another tree

1. Two `parley serve` processes on one private Redis; N + churn × duration distinct users with
   sessions, made straight in the database.
2. Storm: N sockets (one per user, alternating between the processes, `--concurrency` handshakes in
   flight) connect at once. Reported: time until every socket has its hello ("joined") and until no
   presence frame has arrived anywhere for 3 s ("settled"); Redis commands (INFO commandstats, which
   counts the commands run inside scripts too; `scripts` = EVALSHA/EVAL round trips) and bytes in/out
   (INFO stats) per join.
3. Churn: for `--duration` s, `--churn` new users arrive per second (a fresh socket each) and as many
   sockets close (the oldest of the non-stable half; the stable half stays open throughout). Reported
   over the stable sockets: presence frames and bytes per socket per second; server CPU (psutil
   user+system of both processes, per process as % of a core: an upper bound for presence, since it
   includes the handshakes of the arrivals); Redis commands and bytes per arrival or departure.

Presence's own costs come from each process's /metrics (the parley_presence_* series: Redis commands it
sent, scope reads, frames and bytes written, thread CPU in presence work), read before and after each
phase: `presence` in each phase's figures, per join / per change, summed over both processes. A tree
from before those series existed (`--server-root`) reports none.

The client is a raw websocket (asyncio.Protocol): it counts presence frames by their first bytes,
never parses JSON, and answers pings. Results: bench/results/presence-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import secrets
import struct
import sys
import time
from typing import Any

from . import common
from .common import Env, Proc, parley_proc
from .loadgen import client_frame, server_frames, split_head, switched, upgrade_request

PRESENCE = b'{"type":"presence"'
SERIES = ("redis_commands", "reads", "frames", "frame_bytes", "cpu_seconds")  # parley_presence_<name>_total
SECRET = "bench-secret-0123456789abcdef0123"  # bench.common.parley_proc's PARLEY_SECRET


class Sock(asyncio.Protocol):
    """One signed-in websocket that counts the presence frames it receives."""

    def __init__(self, port: int, cookie: str) -> None:
        self.port, self.cookie = port, cookie
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False
        self.hello = asyncio.get_running_loop().create_future()
        self.frames = 0
        self.bytes = 0
        self.last_at = 0.0
        self.last: bytes = b""
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(upgrade_request(self.port, f"Cookie: parley_session={self.cookie}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.hello.done():
            self.hello.set_exception(ConnectionError("closed before hello"))

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
        frames, pos = server_frames(buf)
        for b0, payload in frames:
            op = b0 & 0x0F
            if op == 1:
                if payload.startswith(PRESENCE):
                    self.frames += 1
                    self.bytes += len(payload)
                    self.last_at = time.monotonic()
                    self.last = payload[:4096]
                elif not self.hello.done() and payload.startswith(b'{"type":"hello"'):
                    self.hello.set_result(time.monotonic())
            elif op == 9:  # ping → pong
                self.transport.write(client_frame(payload, 10))  # type: ignore[union-attr]
        self.buf = buf[pos:]

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(client_frame(struct.pack(">H", 1000), 8))
            self.transport.close()


async def make_users(db_url: str, n: int) -> list[str]:
    """n users with live sessions (no argon2): their signed session cookies."""
    import asyncpg
    from itsdangerous import Signer

    signer = Signer(SECRET, salt="parley.session")
    prefix = f"b{secrets.token_hex(3)}"
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "INSERT INTO users (username, display_name, password_hash)"
            " SELECT $1 || i, 'Bench user ' || i, 'x' FROM generate_series(1, $2) AS i RETURNING id", prefix, n)
        sids = [secrets.token_urlsafe(32) for _ in rows]
        from server.store import sessions
        for sid, r in zip(sids, rows, strict=True):
            await sessions.create(conn, sid, r["id"], 0)  # a new user: credential epoch 0
        return [signer.sign(sid).decode() for sid in sids]
    finally:
        await conn.close()


def server(db_url: str, root: str | None, name: str) -> Proc:
    proc = parley_proc(db_url, name=name)
    if root:  # another tree's code (e.g. main's, for "before"): its `server` package first on sys.path
        port = proc.port
        proc.cmd = [sys.executable, "-c", f"import sys, runpy; sys.path.insert(0, {root!r}); sys.argv[0] = 'parley'; "
                    "runpy.run_module('server', run_name='__main__')", "serve", "--port", str(port)]
    return proc


def redis_stats(r: Any) -> dict[str, int]:
    cmd = {k.removeprefix("cmdstat_"): v["calls"] for k, v in r.info("commandstats").items()}
    st = r.info("stats")
    skip = ("info", "config|resetstat", "config")
    return {"commands": sum(v for k, v in cmd.items() if k not in skip),
            "scripts": cmd.get("evalsha", 0) + cmd.get("eval", 0),
            "in": st["total_net_input_bytes"], "out": st["total_net_output_bytes"]}


def delta(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: b[k] - a[k] for k in a}


def presence_costs(procs: list[Proc]) -> dict[str, float]:
    """The parley_presence_* counters of every process, summed (an older tree has none: {})."""
    import httpx
    out: dict[str, float] = {}
    for p in procs:
        for line in httpx.get(f"http://127.0.0.1:{p.port}/metrics", timeout=10).text.splitlines():
            name, _, value = line.partition(" ")
            key = name.removeprefix("parley_presence_").removesuffix("_total")
            if key in SERIES and name.startswith("parley_presence_"):
                out[key] = out.get(key, 0.0) + float(value)
    return out


def per(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    """Each counter's growth between two readings, per unit (join, change)."""
    return {k: round((after[k] - before.get(k, 0.0)) / max(n, 1), 6 if k == "cpu_seconds" else 2) for k in after}


async def run(a: argparse.Namespace, env: Env, procs: list[Proc]) -> dict[str, Any]:
    import redis as redis_client
    if True:
        r = redis_client.Redis.from_url(common.redis_url())
        cookies = await make_users(env.db_url, a.sockets + a.churn * a.duration + 10)
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(a.concurrency)
        used = 0

        async def open_one(i: int) -> Sock:
            nonlocal used
            cookie = cookies[used]
            used += 1
            proc = procs[i % 2]
            async with gate:
                for attempt in range(5):
                    _, sock = await loop.create_connection(lambda: Sock(proc.port, cookie), "127.0.0.1", proc.port)
                    try:
                        await asyncio.wait_for(sock.hello, 60)
                        return sock
                    except (ConnectionError, TimeoutError):
                        sock.close()
                        await asyncio.sleep(0.5 * (attempt + 1))
            raise RuntimeError("could not open a socket")

        await asyncio.sleep(1)
        r.config_resetstat()
        s0, cpu0, m0 = redis_stats(r), [p.cpu() for p in procs], await asyncio.to_thread(presence_costs, procs)
        t0 = time.monotonic()
        socks = await asyncio.gather(*(open_one(i) for i in range(a.sockets)))
        joined = time.monotonic() - t0
        while True:
            await asyncio.sleep(0.5)
            last = max(s.last_at for s in socks)
            if time.monotonic() - last > 3 or time.monotonic() - t0 > 300:
                break
        settled = last - t0
        s1, cpu1, m1 = redis_stats(r), [p.cpu() for p in procs], await asyncio.to_thread(presence_costs, procs)
        storm = {"joined_s": round(joined, 2), "settled_s": round(settled, 2),
                 "frames_per_socket": round(sum(s.frames for s in socks) / a.sockets, 2),
                 "presence_bytes_per_socket": round(sum(s.bytes for s in socks) / a.sockets),
                 "server_cpu_s": [round(c1 - c0, 2) for c0, c1 in zip(cpu0, cpu1, strict=True)]}
        d = delta(s0, s1)
        storm.update({"redis_commands_per_join": round(d["commands"] / a.sockets, 2),
                      "redis_scripts_per_join": round(d["scripts"] / a.sockets, 3),
                      "redis_bytes_in_per_join": round(d["in"] / a.sockets),
                      "redis_bytes_out_per_join": round(d["out"] / a.sockets),
                      "presence_per_join": per(m0, m1, a.sockets)})
        last_frame = max(socks, key=lambda s: s.last_at).last[:200]
        print(f"storm N={a.sockets}: {storm}\n  a last frame begins {last_frame!r}", flush=True)

        # Churn: the first half stays (measured), the rest turns over, oldest first.
        stable = socks[: a.sockets // 2]
        turnover = collections.deque(socks[a.sockets // 2:])
        for s in stable:
            s.frames = s.bytes = 0
        m2 = await asyncio.to_thread(presence_costs, procs)
        s2, cpu2, t2 = redis_stats(r), [p.cpu() for p in procs], time.monotonic()
        arrivals = departures = 0
        pending: set[asyncio.Task[Sock]] = set()
        tick = 1 / a.churn
        nxt = t2
        while time.monotonic() - t2 < a.duration:
            nxt += tick
            task = asyncio.ensure_future(open_one(used))
            pending.add(task)
            task.add_done_callback(lambda t: (pending.discard(t), turnover.append(t.result())))
            arrivals += 1
            if turnover:
                turnover.popleft().close()
                departures += 1
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))
        window = time.monotonic() - t2
        s3, cpu3 = redis_stats(r), [p.cpu() for p in procs]
        m3 = await asyncio.to_thread(presence_costs, procs)
        d = delta(s2, s3)
        changes = arrivals + departures
        churn = {"seconds": round(window, 1), "arrivals": arrivals, "departures": departures,
                 "frames_per_socket_per_s": round(sum(s.frames for s in stable) / len(stable) / window, 3),
                 "presence_bytes_per_socket_per_s": round(sum(s.bytes for s in stable) / len(stable) / window),
                 "server_cpu_pct_of_a_core": [round(100 * (c1 - c0) / window, 1)
                                              for c0, c1 in zip(cpu2, cpu3, strict=True)],
                 "redis_commands_per_change": round(d["commands"] / changes, 2),
                 "redis_scripts_per_change": round(d["scripts"] / changes, 3),
                 "redis_bytes_in_per_change": round(d["in"] / changes),
                 "redis_bytes_out_per_change": round(d["out"] / changes),
                 "stable_sockets_closed": sum(s.closed for s in stable),
                 "presence_per_change": per(m2, m3, changes)}
        print(f"churn: {churn}", flush=True)
        await asyncio.gather(*pending, return_exceptions=True)
        for s in [*stable, *turnover]:
            s.close()
        await asyncio.sleep(0.5)
        result = {"sockets": a.sockets, "churn": a.churn, "server_root": a.server_root or str(common.ROOT),
                  "storm": storm, "churn_phase": churn, "machine": common.machine()}
        result["presence_totals"] = await asyncio.to_thread(presence_costs, procs)
        for p in procs:
            p.stop()
        return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m bench.presence", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sockets", type=int, default=2000)
    p.add_argument("--churn", type=int, default=20, help="arrivals (and departures) per second")
    p.add_argument("--duration", type=int, default=60, help="seconds of churn")
    p.add_argument("--concurrency", type=int, default=200, help="handshakes in flight during the storm")
    p.add_argument("--server-root", default=os.environ.get("BENCH_SERVER_ROOT"),
                   help="run the `server` package of this tree (default: this one)")
    p.add_argument("--name", default="presence")
    a = p.parse_args(argv)
    common.raise_nofile()
    env = Env(db_url=common.create_db())
    try:
        procs = [env.add(server(env.db_url, a.server_root, f"presence-{i}")) for i in range(2)]
        result = asyncio.run(run(a, env, procs))
    finally:
        env.close()
    path = common.write_result(f"{a.name}-{a.sockets}", result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
