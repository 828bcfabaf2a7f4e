"""Simulator providers: they send nothing and report outcomes as a real peer might.

``cap-hub serve`` uses them on embedded defaults (no SMSC, no relay needed), and so does the
simulation environment. The e-mail simulator is ``hub.outputs.email_smtp.SimulatorEmailProvider``;
the SMS one is here.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hub.outputs.smpp.receipt_queue import ReceiptQueue
from hub.outputs.smpp.receipts import Receipt
from hub.outputs.sms_text import SmsText


@dataclass(slots=True)
class SmsOutcome:
    """What happened to one SMS: delivered, or failed with the provider's reason. Not frozen:
    one is built per SMS, and a frozen dataclass's ``__init__`` costs several times more."""

    number: str = field(repr=False)  # personal data: kept out of reprs, hence out of logs
    ok: bool
    parts: int
    reason: str = ""
    permanent: bool = True
    # The SMSC's id per part when submitted to a real SMSC: the outcome then waits for the
    # delivery receipts. Empty from the simulator, whose ok means delivered.
    message_ids: tuple[str, ...] = ()
    # A failed multipart SMS: the ids of the parts the SMSC did accept before it failed. The
    # message is sent again whole, so their receipts must not count for the new parts.
    partial_ids: tuple[str, ...] = ()


class SmsProvider(Protocol):
    """What the SMS worker needs from a provider."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, sms: SmsText, numbers: Sequence[str], *,
                   tags: Sequence[object] | None = None) -> list[SmsOutcome]:
        """One outcome per number, in order; ``tags`` (one per number, e.g. the delivery id)
        come back with the receipts of a provider that has them."""
        ...


class SimulatorSmsProvider:
    """Accepts every submit; each SMS is then delivered with probability ``delivery_ratio``
    and otherwise fails permanently (as a receipt ``UNDELIV`` would say). Each call takes a
    latency drawn uniformly from ``latency`` (seconds). ``seed`` makes the draws repeatable.

    A share ``late_share`` of the SMS behave as on a real SMSC: submitted first (with a
    message id per part), their outcome coming as delivery receipts on ``receipts`` after a
    delay drawn from ``late_after`` (seconds), as the SMPP provider's do; the hub's
    ``track_receipts`` reads them. Pass ``tags`` (the delivery ids) to have them correlated."""

    FAILURE = "simulated: UNDELIV absent subscriber"

    def __init__(self, *, delivery_ratio: float = 0.97, latency: tuple[float, float] = (0.0, 0.0),
                 seed: int | None = None, keep_sent: bool = False,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 late_share: float = 0.0, late_after: tuple[float, float] = (1.0, 30.0)) -> None:
        if not 0 <= delivery_ratio <= 1 or not 0 <= late_share <= 1:
            raise ValueError("delivery_ratio and late_share must be in [0, 1]")
        if not 0 <= latency[0] <= latency[1] or not 0 <= late_after[0] <= late_after[1]:
            raise ValueError("latency and late_after must be (low, high) with 0 <= low <= high")
        self.delivery_ratio, self.latency = delivery_ratio, latency
        self._random = random.Random(seed)
        self._sleep = sleep
        self.submits = 0  # messages "sent", for tests and the simulation's counters
        self.parts = 0
        self._keep_sent = keep_sent
        self.sent: list[tuple[str, str]] = []  # (number, text) when keep_sent, for tests
        self.late_share, self.late_after = late_share, late_after
        self.receipts = ReceiptQueue()
        self._pending: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        """Receipts not yet due are dropped, as a real SMSC's would be once unbound."""
        for task in list(self._pending):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _later(self, delay: float, receipts: list[Receipt]) -> None:
        async def due() -> None:
            await self._sleep(delay)
            for receipt in receipts:
                self.receipts.put_nowait(receipt)

        task = asyncio.get_running_loop().create_task(due())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def send(self, sms: SmsText, numbers: Sequence[str], *,
                   tags: Sequence[object] | None = None) -> list[SmsOutcome]:
        rnd = self._random
        delay = rnd.uniform(*self.latency)
        if delay > 0:
            await self._sleep(delay)
        out: list[SmsOutcome] = []
        late: dict[float, list[Receipt]] = {}
        for n, number in enumerate(numbers):
            self.submits += 1
            self.parts += sms.part_count
            if self._keep_sent:
                self.sent.append((number, sms.text))
            if self.late_share and rnd.random() < self.late_share:
                # random 63-bit ids: unique across restarts, as an SMSC's are
                ids = tuple(str(rnd.getrandbits(63)) for _ in range(sms.part_count))
                state = "DELIVRD" if rnd.random() < self.delivery_ratio else "UNDELIV"
                tag = tags[n] if tags is not None else None
                delay = round(rnd.uniform(*self.late_after), 1)  # grouped: one timer per tenth
                late.setdefault(delay, []).extend(
                    Receipt(mid, state, "" if state == "DELIVRD" else "001", tag=tag, part=i + 1,
                            parts=len(ids), submit_id=mid if tag is not None else "")
                    for i, mid in enumerate(ids))
                out.append(SmsOutcome(number, True, sms.part_count, message_ids=ids))
            elif rnd.random() < self.delivery_ratio:
                out.append(SmsOutcome(number, True, sms.part_count))
            else:
                out.append(SmsOutcome(number, False, sms.part_count, self.FAILURE))
        for delay, receipts in late.items():
            self._later(delay, receipts)
        return out
