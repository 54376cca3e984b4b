"""PARLEY_PASSWORD_HASH_MEMORY_KIB: the hasher a process uses for new passwords, and what it warns."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from server import auth, config


@pytest.fixture()
def hasher_back() -> Iterator[None]:
    """The server's hasher for the test (this layer's conftest makes it cheaper), the module's put back after."""
    saved = auth._hasher, auth._dummy
    auth._hasher, auth._dummy = auth.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1), auth._DUMMY_HASH
    yield
    auth._hasher, auth._dummy = saved


async def test_a_low_memory_setting_hashes_cheaply_warns_and_keeps_old_hashes_working(
        tmp_path: Path, hasher_back: None, caplog: pytest.LogCaptureFixture) -> None:
    """At 64 KiB new hashes carry m=64, the unknown-user hash is made at that cost, a hash made at the server's
    cost still verifies (and is due a rehash), and start-up logs one warning naming the variable."""
    strong = await auth.hash_password("correct horse battery")
    assert strong.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    settings = config.load({"PARLEY_DATA_DIR": str(tmp_path), "PARLEY_PASSWORD_HASH_MEMORY_KIB": "64"},
                           env_file=tmp_path / "none.env")
    with caplog.at_level(logging.WARNING, logger="parley"):
        auth.use_settings(settings)
    assert [r.getMessage().split("=")[0] for r in caplog.records] == ["PARLEY_PASSWORD_HASH_MEMORY_KIB"]
    cheap = await auth.hash_password("correct horse battery")
    assert cheap.startswith("$argon2id$v=19$m=64,t=2,p=1$") and auth._dummy.startswith("$argon2id$v=19$m=64,")
    assert await auth.verify_password(strong, "correct horse battery")
    assert not await auth.verify_password(strong, "wrong horse")
    assert auth.needs_rehash(strong) and not auth.needs_rehash(cheap)
    assert not await auth.verify_password(None, "correct horse battery")  # an unknown user never signs in


async def test_the_default_setting_keeps_the_servers_cost(tmp_path: Path, hasher_back: None,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """Unset, the hasher stays at OWASP's minimum (19456 KiB, 2 passes) and nothing is logged."""
    with caplog.at_level(logging.WARNING, logger="parley"):
        auth.use_settings(config.load({"PARLEY_DATA_DIR": str(tmp_path)}, env_file=tmp_path / "none.env"))
    assert not caplog.records
    assert (await auth.hash_password("x" * 12)).startswith("$argon2id$v=19$m=19456,t=2,p=1$")
