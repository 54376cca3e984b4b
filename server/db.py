"""The asyncpg pool and the transaction helper (schema versions: server/migrations)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg

log = logging.getLogger(__name__)

# What asyncpg raises when a connection was killed under a running query (not exported at the top).
InternalClientError = asyncpg.exceptions._base.InternalClientError


# A pooled connection, as the live path takes one: its wait bounded (live/hub.py, Hub.acquire).
Acquire = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]

# Errors that mean "the database is unreachable or went away", answered 503.
UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.QueryCanceledError,
    # A connection killed under a running query leaves asyncpg's protocol in a state it reports this way.
    InternalClientError,
)


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Parley keeps no session state on pooled connections (no LISTEN, no SET, advisory locks are
    transaction-scoped or released explicitly), so skip asyncpg's reset round trip on every release."""


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 20,
                      statement_cache: int = 100) -> asyncpg.Pool:
    """Open the pool; connections are checked on acquire so a restarted server is survived.

    `statement_cache`: PARLEY_DB_STATEMENT_CACHE, the named prepared statements kept per connection; 0 makes
    asyncpg use unnamed statements only, which PgBouncer in transaction mode needs (docs/operations.md)."""
    return await asyncpg.create_pool(
        url,
        reset=_no_reset,
        min_size=min_size,
        max_size=max_size,
        max_inactive_connection_lifetime=300.0,
        command_timeout=30,
        timeout=10,
        statement_cache_size=statement_cache,
        server_settings={"application_name": "parley"},
    )


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One connection, one transaction: everything a write does commits together or not at all."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            yield conn
