"""A PostgreSQL primary and a streaming replica of it, both private to the test (initdb in a temporary folder;
pg_basebackup -R for the replica; as root, run as the `postgres` system user), and a Parley process using them.

The shared server at 127.0.0.1:5432 is not used: a replica of it would copy every other suite's databases, and
the failover test must kill the primary."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from faults.fault_support import ThrowawayPostgres

from support.ports import free_port
from support.processes import ServerProcess


class ReplicaOf(ThrowawayPostgres):
    """A hot standby of `primary`: pg_basebackup -R (streaming, with its primary_conninfo) on a spare port."""

    def __init__(self, primary: ThrowawayPostgres) -> None:  # noqa: D107 - no initdb: a copy of the primary
        self.bindir = primary.bindir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="parley-replica-pg-"))
        self.pgdata = self.dir / "data"
        self.sockdir = self.dir / "sock"
        self.sockdir.mkdir()
        self.user = primary.user
        if self.user is not None:
            import pwd
            pw = pwd.getpwnam(self.user)
            for p in (self.dir, self.sockdir):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-D",
                  str(self.pgdata), "-R", "-X", "stream", "--no-sync", "-c", "fast")

    def promote(self) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "30", "promote")


class Pair:
    """A primary and its replica, started."""

    def __init__(self) -> None:
        self.primary = ThrowawayPostgres().start()
        try:
            self.replica = ReplicaOf(self.primary).start()
        except BaseException:
            self.primary.destroy()
            raise

    def failover_url(self) -> str:
        """Both servers in one URL: asyncpg connects to whichever accepts writes (after a promotion, the replica)."""
        return (f"postgresql://postgres@127.0.0.1:{self.primary.port},127.0.0.1:{self.replica.port}/postgres"
                "?target_session_attrs=read-write")

    def destroy(self) -> None:
        self.replica.destroy()
        self.primary.destroy()


def parley(pair: Pair, redis_url: str, tmp: Path, **env: str) -> ServerProcess:
    """A started `parley serve` writing to the pair's primary and reading guests' pages from its replica."""
    return ServerProcess({"DATABASE_URL": pair.failover_url(), "REDIS_URL": redis_url,
                          "PARLEY_DATABASE_REPLICA_URLS": pair.replica.url, "PARLEY_RATE_LIMITS": "off",
                          "PARLEY_DATA_DIR": str(tmp), "PARLEY_DEMO": "off", **env}).start()


async def sql(url: str, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


def samples(url: str, name: str) -> dict[str, float]:
    """Every sample of one metric family from /metrics, by its label text ('' if none)."""
    out: dict[str, float] = {}
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            labels = head[len(name):]
            if labels.startswith("{") or labels == "":
                out[labels.strip("{}")] = float(value)
    return out


def temp_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="parley-replica-data-"))


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


__all__ = ["Pair", "ReplicaOf", "parley", "remove", "samples", "sql", "subprocess", "temp_dir"]
