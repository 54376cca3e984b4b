"""server/replicas.py's choices, on stand-in pools: lag against the primary's positions, and which pool a read gets."""

from __future__ import annotations

import time
from typing import Any

from server import replicas
from server.replicas import Replicas


def make(max_lag: float = 5.0, n: int = 1) -> tuple[Replicas, Any, list[Any]]:
    primary = object()
    r = Replicas(primary, tuple(f"postgresql://u@replica{i}:5432/db" for i in range(n)), max_lag)  # type: ignore[arg-type]
    pools = []
    for rep in r.replicas:
        rep.pool = object()  # type: ignore[assignment]
        rep.healthy, rep.replayed, rep.lag = True, 1000, 0.0
        pools.append(rep.pool)
    return r, primary, pools


def test_lag_is_measured_against_the_primarys_positions_not_replay_timestamps():
    """Replayed past the last position the primary reported: 0; behind it: the age of the newest position it has."""
    r, _, _ = make()
    now = time.monotonic()
    r._marks.extend([(now - 10, 100), (now - 4, 200), (now - 1, 300)])
    assert r.lag_of(300) == 0.0 and r.lag_of(999) == 0.0
    assert 3.9 < r.lag_of(250) < 4.5      # has the position of 4 s ago, not that of 1 s ago
    assert 9.9 < r.lag_of(50) < 10.5      # older than every position kept: at least the oldest one's age
    r._marks.clear()
    assert r.lag_of(0) == 0.0             # the primary was never read: no verdict against the replica


def test_reads_go_to_a_healthy_replica_that_has_the_readers_last_write():
    """No cookie or one already replayed: a replica; a newer one: the primary, counted as behind_writer."""
    r, primary, (pool,) = make()
    assert r.pick(None) is pool
    assert r.pick(1000) is pool
    assert r.pick(1001) is primary
    r.replicas[0].healthy, r.replicas[0].why = False, "lag"
    assert r.pick(None) is primary


def test_replicas_are_taken_in_turn_and_a_failed_one_is_dropped_at_once():
    """Two healthy replicas share the reads; mark_down() takes one out until the next poll finds it well."""
    r, primary, (a, b) = make(n=2)
    assert {r.pick(None) for _ in range(4)} == {a, b}
    r.mark_down(a, ConnectionResetError("gone"))
    assert {r.pick(None) for _ in range(4)} == {b}
    r.mark_down(b, ConnectionResetError("gone"))
    assert r.pick(None) is primary


def test_without_replicas_everything_reads_the_primary():
    """No PARLEY_DATABASE_REPLICA_URLS: the primary, and writes carry no cookie (no position to wait for)."""
    r, primary, _ = make(n=0)
    assert not r.enabled and r.pick(None) is primary


def test_the_cookie_is_a_number_or_nothing():
    """parley_wlsn is the client's: anything but a plain number is ignored (no promise, no error)."""
    assert replicas.parse_cookie("123456") == 123456
    assert replicas.parse_cookie(None) is None
    assert replicas.parse_cookie("-1") is None
    assert replicas.parse_cookie("1e9") is None
    assert replicas.parse_cookie("9" * 40) is None
    assert replicas.label("postgresql://user:secret@db.example:6543/x") == "db.example:6543"
