"""The SMS provider over SMPP 3.4: the worker's ``send(sms, numbers)`` on a :class:`Pool`.

Each number's parts are submitted through the pool (all numbers of a call at once; the
pool's per-bind window bounds what is in flight), tagged with the caller's tag (the delivery
id) so that a receipt arriving right behind its submit_sm_resp is correlated in memory. An
unpaced call of many numbers takes the pool's bulk path (:mod:`hub.outputs.smpp.bulk`: no
coroutine per submit), whose lost messages go on the ordinary way below; a paced one (the
pool's ``pacer``, the channel's rate) goes submit by submit, each written as its tokens fall due.

**Outcomes.** A message whose every part got a message id is ``ok`` with those ids: it is
*submitted*, not delivered; its delivery receipts (:meth:`receipts`) say what became of it.
A refused submit (:class:`SubmitRefused`) is a failure, permanent or not per its status
(an invalid number is permanent, a throttle that outlasted the session's retries is not). A
lost connection (:class:`ConnectionLost`) is retried here up to ``attempts`` times with
only the parts that have no id yet (``known_ids``, same concatenation ``ref``), so no part
goes twice; after that it is transient and the worker retries the whole message later (the
parts that did go may then go again: SMPP gives no way to cancel half a message). Their ids
come back in ``partial_ids``: the worker indexes them as superseded, so that their receipts
neither complete nor fail the message sent again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hub.errors import DeliveryError
from hub.outputs.simulator import SmsOutcome
from hub.outputs.smpp import ConnectionLost, Pool
from hub.outputs.smpp.receipt_queue import ReceiptQueue
from hub.outputs.sms_text import SmsText

BULK_FROM = 16  # numbers in one call from which an unpaced send takes the bulk path


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
    def receipts(self) -> ReceiptQueue:
        """Receipts from every bind, correlated in memory when the submit was recent."""
        return self.pool.receipt_queue

    async def send(self, sms: SmsText, numbers: Sequence[str], *,
                   tags: Sequence[object] | None = None) -> list[SmsOutcome]:
        """One outcome per number, in order; ``tags[i]`` goes with number i's receipts."""
        keys: Sequence[object] = tags if tags is not None else [None] * len(numbers)
        if len(keys) != len(numbers):
            raise ValueError("one tag per number")
        pacer = self.pool.pacer
        if len(numbers) < BULK_FROM or (pacer is not None and not pacer.unlimited) or not self.pool.live:
            return list(await asyncio.gather(*(self._one(sms, n, t)
                                               for n, t in zip(numbers, keys, strict=True))))
        results = await self.pool.submit_many(list(zip(numbers, keys, strict=True)), sms.parts,
                                              sms.data_coding, self.source_addr, True)
        out: list[SmsOutcome | None] = []
        retry: dict[int, asyncio.Future[SmsOutcome]] = {}
        for i, (number, result) in enumerate(zip(numbers, results, strict=True)):
            if isinstance(result, list):
                out.append(SmsOutcome(number, True, sms.part_count, message_ids=tuple(result)))
            elif isinstance(result, ConnectionLost):  # the rest of its parts, the ordinary way
                known = result.message_ids if len(result.message_ids) == sms.part_count else None
                retry[i] = asyncio.ensure_future(self._one(sms, number, keys[i], known, result.ref, first=1))
                out.append(None)
            else:
                went = tuple(m for m in result.message_ids or () if m is not None)
                out.append(SmsOutcome(number, False, len(went), result.reason, result.permanent,
                                      partial_ids=went))
        if retry:
            try:
                await asyncio.wait(list(retry.values()))
            except BaseException:  # the caller gave up (a Cancel, a stop): so do its resends
                for task in retry.values():
                    task.cancel()
                raise
        return [o if o is not None else retry[i].result() for i, o in enumerate(out)]

    async def _one(self, sms: SmsText, number: str, tag: object, known: list[str | None] | None = None,
                   ref: int | None = None, *, first: int = 0) -> SmsOutcome:
        reason = "SMPP connection lost"
        if first:
            await asyncio.sleep(0.1)  # the bind just failed: give the pool a moment to reconnect
        for attempt in range(first, self.attempts):
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
                went = tuple(i for i in getattr(exc, "message_ids", None) or () if i is not None)
                return SmsOutcome(number, False, len(went), exc.reason, exc.permanent, partial_ids=went)
            return SmsOutcome(number, True, sms.part_count, message_ids=tuple(ids))
        went = tuple(i for i in known or () if i is not None)
        return SmsOutcome(number, False, len(went), reason, False, partial_ids=went)
