"""The migration runner (server/migrations): versions, the revision-1 baseline, --check, newer databases,
concurrent runs, and schema.sql as the exact picture of the migrated schema."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import asyncpg
import pytest

from server import migrations
from support.databases import create_empty_database, drop_database
from support.ports import free_port
from support.processes import PARLEY, ROOT


async def _run(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def query(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    return asyncio.run(_run(url, sql, *args))


def migrate(url: str, target: int | None = None) -> list[migrations.Migration]:
    async def run() -> list[migrations.Migration]:
        conn = await asyncpg.connect(url)
        try:
            return await migrations.migrate(conn, target)
        finally:
            await conn.close()
    return asyncio.run(run())


def apply_sql(url: str, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()
    asyncio.run(run())


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update({"DATABASE_URL": url, "PARLEY_SECRET": "test-secret-0123456789abcdef"})
    return subprocess.run([*PARLEY, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def catalog(url: str) -> dict[str, set[tuple[object, ...]]]:
    """Tables, columns, indexes and constraints of the public schema, in comparable form."""
    return {
        "columns": {tuple(r) for r in query(url, """
            SELECT table_name, column_name, data_type, is_nullable, column_default
            FROM information_schema.columns WHERE table_schema = 'public'""")},
        "indexes": {tuple(r) for r in query(url, """
            SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'""")},
        "constraints": {tuple(r) for r in query(url, """
            SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
            FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'""")},
        "sequences": {tuple(r) for r in query(url, """
            SELECT sequence_name, data_type FROM information_schema.sequences WHERE sequence_schema = 'public'""")},
    }


def test_migrations_are_numbered_without_gaps_and_start_with_revision_1():
    """The package ships 0001… in order, and 0001 is the revision-1 schema (its tables, idempotent DDL)."""
    found = migrations.available()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert found[0].name == "initial" and "CREATE TABLE IF NOT EXISTS threads" in found[0].sql


def test_empty_database_migrated_to_head_has_exactly_the_schema_of_schema_sql(pg_admin_url, empty_db):
    """0001 → head on an empty database gives the same tables, columns, indexes and constraints as schema.sql."""
    other = create_empty_database(pg_admin_url)
    try:
        migrate(empty_db)
        apply_sql(other, (ROOT / "schema.sql").read_text())
        migrated, described = catalog(empty_db), catalog(other)
        for part in migrated:
            assert migrated[part] == described[part], (
                f"{part}: only in the migrated database {sorted(map(str, migrated[part] - described[part]))}; "
                f"only in schema.sql {sorted(map(str, described[part] - migrated[part]))}")
    finally:
        drop_database(pg_admin_url, other)


def test_versions_are_recorded_and_a_second_run_applies_nothing(empty_db):
    """Every migration is recorded once in schema_migrations; migrating again applies nothing."""
    first = migrate(empty_db)
    assert [m.version for m in first] == list(range(1, migrations.head() + 1))
    assert migrate(empty_db) == []
    rows = query(empty_db, "SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in rows] == list(range(1, migrations.head() + 1))


def test_a_revision_1_database_is_recognised_and_upgraded_in_place(empty_db):
    """Tables of revision 1 without a version table: recognised as 0001, then upgraded, data kept."""
    apply_sql(empty_db, migrations.available()[0].sql)  # what revision 1's schema.sql made
    apply_sql(empty_db, "INSERT INTO users (username, display_name, password_hash) VALUES ('old', 'Old', 'x')")
    assert not query(empty_db, "SELECT 1 FROM pg_tables WHERE tablename = 'schema_migrations'")
    applied = migrate(empty_db)
    assert [m.version for m in applied] == list(range(1, migrations.head() + 1))
    assert [r["username"] for r in query(empty_db, "SELECT username FROM users")] == ["old"]
    assert query(empty_db, "SELECT max(version) AS v FROM schema_migrations")[0]["v"] == migrations.head()


def test_concurrent_migrations_apply_each_step_once(empty_db):
    """Four connections migrating one empty database at once: each migration runs exactly once."""
    async def all_at_once() -> list[list[migrations.Migration]]:
        conns = [await asyncpg.connect(empty_db) for _ in range(4)]
        try:
            return await asyncio.gather(*(migrations.migrate(c) for c in conns))
        finally:
            for c in conns:
                await c.close()
    results = asyncio.run(all_at_once())
    versions = sorted(m.version for applied in results for m in applied)
    assert versions == list(range(1, migrations.head() + 1))


def test_no_advisory_lock_outlives_a_migration(empty_db):
    """The migration lock is transaction-scoped: after migrating, the connection holds no advisory lock."""
    async def run() -> int:
        conn = await asyncpg.connect(empty_db)
        try:
            await migrations.migrate(conn)
            return await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        finally:
            await conn.close()
    assert asyncio.run(run()) == 0


def test_cancelled_migration_leaves_no_lock_and_no_half_step(empty_db):
    """A migration cancelled while waiting for the lock leaves nothing held; a later run completes."""
    async def run() -> int:
        holder = await asyncpg.connect(empty_db)
        waiter = await asyncpg.connect(empty_db)
        try:
            tr = holder.transaction()
            await tr.start()
            await holder.execute("SELECT pg_advisory_xact_lock($1)", migrations.LOCK)
            task = asyncio.create_task(migrations.migrate(waiter))
            await asyncio.sleep(0.5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await tr.rollback()
            return await holder.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                             " AND database = (SELECT oid FROM pg_database"
                                             " WHERE datname = current_database())")
        finally:
            await holder.close()
            await waiter.close()
    assert asyncio.run(run()) == 0
    assert len(migrate(empty_db)) == migrations.head()


def test_migrate_check_names_what_is_pending_then_passes(empty_db):
    """`parley migrate --check` exits 1 naming the pending migrations, and 0 once `parley migrate` ran."""
    apply_sql(empty_db, migrations.available()[0].sql)
    r = cli(empty_db, "migrate", "--check")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "pending" in r.stdout and "0002_" in r.stdout and "0001_" not in r.stdout
    assert not query(empty_db, "SELECT 1 FROM pg_tables WHERE tablename = 'schema_migrations'")  # changed nothing
    r = cli(empty_db, "migrate")
    assert r.returncode == 0, r.stderr
    assert "0002_" in r.stderr  # the log line of what was applied
    r = cli(empty_db, "migrate", "--check")
    assert r.returncode == 0 and "up to date" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("command", [["migrate"], ["migrate", "--check"], ["serve", "--port", "PORT"]])
def test_a_database_newer_than_the_code_stops_with_one_line(empty_db, command):
    """A database at a version this code does not know: serve and migrate exit 2 with one line, change nothing."""
    migrate(empty_db)
    future = migrations.head() + 7
    apply_sql(empty_db, f"INSERT INTO schema_migrations (version, name) VALUES ({future}, 'from_the_future')")
    r = cli(empty_db, *(str(free_port()) if a == "PORT" else a for a in command))
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and " INFO " not in ln]
    assert len(lines) == 1 and f"version {future}" in lines[0] and "Traceback" not in r.stderr, r.stderr
    rows = query(empty_db, "SELECT max(version) AS v FROM schema_migrations")
    assert rows[0]["v"] == future


def test_migration_files_are_inside_the_package():
    """The migrations are package data next to the runner (what a wheel carries), not files of the checkout."""
    here = Path(migrations.__file__).parent
    assert sorted(p.name for p in here.glob("*.sql")) == [f"{m.version:04d}_{m.name}.sql" for m in
                                                          migrations.available()]
