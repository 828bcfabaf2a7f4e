"""The SMS provider over SMPP 3.4: the worker's ``send(sms, numbers)`` on a :class:`Pool`.

Each number's parts are submitted through the pool (all numbers of a call at once; the
pool's per-bind window bounds what is in flight), tagged with the caller's tag (the delivery
id) so that a receipt arriving right behind its submit_sm_resp is correlated in memory.

**Outcomes.** A message whose every part got a message id is ``ok`` with those ids: it is
*submitted*, not delivered; its delivery receipts (:meth:`receipts`) say what became of it.
A refused submit (:class:`SubmitRefused`) is a failure, permanent or not per its status
(an invalid number is permanent, a throttle that outlasted the session's retries is not). A
lost connection (:class:`ConnectionLost`) is retried here up to ``attempts`` times with
only the parts that have no id yet (``known_ids``, same concatenation ``ref``), so no part
goes twice; after that it is transient and the worker retries the whole message later (the
parts that did go may then go again: SMPP gives no way to cancel half a message).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hub.errors import DeliveryError
from hub.outputs.simulator import SmsOutcome
from hub.outputs.smpp import ConnectionLost, Pool, Receipt
from hub.outputs.sms_text import SmsText


class SmppSmsProvider:
    """``send`` through ``pool``, from ``source_addr``, asking for delivery receipts."""

    def __init__(self, pool: Pool, source_addr: str, *, attempts: int = 3) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.pool = pool
        self.source_addr = source_addr
        self.attempts = attempts

    async def open(self) -> None:
        await self.pool.open()

    async def close(self) -> None:
        await self.pool.close()

    @property
    def receipts(self) -> asyncio.Queue[Receipt]:
        """Receipts from every bind, correlated in memory when the submit was recent."""
        return self.pool.receipt_queue

    async def send(self, sms: SmsText, numbers: Sequence[str], *,
                   tags: Sequence[object] | None = None) -> list[SmsOutcome]:
        """One outcome per number, in order; ``tags[i]`` goes with number i's receipts."""
        keys: Sequence[object] = tags if tags is not None else [None] * len(numbers)
        if len(keys) != len(numbers):
            raise ValueError("one tag per number")
        return list(await asyncio.gather(*(self._one(sms, n, t) for n, t in zip(numbers, keys, strict=True))))

    async def _one(self, sms: SmsText, number: str, tag: object) -> SmsOutcome:
        known: list[str | None] | None = None
        ref: int | None = None
        reason = "SMPP connection lost"
        for attempt in range(self.attempts):
            try:
                ids = await self.pool.submit(number, sms.parts, sms.data_coding, self.source_addr, True,
                                             tag=tag, ref=ref, known_ids=known)
            except ConnectionLost as exc:
                if exc.message_ids and len(exc.message_ids) == sms.part_count:
                    known, ref = exc.message_ids, exc.ref
                reason = exc.reason
                if attempt + 1 < self.attempts:
                    await asyncio.sleep(min(exc.retry_after or 0.1, 1.0))
                continue
            except DeliveryError as exc:  # SubmitRefused, or a number that is not E.164
                sent = sum(1 for i in getattr(exc, "message_ids", ()) if i is not None)
                return SmsOutcome(number, False, sent, exc.reason, exc.permanent)
            return SmsOutcome(number, True, sms.part_count, message_ids=tuple(ids))
        sent = sum(1 for i in known or () if i is not None)
        return SmsOutcome(number, False, sent, reason, False)
