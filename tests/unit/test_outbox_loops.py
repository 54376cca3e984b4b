"""The outbox workers' shared loops (server/outbox/loops.py): wake-ups, idling, errors, the gauge."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Gauge

from server.outbox.loops import claim_loop, gauge_loop, stop_all


def test_a_wake_ends_the_sleep_long_before_the_poll() -> None:
    """After an empty round the loop sleeps; wake() starts the next round without waiting for the poll."""
    async def main() -> list[str]:
        calls: list[str] = []
        woken = asyncio.Event()

        async def round_() -> int:
            calls.append("round")
            return 0

        async def idle() -> None:
            calls.append("idle")

        task = asyncio.create_task(claim_loop("t", round_, woken, poll=3600, idle=idle))
        while calls.count("round") < 1:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        woken.set()
        while calls.count("round") < 2:
            await asyncio.sleep(0.01)
        await stop_all([task])
        return calls

    calls = asyncio.run(asyncio.wait_for(main(), 10))
    assert calls[:3] == ["round", "idle", "round"]


def test_a_failing_round_is_logged_and_the_loop_goes_on(caplog) -> None:
    """An exception in a round does not end the loop: it is logged with the worker's name and tried again."""
    async def main() -> int:
        tries = 0

        async def round_() -> int:
            nonlocal tries
            tries += 1
            if tries == 1:
                raise OSError("database away")
            return 1 if tries < 3 else 0

        task = asyncio.create_task(claim_loop("mail sender", round_, asyncio.Event(), poll=0.01))
        while tries < 3:
            await asyncio.sleep(0.01)
        await stop_all([task])
        return tries

    assert asyncio.run(asyncio.wait_for(main(), 10)) >= 3
    assert any("mail sender: database away" in r.getMessage() for r in caplog.records)


def test_the_gauge_keeps_its_last_value_when_a_read_fails() -> None:
    """gauge_loop sets the measured value, and failed measures afterwards leave it as it was."""
    gauge = Gauge("t_oldest", "test", registry=CollectorRegistry())
    reads = 0

    async def measure() -> float:
        nonlocal reads
        reads += 1
        if reads > 1:
            raise RuntimeError("database away")
        return 12.5

    async def main() -> None:
        task = asyncio.create_task(gauge_loop(gauge, measure, every=0.001))
        while reads < 4:
            await asyncio.sleep(0.005)
        await stop_all([task])

    asyncio.run(asyncio.wait_for(main(), 10))
    assert gauge._value.get() == 12.5
