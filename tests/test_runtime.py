"""The garbage collector's settings of a long-running process."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from hub.runtime import GEN0, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_start_up_objects_are_frozen_and_the_young_collected_less_often(restored_gc: None) -> None:
    kept = [[i] for i in range(1000)]  # start-up state: lives as long as the process
    tune_gc()
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold()[0] == GEN0
    # Garbage made afterwards is still collected.
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
