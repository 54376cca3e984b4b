"""Garbage collection after start-up: freeze what start-up built, and time every collection.

The write stall (issue 33, bench/README.md "The write stall"): under a steady write load a generation-2
collection ran every 8-14 s and walked every long-lived object the process holds (~80,000 tracked
objects, 63,000 of them from importing the server package: its ~790 modules' functions, tuples and
dicts), 43-73 ms of CPU with the event loop stopped, and collected nothing. gc.freeze() at the end of
start-up moves all of those into the permanent generation, which collections never walk; the full
collections that remain walk only what was made since. Cyclic garbage made later is still collected.
The young generation's threshold is raised too, so that a burst of requests does not promote its
in-flight objects into the old generation (where they wait for a full collection) a few hundred
allocations at a time.

PARLEY_GC_FREEZE=off keeps CPython's defaults (the "before" of bench.writes --ab PARLEY_GC_FREEZE=off).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from . import metrics

GEN0_THRESHOLD = 10_000  # CPython's default is 700; the older generations keep theirs (10, 10)

_started: list[float] = []
_default_threshold: list[tuple[int, int, int]] = []


def _timer(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started.append(time.perf_counter())
    elif _started:
        metrics.GC_PAUSE.labels(str(info.get("generation", "?"))).observe(time.perf_counter() - _started.pop())


def watch() -> None:
    """Time every collection into parley_gc_pause_seconds (by generation); idempotent."""
    if _timer not in gc.callbacks:
        gc.callbacks.append(_timer)


def freeze(enabled: bool = True) -> int:
    """At the end of start-up: collect once, then freeze everything alive; the count frozen (0: off)."""
    watch()
    if not enabled:
        return 0
    gc.collect()
    gc.freeze()
    if not _default_threshold:
        _default_threshold.append(gc.get_threshold())
    _, older, oldest = _default_threshold[0]
    gc.set_threshold(GEN0_THRESHOLD, older, oldest)
    return gc.get_freeze_count()


def unfreeze() -> None:
    """At shutdown: hand the frozen objects back to the collector (a process that starts several apps, like
    the test suite, would otherwise keep each stopped app's cycles for ever) and CPython's thresholds."""
    gc.unfreeze()
    if _default_threshold:
        gc.set_threshold(*_default_threshold.pop())
