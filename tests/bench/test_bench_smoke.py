"""bench/ at small sizes, so it never rots: the fan-out bench against parley and the reference server
in one run must see every frame once, in order. Not a performance test (no timing asserted)."""

from __future__ import annotations

from typing import Any

import pytest

from bench import common, fanout, handshake, transports, uploads, writes


@pytest.fixture()
def bench_env(pg_admin_url: str, own_redis: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A Redis of its own: the shared one carries other Parley servers' parley:thread:{id} channels.
    monkeypatch.setattr(common, "PG_ADMIN", pg_admin_url)
    monkeypatch.setattr(common, "REDIS_URL", own_redis.url)


@pytest.mark.timeout(180)
def test_fanout_small_both_targets_lose_nothing(bench_env: None) -> None:
    result = fanout.main(["-W", "20", "-R", "5", "-D", "3", "--target", "both", "--poster", "separate",
                          "--warmup", "1", "--settle", "0.5", "--drain", "20", "--procs", "2",
                          "--name", "smoke"])
    assert result["connect_failed"] == 0
    assert result["drained"], "not every watcher got the last seq"
    assert not result["posting"]["errors"]
    posted = result["posting"]["posted"]
    assert posted == 15
    rows = {r["target"]: r for r in result["rows"]}
    assert set(rows) == {"parley", "reference"}
    for name, row in rows.items():
        assert row["lost"] == 0, name
        assert row["dups"] == 0, name
        assert row["closed"] == 0, name
        assert row["received"] == 20 * posted, name
        assert row["p99_ms"] is not None and row["us_per_frame"] is not None, name
    # Parley orders by seq; the reference forwards Redis verbatim, so two concurrent posts may publish out of order.
    assert rows["parley"]["gaps"] == 0 and rows["parley"]["out_of_order"] == 0


@pytest.mark.timeout(180)
def test_fanout_small_slow_consumer_same_poster(bench_env: None) -> None:
    """The posting process is the watched one; one watcher of 20 stops reading: the others lose nothing."""
    result = fanout.main(["-W", "20", "-R", "5", "-D", "2", "--slow-pct", "5", "--warmup", "0.5",
                          "--settle", "0.5", "--drain", "20", "--procs", "2", "--name", "smoke"])
    row = result["rows"][0]
    assert row["slow_sockets"] == 1
    assert row["lost"] == 0 and row["dups"] == 0 and row["gaps"] == 0 and row["out_of_order"] == 0
    assert row["received"] == 19 * result["posting"]["posted"]


@pytest.mark.timeout(180)
def test_transports_small_sse_and_websocket_clients_get_every_event_once(bench_env: None) -> None:
    """bench.transports at a small size: 20 SSE and 20 websocket clients each get every posted event, once."""
    result = transports.main(["-W", "20", "-R", "5", "-D", "2", "--rounds", "1", "--settle", "0.5",
                              "--drain", "20", "--name", "smoke"])
    rows = {r["kind"]: r for r in result["rows"]}
    assert set(rows) == {"ws", "sse"}
    for kind, row in rows.items():
        assert row["clients"] == 20 and row["drained"], kind
        assert row["received"] == 20 * row["posted"] > 0, kind
        assert row["lost"] == 0 and row["dups"] == 0 and row["gaps"] == 0, kind
    # At this size a server may spend less than one tick of its CPU clock (10 ms): that row's CPU is "not
    # measured" (None), never 0 µs per event, and the ratio is given only when both were measured.
    ws, sse = rows["ws"]["us_per_event"], rows["sse"]["us_per_event"]
    if ws is not None and sse is not None:
        assert ws > 0 and sse > 0 and result["sse_over_ws"] == pytest.approx(sse / ws)
    else:
        assert result["sse_over_ws"] is None


@pytest.mark.timeout(180)
def test_uploads_small_every_upload_lands(bench_env: None) -> None:
    """bench.uploads at a small size: every photo is stored (201) and the figures are there."""
    result = uploads.main(["--uploaders", "2", "--rounds", "1", "--megapixels", "1", "--idle-seconds", "0.5"])
    assert result["statuses"] == {201: 2}
    assert result["cpu_s_per_upload"] > 0 and result["rss_peak_mb"] >= result["rss_before_mb"] > 0
    assert result["healthz_idle_ms"]["n"] > 0 and result["healthz_busy_ms"]["n"] > 0


@pytest.mark.timeout(240)
def test_writes_before_and_after_with_the_stall_probe(bench_env: None) -> None:
    """bench.writes --ab --stall-probe at a small rate: both variants commit every reply and the probe reports."""
    result = writes.main(["--rate", "20", "--duration", "1", "--users", "2", "--threads", "2", "--stall-probe",
                          "--ab", "PARLEY_GC_FREEZE=off", "--name", "smoke-writes"])
    rows = result["rows"]
    assert [r["variant"] for r in rows] == ["before (PARLEY_GC_FREEZE=off)", "after"]
    for row in rows:
        assert row["committed"] == row["stored"] == 20, row
        assert row["stalls"]["gen2_collections"] >= 0 and "stalls_at" in row["stalls"]
    assert len(result["shapes"]) == 2 and len(result["shapes"][0]["latency_quantiles_ms"]) == 1001


@pytest.mark.timeout(240)
def test_writes_against_the_floor(bench_env: None) -> None:
    """bench.writes --target all: Parley, the floor running Parley's statement and the plain floor each store every
    reply (the first two with its revision, the plain floor without), with the three ratios computed."""
    result = writes.main(["--rate", "20", "--duration", "1", "--users", "2", "--threads", "2", "--target", "all",
                          "--floor-no-reset", "--name", "smoke-floor"])
    rows = result["rows"]
    assert [r["target"] for r in rows] == ["parley", "statement", "floor"]
    for row in rows:
        assert row["committed"] == row["stored"] == 20, row
        assert row["us_pg_db_cpu_per_reply"] is not None
    assert [r["revisions"] for r in rows] == [20, 20, 0]
    assert rows[0]["published"] == 20
    assert [r["pair"] for r in result["floor_ratios"]] == ["parley ÷ floor", "parley ÷ statement", "statement ÷ floor"]


def test_handshake_both_ways_give_the_same_request(bench_env: None) -> None:
    """bench.handshake: the request parsed twice and once are equal (checked before timing) and both are timed."""
    result = handshake.main(["--rounds", "1", "--n", "200"])
    assert len(result["rows"]) == 1  # type: ignore[arg-type]
    row = result["rows"][0]  # type: ignore[index]
    assert row["twice_us"] > 0 and row["once_us"] > 0
