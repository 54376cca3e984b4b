"""SSE against websockets: the server's CPU per delivered event, W watchers of one thread, same server, same run.

    python -m bench.transports --watchers 1000 --rate 20 --duration 10 --rounds 3

Starts its own database, the measured `parley serve` and a second parley process that takes the posts (so the
measured process does only fan-out). Then, `--rounds` times, one phase per transport in turn (ws, sse, ws,
sse, …, so a change in the machine's load falls on both): W clients of that transport subscribe to the hot
thread (websockets: `/ws` + `subscribe`; SSE: `GET /api/stream?thread=ID`), R replies/s are posted through
the other process for D seconds, every client is waited for until it holds the thread's last seq, and the
measured process's CPU time (user + system, psutil) over the phase is divided by the event frames the
clients received. Each client checks seq continuity (lost, duplicated). Phases are closed before the next
opens, so the server holds only one transport's clients at a time.

The clients are raw asyncio protocols in load-generator processes: the websocket one is bench/loadgen.py's;
the SSE one reads the HTTP/1.1 response (chunked), splits it into messages and reads a `data:` line's seq the
same way, without parsing JSON. Writes results to bench/results/transports-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import time
from typing import Any

from . import common
from .common import Env, parley_proc
from .fanout import post_loop, print_profile
from .loadgen import EVENT, SEQ, SUBSCRIBED, Pool, Worker, spread

DATA = b"data: "


class SseSock(asyncio.Protocol):
    """One `GET /api/stream?thread=ID` read by hand: status line and headers, then chunked body, then SSE
    messages (blank-line separated); an event's seq read from its `data:` line, continuity checked."""

    def __init__(self, port: int, thread: int) -> None:
        self.port, self.thread = port, thread
        self.transport: asyncio.Transport | None = None
        self.head_done = False
        self.chunked = False
        self.raw = b""       # bytes not yet de-chunked
        self.text = b""      # de-chunked bytes not yet split into messages
        self.subscribed = asyncio.get_running_loop().create_future()
        self.closed = False
        self.last = 0
        self.base = 0
        self.n = 0
        self.dups = 0
        self.gaps = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write((f"GET /api/stream?thread={self.thread} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                         "Accept: text/event-stream\r\n\r\n").encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError("closed before subscribed"))

    def data_received(self, data: bytes) -> None:
        raw = self.raw + data if self.raw else data
        if not self.head_done:
            end = raw.find(b"\r\n\r\n")
            if end < 0:
                self.raw = raw
                return
            head = raw[:end].lower()
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                if not self.subscribed.done():
                    self.subscribed.set_exception(ConnectionError(raw[:200].decode("latin-1")))
                self.transport.close()  # type: ignore[union-attr]
                return
            self.chunked = b"transfer-encoding: chunked" in head
            self.head_done = True
            raw = raw[end + 4:]
        if self.chunked:
            out = []
            pos = 0
            while True:
                eol = raw.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(raw[pos:eol].split(b";", 1)[0], 16)
                if len(raw) < eol + 2 + size + 2:
                    break
                out.append(raw[eol + 2:eol + 2 + size])
                pos = eol + 2 + size + 2
            self.raw = raw[pos:]
            body = b"".join(out)
        else:
            self.raw = b""
            body = raw
        text = self.text + body if self.text else body
        msgs = text.split(b"\n\n")
        self.text = msgs.pop()
        for msg in msgs:
            i = msg.find(DATA)
            if i < 0:
                continue
            payload = msg[i + 6:]
            if payload.startswith(EVENT):
                j = payload.find(SEQ) + 6
                seq = int(payload[j:payload.find(b",", j)])
                if seq <= self.last:
                    self.dups += 1
                else:
                    if self.last and seq != self.last + 1:
                        self.gaps += seq - self.last - 1
                    self.last = seq
                self.n += 1
            elif payload.startswith(SUBSCRIBED) and not self.subscribed.done():
                j = payload.find(SEQ) + 6
                self.last = self.base = int(payload[j:].split(b",")[0].split(b"}")[0])
                self.subscribed.set_result(time.time())


class Clients:
    """One load-generator process: the clients of the current phase."""

    def __init__(self) -> None:
        self.w = Worker()
        self.sse: list[SseSock] = []

    def all(self) -> list[Any]:
        return [*self.w.socks, *self.sse]

    async def open_sse(self, port: int, thread: int, sem: asyncio.Semaphore) -> SseSock | None:
        loop = asyncio.get_running_loop()
        s = SseSock(port, thread)
        async with sem:
            try:
                raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                raw.setblocking(False)
                await loop.sock_connect(raw, ("127.0.0.1", port))
                await loop.create_connection(lambda: s, sock=raw)
                await asyncio.wait_for(s.subscribed, 120)
                return s
            except Exception as exc:
                self.w.errors.append(repr(exc)[:200])
                return None

    async def handle(self, cmd: str, arg: dict[str, Any]) -> Any:
        if cmd == "connect":
            sem = asyncio.Semaphore(arg["concurrency"])
            specs = arg["specs"]
            if arg["kind"] == "ws":
                got: list[Any] = await asyncio.gather(*(self.w.open(0, p, t, None, False, False, sem)
                                                       for p, t in specs))
                self.w.socks.extend(s for s in got if s is not None)
            else:
                got = await asyncio.gather(*(self.open_sse(p, t, sem) for p, t in specs))
                self.sse.extend(s for s in got if s is not None)
            ok = sum(1 for s in got if s is not None)
            return {"ok": ok, "failed": len(specs) - ok, "errors": self.w.errors[:3]}
        if cmd == "mark":
            for s in self.all():
                s.base, s.n, s.dups, s.gaps = s.last, 0, 0, 0
            return True
        if cmd == "progress":
            out: dict[str, int] = {}
            for s in self.all():
                if not s.closed:
                    out[str(s.thread)] = min(out.get(str(s.thread), 1 << 62), s.last)
            return out
        if cmd == "stats":
            final: dict[str, int] = arg["final"]
            socks = self.all()
            return {"clients": len(socks), "received": sum(s.n for s in socks),
                    "lost": sum(max(0, final[str(s.thread)] - s.base - (s.n - s.dups)) for s in socks),
                    "dups": sum(s.dups for s in socks), "gaps": sum(s.gaps for s in socks),
                    "closed": sum(1 for s in socks if s.closed)}
        if cmd == "close":
            for s in self.all():
                if s.transport is not None and not s.closed:
                    s.transport.close()
            await asyncio.sleep(0.2)
            self.w.socks, self.sse = [], []
            return True
        raise ValueError(cmd)


def wait_delivered(pool: Pool, final: dict[str, int], timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        low: dict[str, int] = {}
        for part in pool.call("progress"):
            for k, v in part.items():
                low[k] = min(low.get(k, 1 << 62), v)
        if all(low.get(k, 0) >= v for k, v in final.items()):
            return True
        time.sleep(0.1)
    return False


async def head_seqs(port: int, threads: list[int]) -> dict[str, int]:
    """Each thread's seq, read over HTTP through the poster's pool (a new PostgreSQL connection may be refused
    on a shared server at its max_connections)."""
    http = common.Http(port)
    try:
        out = {}
        for t in threads:
            st, body, _ = await http.request("GET", f"/api/threads/{t}?limit=1")
            assert st == 200, body
            out[str(t)] = json.loads(body)["thread"]["seq"]
        return out
    finally:
        http.close()


COLS = [("round", "round"), ("kind", "transport"), ("clients", "clients"), ("posted", "posted"),
        ("received", "received"), ("lost", "lost"), ("dups", "dup"), ("cpu_s", "server CPU s"),
        ("us_per_event", "µs CPU/event"), ("load1", "load 1 min")]


def run(args: argparse.Namespace) -> dict[str, Any]:
    common.raise_nofile()
    env = Env(common.create_db())
    pool: Pool | None = None
    load_start = os.getloadavg()
    try:
        # Small pools: fan-out needs few connections, and the bench's PostgreSQL may be shared.
        measured = env.add(parley_proc(env.db_url, PARLEY_WS_HEARTBEAT_SECONDS="300", PARLEY_DB_POOL_SIZE="4"))
        poster = env.add(parley_proc(env.db_url, name="parley-poster", PARLEY_DB_POOL_SIZE="8"))
        forum = asyncio.run(common.setup_forum(measured.port, env.db_url, args.threads))
        hot = forum["threads"]
        pool = Pool(args.procs, make=Clients)
        rows = []
        profiles: dict[str, Any] = {}
        kinds = [k.strip() for k in args.kinds.split(",")]
        for rnd in range(1, args.rounds + 1):
            for kind in kinds:
                specs = [(measured.port, hot[i % len(hot)]) for i in range(args.watchers)]
                res = pool.call("connect", [{"kind": kind, "specs": s, "concurrency": args.connect_concurrency}
                                            for s in spread(specs, args.procs)])
                ok = sum(r["ok"] for r in res)
                if ok < args.watchers:
                    raise RuntimeError(f"{kind}: {ok} of {args.watchers} connected: {res[0]['errors']}")
                time.sleep(args.settle)
                pool.call("mark")
                prof = common.Profile(measured.pid, f"transports-{kind}", args.duration) \
                    if args.profile and rnd == 1 else None
                cpu0 = measured.cpu()
                posted = asyncio.run(post_loop(poster.port, forum["cookie"], hot, args.rate, args.duration,
                                               args.body, conns=8))
                final = asyncio.run(head_seqs(poster.port, hot))
                drained = wait_delivered(pool, final, args.drain)
                cpu = measured.cpu() - cpu0
                if prof is not None:
                    profiles[kind] = prof.finish()
                stats = pool.call("stats", {"final": final})
                pool.call("close")
                received = sum(s["received"] for s in stats)
                row = {"round": rnd, "kind": kind, "clients": sum(s["clients"] for s in stats),
                       "posted": posted["posted"], "received": received,
                       "lost": sum(s["lost"] for s in stats), "dups": sum(s["dups"] for s in stats),
                       "gaps": sum(s["gaps"] for s in stats), "closed": sum(s["closed"] for s in stats),
                       "drained": drained, "cpu_s": cpu,
                       # 0 s read is under the CPU clock's tick (10 ms), not free: not measured
                       "us_per_event": cpu / received * 1e6 if received and cpu > 0 else None,
                       "load1": os.getloadavg()[0]}
                rows.append(row)
                print(common.table([row], COLS), flush=True)
                time.sleep(args.settle)
        per = {k: [r["us_per_event"] for r in rows if r["kind"] == k and r["us_per_event"]] for k in kinds}
        med = {k: statistics.median(v) for k, v in per.items() if v}
        ratio = med["sse"] / med["ws"] if "sse" in med and "ws" in med else None
        by_round = {r["round"]: {} for r in rows}  # type: dict[int, dict[str, float]]
        for r in rows:
            if r["us_per_event"]:
                by_round[r["round"]][r["kind"]] = r["us_per_event"]
        round_ratios = [v["sse"] / v["ws"] for v in by_round.values() if "sse" in v and "ws" in v]
        result = {"args": vars(args), "machine": common.machine(), "load_start": load_start,
                  "load_end": os.getloadavg(), "rows": rows, "median_us_per_event": med,
                  "sse_over_ws": ratio, "sse_over_ws_by_round": round_ratios, "profiles": profiles}
        print(common.table(rows, COLS))
        print("median µs server CPU per delivered event: "
              + ", ".join(f"{k} {v:.1f}" for k, v in med.items())
              + (f"; SSE / websocket = {ratio:.2f}×" if ratio else ""))
        if round_ratios:
            print("SSE / websocket by round: " + ", ".join(f"{x:.2f}" for x in round_ratios)
                  + f" (median {statistics.median(round_ratios):.2f}×)")
        for kind, profile in profiles.items():
            print(f"== {kind}")
            print_profile(profile)
        print(f"load average at start {load_start[0]:.1f}, at end {os.getloadavg()[0]:.1f}")
        path = common.write_result(args.name or "transports", result)
        print(f"→ {path.relative_to(common.ROOT)}")
        return result
    finally:
        if pool is not None:
            pool.shutdown()
        env.close(keep_db=args.keep_db)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.transports", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--watchers", "-W", type=int, default=1000, help="clients per phase")
    p.add_argument("--rate", "-R", type=float, default=20, help="replies per second (total)")
    p.add_argument("--duration", "-D", type=float, default=10, help="seconds of posting per phase")
    p.add_argument("--rounds", type=int, default=3, help="ws and sse phases, alternating")
    p.add_argument("--kinds", default="ws,sse", help="the transports of a round, in order")
    p.add_argument("--threads", type=int, default=1, help="hot threads (clients spread over them)")
    p.add_argument("--procs", type=int, default=2, help="load-generator processes")
    p.add_argument("--body", type=int, default=200, help="reply body size (characters)")
    p.add_argument("--settle", type=float, default=2)
    p.add_argument("--drain", type=float, default=60, help="seconds to wait for delivery after the last post")
    p.add_argument("--connect-concurrency", type=int, default=200)
    p.add_argument("--profile", action="store_true", help="py-spy the measured process in each first-round phase")
    p.add_argument("--name", default="", help="result file prefix")
    p.add_argument("--keep-db", action="store_true")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run(parser().parse_args(argv))


if __name__ == "__main__":
    main()
