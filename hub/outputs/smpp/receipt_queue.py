"""The queue delivery receipts wait in, with holds for messages still in their sender's hands.

An SMSC answers a submit_sm and sends its receipt a few milliseconds later, often before the
sender has stored that the message went. A receipt stored on its own then costs the store
a second write for the same delivery (and a third to end it). A sender that still has a
message in hand ``hold``\\ s its tag; a *final* receipt for a held tag waits for the sender's
``take`` instead of the queue, so the sender stores the message's end with its submit in
one write. Whatever the sender does not take goes to the queue on ``release`` (its answers
failed to be stored, it was cancelled): nothing is dropped. In memory, no I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from hub.outputs.smpp.receipts import Receipt


class ReceiptQueue(asyncio.Queue[Receipt]):
    def __init__(self) -> None:
        super().__init__()
        self._held: dict[object, list[Receipt] | None] = {}

    def hold(self, tags: Iterable[object]) -> None:
        """Final receipts for these tags wait for :meth:`take` from now on."""
        held = self._held
        for tag in tags:
            held.setdefault(tag, None)

    def take(self, tag: object) -> list[Receipt]:
        """The final receipts held for ``tag`` (and the hold ends: later ones are queued)."""
        return self._held.pop(tag, None) or []

    def release(self, tags: Iterable[object]) -> None:
        """End the holds of these tags; what they held is queued as it would have been."""
        for tag in tags:
            for receipt in self._held.pop(tag, None) or ():
                super().put_nowait(receipt)

    @property
    def holding(self) -> int:
        return len(self._held)

    def put_nowait(self, item: Receipt) -> None:
        held = self._held
        if held and item.final and item.tag is not None:
            try:
                if item.tag in held:
                    got = held[item.tag]
                    if got is None:
                        held[item.tag] = [item]
                    else:
                        got.append(item)
                    return
            except TypeError:  # an unhashable tag is never held
                pass
        super().put_nowait(item)
