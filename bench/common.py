"""Shared bench machinery: a throw-away database, server processes, a raw HTTP client, stats.

Everything runs on loopback. Servers are real `parley serve` processes (and the reference server);
the load generators live in bench/loadgen.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.support import databases, processes
from tests.support.ports import free_port

ROOT = processes.ROOT
RESULTS = ROOT / "bench" / "results"
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1/postgres")
# Redis: a private redis-server per bench run unless BENCH_REDIS_URL is set, so other traffic on a shared
# Redis (a test suite, another bench) stays out of the figures.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "")
PARLEY = processes.PARLEY


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "mem_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "kernel": platform.release(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "loadavg": os.getloadavg()}


def postgres_cpu() -> float:
    """CPU seconds (user + system) used so far by every PostgreSQL process on this machine: the database's
    share of a workload (its backends, WAL writer, checkpointer), read before and after."""
    total = 0.0
    for p in psutil.process_iter(["name"]):
        if p.info["name"] in ("postgres", "postmaster"):
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass  # a backend that ended meanwhile
    return total


class BackendCpu:
    """CPU seconds of the PostgreSQL backends serving one database (pg_stat_activity), from start() to
    stop(): that database's own share of the server's work, whatever else the shared server runs. A backend
    that opened meanwhile counts from its start; the WAL writer and checkpointer are not in it."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.before: dict[int, float] = {}

    def _pids(self) -> list[int]:
        for attempt in range(10):  # a shared server at max_connections (other benches) frees one soon
            try:
                rows = asyncio.run(db_fetch(self.db_url, "SELECT pid FROM pg_stat_activity WHERE datname = "
                                            "current_database() AND pid <> pg_backend_pid()"))
                return [r["pid"] for r in rows]
            except Exception:
                if attempt == 9:
                    raise
                time.sleep(0.5)
        return []

    @staticmethod
    def _cpu(pid: int) -> float | None:
        try:
            t = psutil.Process(pid).cpu_times()
            return t.user + t.system
        except psutil.Error:
            return None

    def start(self) -> BackendCpu:
        self.before = {pid: c for pid in self._pids() if (c := self._cpu(pid)) is not None}
        return self

    def stop(self) -> float:
        total = 0.0
        for pid in self._pids():
            c = self._cpu(pid)
            if c is not None:
                total += c - self.before.get(pid, 0.0)
        return total


def tree_cpu(ps: psutil.Process) -> float:
    """CPU seconds (user + system) of a process and every process under it, now."""
    total = 0.0
    for p in [ps, *ps.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def pin(pid: int, cpus: set[int] | None) -> None:
    if cpus:
        try:
            os.sched_setaffinity(pid, cpus)
        except OSError:
            pass


# -- database ---------------------------------------------------------------

def create_db_empty() -> str:
    """A throw-away database with nothing in it (the caller migrates it as far as it needs)."""
    return databases.create_empty_database(PG_ADMIN, "parley_bench")


def create_db() -> str:
    """A throw-away database with every migration applied."""
    return databases.create_database(PG_ADMIN, "parley_bench")


def drop_db(url: str) -> None:
    databases.drop_database(PG_ADMIN, url)


async def db_fetch(url: str, sql: str, *args: Any) -> list[Any]:
    import asyncpg
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def db_stats(url: str) -> dict[str, int]:
    """Statements that reached PostgreSQL for this database (xact_commit ≈ one per autocommit query)."""
    name = databases.db_name(url)
    rows = asyncio.run(db_fetch(
        url, "SELECT xact_commit, tup_returned, tup_fetched FROM pg_stat_database WHERE datname = $1", name))
    ev = asyncio.run(db_fetch(url, "SELECT coalesce(idx_scan,0) AS idx, coalesce(seq_scan,0) AS seq "
                                   "FROM pg_stat_user_tables WHERE relname = 'thread_events'"))
    r = rows[0]
    return {"xact_commit": r["xact_commit"], "thread_events_scans": (ev[0]["idx"] + ev[0]["seq"]) if ev else 0}


def db_backend_cpu(url: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to this database (pid → user + system):
    the database's share of a workload, read before and after (a backend that started between counts
    from 0; one that ended between is lost, so keep pools open across the measurement)."""
    name = databases.db_name(url)
    pids = [r["pid"] for r in asyncio.run(db_fetch(
        url, "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name))]
    out: dict[int, float] = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system
        except psutil.Error:
            pass
    return out


# -- processes ----------------------------------------------------------------

class Proc:
    """A server process we started (parley or reference): CPU and memory read through psutil."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int, cpus: set[int] | None = None,
                 ready: str = "/healthz", cwd: Path = ROOT) -> None:
        self.name, self.cmd, self.env, self.port, self.cpus, self.ready = name, cmd, env, port, cpus, ready
        self.cwd = cwd  # another checkout runs older code (bench.search's "before")
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "logs").mkdir(exist_ok=True)
        self.log_path = RESULTS / "logs" / f"{name}-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None

    def start(self, timeout: float = 30) -> Proc:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env={**os.environ, **self.env}, stdout=log,
                                     stderr=subprocess.STDOUT, preexec_fn=raise_nofile)
        self.ps = psutil.Process(self.proc.pid)
        pin(self.proc.pid, self.cpus)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}; see {self.log_path}")
            try:
                if self.ready is None:
                    with socket.create_connection(("127.0.0.1", self.port), 0.5):
                        return self
                import httpx
                if httpx.get(f"http://127.0.0.1:{self.port}{self.ready}", timeout=1).status_code == 200:
                    return self
            except Exception:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready; see {self.log_path}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu(self) -> float:
        assert self.ps is not None
        t = self.ps.cpu_times()
        return t.user + t.system

    def rss(self) -> int:
        assert self.ps is not None
        return self.ps.memory_info().rss

    def peak_rss(self) -> int:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_redis: Proc | None = None


def redis_url() -> str:
    """The bench's Redis: BENCH_REDIS_URL, or a redis-server of our own (stopped at exit)."""
    global REDIS_URL, _redis
    if REDIS_URL:
        return REDIS_URL
    port = free_port()
    _redis = Proc("redis", [processes.redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                            "--appendonly", "no", "--client-output-buffer-limit", "pubsub 32mb 8mb 60"], {}, port,
                  ready=None).start()
    import atexit
    atexit.register(_redis.stop)
    REDIS_URL = f"redis://127.0.0.1:{port}/0"
    return REDIS_URL


def parley_proc(db_url: str, port: int | None = None, cpus: set[int] | None = None, name: str = "parley",
                cwd: Path = ROOT, **env: str) -> Proc:
    port = port or free_port()
    data = tempfile.mkdtemp(prefix="parley-bench-data-")
    base = {"DATABASE_URL": db_url, "REDIS_URL": redis_url(), "PARLEY_RATE_LIMITS": "off",
            "PARLEY_MAX_CONNECTIONS_PER_IP": "100000", "PARLEY_DATA_DIR": data,
            "PARLEY_SECRET": "bench-secret-0123456789abcdef0123"}
    base.update(env)
    return Proc(name, [*PARLEY, "serve", "--port", str(port)], base, port, cpus, cwd=cwd)


def reference_proc(port: int | None = None, cpus: set[int] | None = None) -> Proc:
    port = port or free_port()
    return Proc("reference", [sys.executable, "-m", "bench.reference_server", "--port", str(port),
                              "--redis", redis_url()], {}, port, cpus, ready=None)


def floor_proc(db_url: str, author: int | list[int], port: int | None = None, cpus: set[int] | None = None,
               pool: int = 20, reset: bool = True, ordered: bool = False, statement: bool = False) -> Proc:
    """bench/write_floor.py: the write path's floor on the same database and Redis as parley_proc's."""
    port = port or free_port()
    authors = [author] if isinstance(author, int) else author
    return Proc("floor", [sys.executable, "-m", "bench.write_floor", "--port", str(port), "--database", db_url,
                          "--redis", redis_url(), *(x for a in authors for x in ("--author", str(a))),
                          "--pool", str(pool), *([] if reset else ["--no-reset"]),
                          *(["--ordered"] if ordered else []), *(["--statement"] if statement else [])],
                {}, port, cpus)


# -- a small keep-alive HTTP/1.1 client (cheap enough to generate 1000s of requests/s) --------------

class Http:
    def __init__(self, port: int, cookie: str | None = None) -> None:
        self.port, self.cookie = port, cookie
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, dict[str, str]]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        data = json.dumps(body).encode() if body is not None else b""
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", f"Content-Length: {len(data)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        if self.cookie:
            head.append(f"Cookie: parley_session={self.cookie}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        assert self.reader is not None
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            raise
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                k = k.strip().lower()
                headers[k] = (headers[k] + "\n" + v.strip()) if k in headers else v.strip()
        n = int(headers.get("content-length", "0"))
        payload = await self.reader.readexactly(n) if n else b""
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, payload, headers

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.writer = self.reader = None


_COOKIE = re.compile(r"parley_session=([^;]+)")


async def make_user(port: int, username: str | None = None) -> tuple[str, dict[str, Any]]:
    http = Http(port)
    username = username or f"b{uuid.uuid4().hex[:12]}"
    st, body, headers = await http.request("POST", "/api/users", {"username": username,
                                                                   "password": "bench password 123"})
    http.close()
    assert st == 201, body
    m = _COOKIE.search(headers.get("set-cookie", ""))
    assert m, headers
    return m.group(1), json.loads(body)["user"]


async def setup_forum(port: int, db_url: str, threads: int = 1) -> dict[str, Any]:
    """A moderator, a category and `threads` threads. Returns {cookie, user, category, threads:[ids]}."""
    cookie, user = await make_user(port)
    await db_fetch(db_url, "UPDATE users SET is_moderator = true WHERE id = $1", user["id"])
    http = Http(port, cookie)
    slug = f"bench-{uuid.uuid4().hex[:6]}"
    st, body, _ = await http.request("POST", "/api/categories", {"slug": slug, "name": "Bench"})
    assert st == 201, body
    ids = []
    for i in range(threads):
        st, body, _ = await http.request("POST", "/api/threads", {"category": slug, "title": f"Hot thread {i}",
                                                                  "body": "Benchmark question"})
        assert st == 201, body
        ids.append(json.loads(body)["thread"]["id"])
    http.close()
    return {"cookie": cookie, "user": user, "category": slug, "threads": ids}


async def metric(port: int, name: str) -> float:
    http = Http(port)
    st, body, _ = await http.request("GET", "/metrics")
    http.close()
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name) and not line.startswith("#"):
            key = line.split()[0]
            if key == name or key == name + "_total" or key.startswith(name + "{"):
                total += float(line.split()[-1])
    return total


# -- stats --------------------------------------------------------------------

def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


def merge_parts(parts: list[dict[str, Any]]) -> tuple[list[float], dict[str, int], float]:
    """The load processes' answers ({lat: array('f') bytes, codes, elapsed}) as one: latencies, status
    counts, and the longest elapsed time."""
    lat = array("f")
    codes: dict[str, int] = {}
    for part in parts:
        lat.frombytes(part["lat"])
        for k, v in part["codes"].items():
            codes[k] = codes.get(k, 0) + v
    return list(lat), codes, max(part["elapsed"] for part in parts)


def summary_ms(values: list[float]) -> dict[str, float | None]:
    values.sort()
    return {"p50_ms": pct(values, 50), "p99_ms": pct(values, 99), "max_ms": values[-1] if values else None,
            "n": len(values)}


def write_result(kind: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"workload": kind, "machine": machine(), **result}
    path = RESULTS / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    return path


def fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(rows: list[dict[str, Any]], cols: list[tuple[str, str]]) -> str:
    head = [c[1] for c in cols]
    body = [[fmt(r.get(c[0])) for c in cols] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    out = [" | ".join(h.ljust(w) for h, w in zip(head, widths)),
           "-+-".join("-" * w for w in widths)]
    out += [" | ".join(v.rjust(w) for v, w in zip(b, widths)) for b in body]
    return "\n".join(out)


@dataclass
class Env:
    """The servers of one bench run."""

    db_url: str
    procs: list[Proc] = field(default_factory=list)

    def add(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        return proc.start()

    def close(self, keep_db: bool = False) -> None:
        for p in reversed(self.procs):
            p.stop()
        if not keep_db:
            drop_db(self.db_url)


def ensure_services() -> None:
    if shutil.which("pg_isready"):
        subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"], check=False)


# -- profiles (py-spy) ----------------------------------------------------------

class Profile:
    """py-spy record of a server process for `duration` s: collapsed stacks + an SVG flame graph."""

    def __init__(self, pid: int, name: str, duration: float, rate: int = 250, native: bool = False) -> None:
        pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.raw = RESULTS / f"profile-{name}-{stamp}.txt"
        self.svg = RESULTS / f"profile-{name}-{stamp}.svg"
        # --nonblocking reads the stacks without pausing the server, and can charge a coroutine's frame after it
        # suspended (bench/README.md, "The reply's session cache"); `native` pauses it for each sample (the
        # run's latencies are then not the server's) and adds C frames: what bench.profile_ledger reads.
        common = [pyspy, "record", "--pid", str(pid), "--duration", str(int(duration)), "--rate", str(rate),
                  "--native" if native else "--nonblocking"]
        self.procs = [subprocess.Popen([*common, "--format", "raw", "-o", str(self.raw)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]

    def finish(self, top: int = 25) -> dict[str, Any]:
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        return summarize_profile(self.raw, top)


def summarize_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    selfc: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {"error": f"no profile at {path}"}
    for line in lines:
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        count = int(n)
        total += count
        frames = [re.sub(r":\d+\)$", ")", re.sub(r" \((.*/)?(site-packages/|lib/python3\.\d+/)?", " (", f))
                  for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if frames:
            selfc[frames[-1]] = selfc.get(frames[-1], 0) + count
        for f in set(frames):
            incl[f] = incl.get(f, 0) + count

    def rank(d: dict[str, int]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top]]
    return {"samples": total, "file": str(path.resolve().relative_to(ROOT)), "self": rank(selfc),
            "inclusive": rank(incl)}
