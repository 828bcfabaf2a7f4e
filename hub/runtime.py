"""Settings of a long-running hub process that are not the hub's own: the garbage collector.

CPython's cyclic collector runs its youngest generation every 700 container allocations and,
every hundred of those, looks through every object the process holds. A channel worker
allocates a few containers per message (answers, receipts, outcome rows), so at full speed
the collector took an eighth of the SMS worker's time (measured: 195 ms of 1.5 s for 40,000
SMS), most of it walking the objects start-up made (modules, settings, the store's and the
providers' state), which live as long as the process. :func:`tune_gc`, called once the
process has started, moves those out of the collector's sight (``gc.freeze``) and collects
the youngest generation every ``GEN0`` allocations: 3 % of the worker's time instead. The
hub makes few reference cycles (tasks, exceptions), so garbage waits a little longer, not
for ever.
"""

from __future__ import annotations

import gc

GEN0 = 10_000  # container allocations between two collections of the youngest generation


def tune_gc() -> None:
    """After start-up: collect once, freeze what is left, collect the young less often."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0, gen1, gen2)
