"""A real 3-node Redis Cluster for the tests in this folder (helpers live in cluster_support.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Make cluster_support importable whatever pytest's import mode is.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster_support import RedisClusterNodes, binaries  # noqa: E402


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterNodes]:
    """Three redis-server nodes in cluster mode (no replicas) on spare loopback ports, in temp folders."""
    found = binaries()
    if isinstance(found, str):
        pytest.skip(f"Redis Cluster tests need Redis 7: {found}")
    cluster = RedisClusterNodes(*found)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
