"""The call pacer, pure, on a simulated clock: the grid, catching up after stalls, the 10-second
window cap even with late wake-ups, and idle spells."""

from __future__ import annotations

import random
from bisect import bisect_left

import pytest

from hub.voice.pacing import CallPacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def max_in_window(starts: list[float], window: float) -> int:
    starts = sorted(starts)
    return max(bisect_left(starts, t + window) - i for i, t in enumerate(starts))


def run(pacer: CallPacer, clock: Clock, calls: int, *, stall: float = 0.0, stall_every: int = 0,
        late: float = 0.0, seed: int = 1) -> list[float]:
    """One caller making ``calls`` calls back to back: it wakes up to ``late`` seconds after
    its reserved time, and every ``stall_every`` calls the loop stalls for ``stall`` seconds."""
    rnd = random.Random(seed)
    starts = []
    for i in range(calls):
        if stall_every and i and i % stall_every == 0:
            clock.now += stall
        clock.now += pacer.reserve() + rnd.uniform(0, late)
        starts.append(clock.now)
    return starts


def test_steady_calls_follow_the_grid() -> None:
    clock = Clock()
    pacer = CallPacer(600, clock=clock)
    starts = run(pacer, clock, 1200)
    gaps = {round(b - a, 6) for a, b in zip(starts, starts[1:], strict=False)}
    assert gaps == {round(1 / (10 * 0.995), 6)}
    per_minute = (len(starts) - 1) / (starts[-1] - starts[0]) * 60
    assert per_minute == pytest.approx(597, abs=0.5)
    assert max_in_window(starts, 10) <= 100


# A 0.5 s stall every 37 calls is 13% of the time lost, made up all the same.
@pytest.mark.parametrize(("stall", "every"), [(0.5, 37), (1.5, 400), (1.0, 200), (0.08, 3)])
def test_stalls_are_made_up_without_any_window_above_the_limit(stall: float, every: int) -> None:
    clock = Clock()
    pacer = CallPacer(600, clock=clock)
    starts = run(pacer, clock, 2400, stall=stall, stall_every=every, late=0.04)
    per_minute = (len(starts) - 1) / (starts[-1] - starts[0]) * 60
    assert 588 <= per_minute <= 600, per_minute  # within 2%, never above
    assert max_in_window(starts, 10) <= 100


def test_after_an_idle_spell_the_burst_is_bounded() -> None:
    clock = Clock()
    pacer = CallPacer(600, clock=clock, catch_up=2.0)
    run(pacer, clock, 50)
    clock.now += 600  # nothing to call for ten minutes
    burst = [pacer.reserve() for _ in range(40)]
    assert sum(1 for d in burst if d == 0) == 20  # 2 s of calls at once, then the grid again
    assert burst[-1] == pytest.approx(39 / (10 * 0.995) - 2.0, rel=1e-6)  # the grid from 2 s back


def test_the_window_cap_holds_with_many_takers_and_late_wakeups() -> None:
    clock = Clock()
    pacer = CallPacer(600, clock=clock, catch_up=30.0)  # a large credit: only the cap limits
    clock.now += 0.001
    starts = []
    for _ in range(10):
        clock.now += 25  # long stalls: the credit is full each time
        for _ in range(150):
            starts.append(clock.now + pacer.reserve())
    assert max_in_window(starts, 10) == 100
    jittered = sorted(t + random.Random(int(t * 1000)).uniform(0, 0.05) for t in starts)
    assert max_in_window(jittered, 10) <= 100


def test_unlimited_and_wrong_values() -> None:
    assert CallPacer(0).unlimited and CallPacer(0).reserve() == 0
    assert CallPacer(30).limit == 5 and CallPacer(1).limit == 1
    with pytest.raises(ValueError):
        CallPacer(-1)
    with pytest.raises(ValueError):
        CallPacer(600, headroom=1)


def test_admission_holds_the_window_on_recorded_starts() -> None:
    """Every 7th call is 2.9 s late between its reservation and its start (a slow store write
    on a loaded machine); the grid catches up, and its reservations alone would let 11 starts
    into a 10-second window. Admission on the recorded starts keeps it at 10."""

    def starts(admitting: bool) -> list[float]:
        clock = Clock()
        pacer = CallPacer(60, clock=clock, catch_up=3.0)  # 10 calls in any 10 s
        out = []
        for i in range(40):
            clock.now += pacer.reserve() + (2.9 if i % 7 == 0 else 0.0)
            if admitting:
                while (wait := pacer.admit()) > 0:
                    clock.now += wait
                out.append(pacer.last_start)
            else:
                out.append(clock.now)
        return out

    assert max_in_window(starts(False), 10) == 11
    admitted = starts(True)
    assert max_in_window(admitted, 10) == 10 and admitted == sorted(admitted)
