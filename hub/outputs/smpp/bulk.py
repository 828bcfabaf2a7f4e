"""Many messages with the same text on one bind, without a coroutine per submit_sm.

An alert sends one text to many numbers. :meth:`SmppSession.submit` costs a coroutine, a
window acquisition and a future per part, and the provider a task per number: at rate 0 that
bookkeeping, not the socket, set the pace. :func:`submit_many` encodes every message's bodies
(the text's template once, each number set in), queues each submit_sm as soon as a window
slot is free (waiting for slots only when the window is full), and then waits for all the
responses at once: the session's reader puts each answer in the batch's
:class:`~hub.outputs.smpp.pending.Countdown` (no future per submit) and correlates it as for
any submit (receipts right behind their resp included).

What the fast path does not handle goes the ordinary way: a part throttled or refused with
``ESME_RTHROTTLED``/``ESME_RMSGQFUL`` is sent again with :meth:`SmppSession.submit_sm` (which
slows the bind down and retries); any other error status refuses its message
(:class:`SubmitRefused`); a lost connection fails what had no response yet
(:class:`ConnectionLost`). Either carries the ids of the parts that did get one
(``message_ids``, ``ref``), as :meth:`SmppSession.submit` would, so the caller resubmits only
the missing parts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

from hub.outputs.smpp.errors import SLOW_DOWN, ConnectionLost, SubmitRefused
from hub.outputs.smpp.pending import Countdown
from hub.outputs.smpp.session import SmppSession
from hub.outputs.smpp.submit import Concat

DRAIN_EVERY = 256  # submits queued between two looks at the socket's write buffer

Result = list[str] | ConnectionLost | SubmitRefused


async def submit_many(session: SmppSession, messages: Sequence[tuple[str, object]], parts: Sequence[bytes],
                      data_coding: int, source_addr: str, registered_delivery: bool = True, *,
                      concat: Concat = "udh") -> list[Result]:
    """Submit ``parts`` to every (E.164 number, tag) of ``messages``; per message, in order,
    its message ids (one per submit_sm) or the error that stopped it."""
    batch = _Batch(len(messages))
    built = session.bodies_many([dest for dest, _ in messages], parts, data_coding, source_addr,
                                registered_delivery, concat=concat)
    for i, ((_, tag), made) in enumerate(zip(messages, built, strict=True)):
        if isinstance(made, SubmitRefused):  # not an E.164 number
            batch.refused[i] = made
        else:
            batch.add(i, tag, *made)
    countdown = Countdown(asyncio.get_running_loop())
    await batch.queue(session, countdown)
    await batch.collect(session, countdown)
    return batch.results()


class _Batch:
    def __init__(self, n: int) -> None:
        self.n = n
        self.refused: dict[int, SubmitRefused] = {}
        self.messages: dict[int, tuple[object, list[bytes], int | None]] = {}
        self.known: dict[int, list[str | None]] = {}
        self.sent: list[tuple[int, int]] = []  # (message, part) in the order queued
        self.errors: dict[int, ConnectionLost | SubmitRefused] = {}
        self.lost: ConnectionLost | None = None

    def add(self, i: int, tag: object, bodies: list[bytes], ref: int | None) -> None:
        self.messages[i] = (tag, bodies, ref)
        self.known[i] = [None] * len(bodies)

    async def queue(self, session: SmppSession, countdown: Countdown) -> None:
        """Each part on a window slot, taken at once when free; stops at a lost connection."""
        for count, (i, (tag, bodies, _)) in enumerate(self.messages.items()):
            for k, body in enumerate(bodies):
                try:
                    if not session.take_slot():
                        await session.wait_slot()
                    session.queue_submit(body, tag, k + 1, len(bodies), countdown)
                    self.sent.append((i, k))
                except ConnectionLost as exc:
                    self.lost = exc
                    return
            if count % DRAIN_EVERY == DRAIN_EVERY - 1:
                await session.drain()

    async def collect(self, session: SmppSession, countdown: Countdown) -> None:
        """Every response; throttled parts sent again the ordinary way."""
        countdown.one()  # all sent: only the answers are awaited now
        await countdown.done
        again: list[tuple[int, int]] = []
        for (i, k), resp in zip(self.sent, countdown.results, strict=True):
            if isinstance(resp, str):  # accepted: its message id
                self.known[i][k] = resp
            elif resp is None or isinstance(resp, BaseException):
                self.errors.setdefault(i, resp if isinstance(resp, ConnectionLost)
                                       else ConnectionLost(str(resp or "no answer")))
            elif resp.command_status in SLOW_DOWN:
                again.append((i, k))
            else:
                self.errors.setdefault(i, SubmitRefused(resp.command_status))
        if not again:
            return
        retried = await asyncio.gather(*(
            session.submit_sm(self.messages[i][1][k], tag=self.messages[i][0], part=k + 1,
                              parts=len(self.messages[i][1]))
            for i, k in again), return_exceptions=True)
        for (i, k), outcome in zip(again, retried, strict=True):
            if isinstance(outcome, str):
                self.known[i][k] = outcome
            elif isinstance(outcome, ConnectionLost | SubmitRefused):
                self.errors.setdefault(i, outcome)
            else:
                raise outcome

    def results(self) -> list[Result]:
        out: list[Result] = []
        for i in range(self.n):
            if i in self.refused:
                out.append(self.refused[i])
                continue
            ids = self.known[i]
            error = self.errors.get(i)
            if error is None and None not in ids:
                out.append(cast(list[str], ids))  # no None in it
                continue
            if error is None:  # some parts not sent: the connection was lost before their turn
                error = ConnectionLost(str(self.lost) if self.lost is not None else "session lost")
            error.with_parts(ids, self.messages[i][2])
            out.append(error)
        return out
