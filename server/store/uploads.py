"""Uploads: one user's rows for images kept once in the store (server/uploads/), quotas, what refers to them,
and the deletion of those nothing refers to. upload_refs is kept by a trigger on posts (migration 0011)."""

from __future__ import annotations

from typing import Any

import asyncpg

from ..errors import NotFound, RateLimited

# Per user and rolling day (CONTRACT "Pictures"): past either, 429.
DAY_COUNT = 50
DAY_BYTES = 100 * 1024 * 1024
KEEP_UNREFERENCED_HOURS = 24

# Upload writers take this lock shared (their object and their row appear together), the cleanup takes it
# alone while it deletes rows and then the objects no row names (no new row can name one meanwhile). Keyed by
# this database's oid like the housekeeping rounds (store/meta.py): advisory locks are server-wide.
LOCK = 0x70610011
_DB_KEY = "(SELECT (oid::bigint % 2147483647)::int FROM pg_database WHERE datname = current_database())"

COLUMNS = ("id, owner_id, sha256, ext, content_type, size, width, height, thumb_sha256, thumb_width, "
           "thumb_height, avatar_sha256, created_at")


def url(sha256: str, ext: str) -> str:
    return f"/uploads/{sha256}.{ext}"


def upload_dict(row: asyncpg.Record) -> dict[str, Any]:
    """The contract's Upload."""
    return {"id": row["id"], "url": url(row["sha256"], row["ext"]),
            "thumbnail_url": url(row["thumb_sha256"], row["ext"]), "content_type": row["content_type"],
            "size": row["size"], "width": row["width"], "height": row["height"], "sha256": row["sha256"]}


async def lock_shared(conn: asyncpg.Connection) -> None:
    await conn.execute(f"SELECT pg_advisory_xact_lock_shared({_DB_KEY}, $1)", LOCK)


async def mine(conn: asyncpg.Connection | asyncpg.Pool, owner_id: int, sha256: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM uploads WHERE owner_id = $1 AND sha256 = $2",
                               owner_id, sha256)


async def check_quota(conn: asyncpg.Connection | asyncpg.Pool, owner_id: int, incoming: int) -> None:
    """429 when the user's uploads of the last day, with `incoming` more bytes, pass DAY_COUNT or DAY_BYTES."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(size), 0)::bigint AS bytes FROM uploads"
        " WHERE owner_id = $1 AND created_at > now() - interval '1 day'", owner_id)
    if row["n"] >= DAY_COUNT:
        raise RateLimited(3600, f"At most {DAY_COUNT} uploads a day; try again later")
    if row["bytes"] + incoming > DAY_BYTES:
        raise RateLimited(3600, f"At most {DAY_BYTES // (1024 * 1024)} MiB of uploads a day; try again later")


async def create(conn: asyncpg.Connection, owner_id: int, *, sha256: str, ext: str, content_type: str, size: int,
                 width: int, height: int, thumb_sha256: str, thumb_width: int,
                 thumb_height: int) -> tuple[asyncpg.Record, bool]:
    """(row, created): the user's row for these bytes, made now (after the quota check, serialised per user)
    or the one they already had."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('parley:upload:' || $1::bigint, 0))", owner_id)
    row = await mine(conn, owner_id, sha256)
    if row is not None:
        return row, False
    await check_quota(conn, owner_id, size)
    row = await conn.fetchrow(
        f"""INSERT INTO uploads (owner_id, sha256, ext, content_type, size, width, height, thumb_sha256,
                                 thumb_width, thumb_height)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}""",
        owner_id, sha256, ext, content_type, size, width, height, thumb_sha256, thumb_width, thumb_height)
    return row, True


async def by_id(conn: asyncpg.Connection | asyncpg.Pool, upload_id: int) -> asyncpg.Record:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM uploads WHERE id = $1", upload_id)
    if row is None:
        raise NotFound(f"No upload {upload_id}", field="upload_id")
    return row


async def set_avatar_crop(conn: asyncpg.Connection, upload_id: int, sha256: str) -> None:
    await conn.execute("UPDATE uploads SET avatar_sha256 = $2 WHERE id = $1", upload_id, sha256)


async def set_avatar(conn: asyncpg.Connection, user_id: int, upload_id: int | None,
                     avatar_url: str | None) -> asyncpg.Record:
    """The user's avatar (an upload and its crop's URL), or none; the users row after."""
    return await conn.fetchrow("UPDATE users SET avatar_upload_id = $2, avatar_url = $3 WHERE id = $1 RETURNING *",
                               user_id, upload_id, avatar_url)


async def dimensions(conn: asyncpg.Connection | asyncpg.Pool, shas: list[str]) -> dict[str, tuple[int, int]]:
    """Width and height of each stored file (an image or a thumbnail) named by its SHA-256."""
    if not shas:
        return {}
    out: dict[str, tuple[int, int]] = {}
    for r in await conn.fetch(
            "SELECT sha256, width, height, thumb_sha256, thumb_width, thumb_height FROM uploads"
            " WHERE sha256 = any($1::text[]) OR thumb_sha256 = any($1::text[])", shas):
        out[r["sha256"]] = (r["width"], r["height"])
        out[r["thumb_sha256"]] = (r["thumb_width"], r["thumb_height"])
    return out


async def delete_unreferenced(conn: asyncpg.Connection, batch: int,
                              hours: float = KEEP_UNREFERENCED_HOURS) -> tuple[int, list[str]] | None:
    """Inside the caller's transaction, under the cleanup lock (None: another process holds it): delete at
    most `batch` uploads older than `hours` that no post and no avatar refers to. Answers how many, and the
    store's keys that no upload names any more (the caller deletes those objects before COMMIT)."""
    if not await conn.fetchval(f"SELECT pg_try_advisory_xact_lock({_DB_KEY}, $1)", LOCK):
        return None
    gone = await conn.fetch(
        """
        DELETE FROM uploads WHERE id IN (
            SELECT u.id FROM uploads u
            WHERE u.created_at < now() - make_interval(secs => $2 * 3600)
              AND NOT EXISTS (SELECT 1 FROM upload_refs r WHERE r.sha256 IN (u.sha256, u.thumb_sha256))
              AND NOT EXISTS (SELECT 1 FROM users WHERE avatar_upload_id = u.id)
            LIMIT $1)
        RETURNING sha256, thumb_sha256, avatar_sha256, ext""", batch, hours)
    if not gone:
        return 0, []
    candidates: dict[str, str] = {}
    for r in gone:
        candidates[r["sha256"]] = f"{r['sha256']}.{r['ext']}"
        candidates[r["thumb_sha256"]] = f"{r['thumb_sha256']}.{r['ext']}"
        if r["avatar_sha256"]:
            candidates[r["avatar_sha256"]] = f"{r['avatar_sha256']}.{'png' if r['ext'] == 'gif' else r['ext']}"
    still = {r["s"] for r in await conn.fetch(
        """SELECT unnest(ARRAY[sha256, thumb_sha256, avatar_sha256]) AS s FROM uploads
           WHERE sha256 = any($1::text[]) OR thumb_sha256 = any($1::text[]) OR avatar_sha256 = any($1::text[])""",
        list(candidates))}
    return len(gone), [key for sha, key in candidates.items() if sha not in still]
