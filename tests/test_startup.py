"""What a start costs (bench/README.md "Start-up"): a process imports the libraries of optional features only
when it uses them, so importing the app and running its start-up leaves them out of sys.modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from argon2.exceptions import VerifyMismatchError

from server import auth
from support.databases import create_database, drop_database
from support.processes import ROOT

# Each imported where its feature runs: single sign-on (authlib, joserfc), a webhook's first send (aiohttp), a
# spam checker (httpx, which brings rich), the image workers (Pillow), the first mail composed (jinja2), the
# reply-by-mail listener (aiosmtpd, mailparser_reply), the first e-mail address (email_validator), the first
# render (markdown_it).
DEFERRED = ["authlib", "joserfc", "aiohttp", "httpx", "rich", "PIL", "jinja2", "aiosmtpd", "mailparser_reply",
            "email_validator", "markdown_it"]

START = """
import asyncio, json, sys
from asgi_lifespan import LifespanManager
from server.app import create_app

async def main() -> None:
    imported = {"import": sorted(m for m in DEFERRED if m in sys.modules)}
    async with LifespanManager(create_app(), startup_timeout=60, shutdown_timeout=30):
        imported["start-up"] = sorted(m for m in DEFERRED if m in sys.modules)
    print(json.dumps(imported))

DEFERRED = %r
asyncio.run(main())
"""


@pytest.fixture(scope="module")
def empty_forum(pg_admin_url: str) -> Iterator[str]:
    """A database of its own: nothing queued (a webhook delivery or a mail due would rightly load its library)."""
    url = create_database(pg_admin_url, "parley_startup")
    yield url
    drop_database(pg_admin_url, url)


def test_a_start_leaves_optional_libraries_unimported(empty_forum: str, redis_url: str, tmp_path) -> None:
    """Importing server.app and running the app's whole start-up (database, Redis, render workers, mailer,
    webhook deliverer, spam check, single sign-on provider) imports none of the optional features' libraries."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update({"DATABASE_URL": empty_forum, "REDIS_URL": redis_url, "PARLEY_SECRET": "test-secret-0123456789abcdef",
                "PARLEY_DATA_DIR": str(tmp_path)})
    r = subprocess.run([sys.executable, "-c", START % DEFERRED], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"import": [], "start-up": []}


def test_the_written_out_dummy_hash_is_a_hash_at_the_servers_cost() -> None:
    """The hash an unknown username is checked against (written out, not made at import) verifies its own
    password and carries the server hasher's parameters, so a miss costs what a hit does."""
    assert auth._hasher.verify(auth._DUMMY_HASH, "not a password, only for timing")
    assert not auth._hasher.check_needs_rehash(auth._DUMMY_HASH)
    with pytest.raises(VerifyMismatchError):
        auth._hasher.verify(auth._DUMMY_HASH, "anything else")
