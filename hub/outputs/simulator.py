"""Simulator providers: they send nothing and report outcomes as a real peer might.

``cap-hub serve`` uses them on embedded defaults (no SMSC, no relay needed), and so does the
simulation environment. The e-mail simulator is ``hub.outputs.email_smtp.SimulatorEmailProvider``;
the SMS one is here.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hub.outputs.sms_text import SmsText


@dataclass(frozen=True, slots=True)
class SmsOutcome:
    """What happened to one SMS: delivered, or failed with the provider's reason."""

    number: str = field(repr=False)  # personal data: kept out of reprs, hence out of logs
    ok: bool
    parts: int
    reason: str = ""
    permanent: bool = True
    # The SMSC's id per part when submitted to a real SMSC: the outcome then waits for the
    # delivery receipts. Empty from the simulator, whose ok means delivered.
    message_ids: tuple[str, ...] = ()


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
    latency drawn uniformly from ``latency`` (seconds). ``seed`` makes the draws repeatable."""

    FAILURE = "simulated: UNDELIV absent subscriber"

    def __init__(self, *, delivery_ratio: float = 0.97, latency: tuple[float, float] = (0.0, 0.0),
                 seed: int | None = None, keep_sent: bool = False,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        if not 0 <= delivery_ratio <= 1:
            raise ValueError("delivery_ratio must be in [0, 1]")
        if not 0 <= latency[0] <= latency[1]:
            raise ValueError("latency must be (low, high) with 0 <= low <= high")
        self.delivery_ratio, self.latency = delivery_ratio, latency
        self._random = random.Random(seed)
        self._sleep = sleep
        self.submits = 0  # messages "sent", for tests and the simulation's counters
        self.parts = 0
        self._keep_sent = keep_sent
        self.sent: list[tuple[str, str]] = []  # (number, text) when keep_sent, for tests

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def send(self, sms: SmsText, numbers: Sequence[str], *,
                   tags: Sequence[object] | None = None) -> list[SmsOutcome]:
        rnd = self._random
        delay = rnd.uniform(*self.latency)
        if delay > 0:
            await self._sleep(delay)
        out: list[SmsOutcome] = []
        for number in numbers:
            self.submits += 1
            self.parts += sms.part_count
            if self._keep_sent:
                self.sent.append((number, sms.text))
            if rnd.random() < self.delivery_ratio:
                out.append(SmsOutcome(number, True, sms.part_count))
            else:
                out.append(SmsOutcome(number, False, sms.part_count, self.FAILURE))
        return out
