"""When the next call may start: a grid at the call rate that catches up after a stall, capped
so that no window of ``window`` seconds (10) ever holds more than the rate allows. Pure: the
clock is injected; :func:`pace` is the one helper that sleeps.

Why not the channels' token bucket (:mod:`hub.outputs.ratelimit`): a bucket refilled below
the rate keeps every window under the limit, but time lost to a stall (a busy event loop, a
slow store write, a neighbour on the same two cores) is lost for good, and the average rate
drops below the 2% target. Calls are few and slow (600 a minute, one every 100 ms), so the
pacer can afford to remember the last ``limit`` start times and be exact instead:

* **Grid.** Starts are reserved on a grid of ``1 / (rate × (1 − headroom))`` seconds. A
  reservation made behind the grid (after a stall) starts at once, and the grid moves on from
  where it was, so the calls lost to the stall are made up; ``catch_up`` seconds bound how far
  behind the grid may fall (after an idle spell, no burst larger than that).
* **Window cap.** A reservation is also never sooner than ``window + jitter`` seconds after
  the one ``limit`` places before it (``limit`` = rate × window). Between a reservation and
  the dial the caller still has work (the store's claim, a look at the campaign) whose time
  varies on a loaded machine, so the cap is enforced once more where it counts, on the
  recorded starts themselves: :meth:`CallPacer.admit` lets a call start only when the
  ``limit``-th start before it is at least ``window`` seconds old. No window of ``window``
  seconds ever holds more than ``limit`` recorded starts.

Long-run rate: ``rate × (1 − headroom)`` (99.5% by default), whatever the stalls shorter than
``catch_up``.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Awaitable, Callable


class CallPacer:
    """Reserves call start times; see the module docstring."""

    def __init__(self, per_minute: float, *, window: float = 10.0, headroom: float = 0.005,
                 catch_up: float = 2.0, jitter: float = 0.05,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 0 or window <= 0 or not 0 <= headroom < 1 or catch_up < 0 or jitter < 0:
            raise ValueError("per_minute, catch_up and jitter must not be negative, window positive, "
                             "headroom in [0, 1)")
        self.per_minute = per_minute
        self.window, self.catch_up, self.jitter = window, catch_up, jitter
        self._clock = clock
        rate = per_minute / 60.0
        self.spacing = 1.0 / (rate * (1 - headroom)) if rate else 0.0
        self.limit = max(1, math.floor(rate * window + 1e-9))
        self._next: float | None = None
        self._granted: collections.deque[float] = collections.deque(maxlen=self.limit)
        self._started: collections.deque[float] = collections.deque(maxlen=self.limit)
        self.last_start = 0.0

    @property
    def unlimited(self) -> bool:
        return self.per_minute == 0

    def reserve(self) -> float:
        """Reserve the next start; returns the seconds to wait before it (0: now)."""
        if self.unlimited:
            return 0.0
        now = self._clock()
        grid = now if self._next is None else max(self._next, now - self.catch_up)
        start = max(grid, now)
        if len(self._granted) == self.limit:
            start = max(start, self._granted[0] + self.window + self.jitter)
        self._next = max(grid, start - self.catch_up) + self.spacing
        self._granted.append(start)
        return start - now

    def admit(self) -> float:
        """0 when a call may start now, its start then recorded (``last_start``); else the
        seconds to wait before asking again. Checking and recording happen together, so
        callers sharing the pacer in one event loop cannot both pass for the last place."""
        now = self._clock()
        if not self.unlimited and len(self._started) == self.limit and now < self._started[0] + self.window:
            return self._started[0] + self.window - now + 1e-4
        if not self.unlimited:
            self._started.append(now)
        self.last_start = now
        return 0.0


async def pace(pacer: CallPacer, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> float:
    """Wait for the next start reserved on ``pacer``; returns the wait."""
    delay = pacer.reserve()
    if delay > 0:
        await sleep(delay)
    return delay
