"""Versioned schema migrations: numbered SQL files in this package, applied in order.

See docs/operations.md, "Upgrading". The database records what is applied in
`schema_migrations`. Each migration runs in its own transaction under a
transaction-level advisory lock, so two processes migrating at once apply each
migration exactly once (the second waits, then finds it done), and a start-up
that is cancelled half-way holds no lock afterwards. A database made by revision
1 (its tables exist, the version table does not) is recognised as being at 0001.

Rules for a new migration: a new file `NNNN_what.sql` with the next number; never
edit one that has been released; update `schema.sql` (the reader's view of the
whole schema, checked against the migrated catalog by the test suite); add an
upgrade test in tests/migrations/ that fills a database at the version before and
checks the data after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

# Any constant works; it only has to be the same in every Parley process.
LOCK = 0x7061726C6579  # "parley"

_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")

# The runner's own bookkeeping: created by the runner itself (not by a migration), so that
# detecting a revision-1 database is "tables exist, this one does not".
VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


class NewerDatabase(Exception):
    """The database is at a version this code does not know: refuse to touch it."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """Every migration shipped in the package, in order; numbers run 1, 2, 3… with no gap."""
    found = []
    for entry in resources.files(__name__).iterdir():
        m = _NAME.fullmatch(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    if [mig.version for mig in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..N without gaps, found {[m.version for m in found]}")
    return found


def head() -> int:
    return len(available())


async def current_version(conn: asyncpg.Connection) -> int:
    """The version the database is at: 0 when empty, 1 for a revision-1 database without a version table."""
    if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        version = await conn.fetchval("SELECT max(version) FROM schema_migrations")
        if version is not None:
            return int(version)
    # Revision 1 made these tables and no version table.
    return 1 if await conn.fetchval("SELECT to_regclass('threads') IS NOT NULL") else 0


async def pending(conn: asyncpg.Connection) -> list[Migration]:
    """What `migrate` would apply; raises NewerDatabase when the database is ahead of the code."""
    migrations = available()
    version = await current_version(conn)
    if version > len(migrations):
        raise NewerDatabase(f"the database schema is at version {version}, newer than this Parley "
                            f"(which knows up to {len(migrations)}): upgrade Parley, or restore a backup")
    return migrations[version:]


async def migrate(conn: asyncpg.Connection, target: int | None = None) -> list[Migration]:
    """Apply the pending migrations in order, each in its own transaction; returns those applied here.

    `target` stops at that version (upgrade tests build a database as an earlier release left it)."""
    applied: list[Migration] = []
    migrations = available()
    stop = len(migrations) if target is None else target
    while True:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK)
            await conn.execute(VERSION_TABLE)
            recorded = await conn.fetchval("SELECT max(version) FROM schema_migrations")
            if recorded is None and await conn.fetchval("SELECT to_regclass('threads') IS NOT NULL"):
                # A revision-1 database: 0001 is exactly its schema and idempotent, so running it
                # again is harmless and fills in anything an even older release lacked.
                recorded = 0
            version = int(recorded or 0)
            if version > len(migrations):
                raise NewerDatabase(f"the database schema is at version {version}, newer than this Parley "
                                    f"(which knows up to {len(migrations)}): upgrade Parley, or restore a backup")
            if version >= stop:
                return applied
            step = migrations[version]
            await conn.execute(step.sql)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                               step.version, step.name)
            applied.append(step)
