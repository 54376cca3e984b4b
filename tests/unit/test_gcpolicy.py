"""server/gcpolicy.py: start-up's objects leave the full collections' walk, and come back at shutdown."""

from __future__ import annotations

import gc

import pytest
from prometheus_client import REGISTRY

from server import gcpolicy


@pytest.fixture(autouse=True)
def unfrozen():
    """Each test starts from CPython's state: an app started earlier in this process may have frozen it."""
    gcpolicy.unfreeze()
    yield
    gcpolicy.unfreeze()


def _pauses(generation: str) -> float:
    return REGISTRY.get_sample_value("parley_gc_pause_seconds_count", {"generation": generation}) or 0.0


def test_freeze_moves_what_is_alive_out_of_the_collector_and_unfreeze_gives_it_back():
    """freeze() freezes every live object and raises gen 0's threshold; unfreeze() undoes both."""
    before = gc.get_threshold()
    kept = [{"n": i} for i in range(1000)]  # alive across the freeze
    try:
        frozen = gcpolicy.freeze()
        assert frozen >= len(kept) and gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == gcpolicy.GEN0_THRESHOLD
        assert not any(o is kept for o in gc.get_objects(2))  # no longer walked by a full collection
    finally:
        gcpolicy.unfreeze()
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before
    assert any(o is kept for o in gc.get_objects(2))


def test_off_freezes_nothing_but_still_times_collections():
    """PARLEY_GC_FREEZE=off: nothing is frozen, thresholds stay, and each collection is timed by generation."""
    before, n = gc.get_threshold(), _pauses("2")
    assert gcpolicy.freeze(enabled=False) == 0
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before
    gc.collect()
    assert _pauses("2") == n + 1


def test_cyclic_garbage_made_after_the_freeze_is_still_collected():
    """A cycle that becomes garbage after start-up is freed by a collection, frozen or not."""
    class Node:
        pass
    try:
        gcpolicy.freeze()
        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        del a, b
        assert gc.collect() >= 2
    finally:
        gcpolicy.unfreeze()
