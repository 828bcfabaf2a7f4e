"""Requests awaiting their SMSC's response: the session's table of them, by sequence number.

A request of the ordinary path has a future; a submit of the bulk path (:mod:`hub.outputs.smpp.bulk`)
has none: its answer lands in its batch's :class:`Countdown`, at its index, which spares the
event loop a future and a done-callback per SMS. In memory, no I/O.
"""

from __future__ import annotations

import asyncio

from hub.outputs.smpp import pdu as p


class Countdown:
    """The answers of a batch of submits (the bulk path): each submit's message id (accepted),
    response (refused) or error lands in ``results`` at its index, no future per submit;
    ``done`` is resolved once every submit queued with it has its answer (or the session
    ended) and its sender called :meth:`one` for itself (so that answers coming while it
    still sends do not resolve it early)."""

    __slots__ = ("left", "done", "results")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.left = 1  # the sender's own
        self.done: asyncio.Future[None] = loop.create_future()
        self.results: list[str | p.Pdu | BaseException | None] = []  # an accepted submit: its id

    def one(self) -> None:
        self.left -= 1
        if self.left == 0 and not self.done.done():
            self.done.set_result(None)


class Pending:
    """A request awaiting its response: a future's, or a bulk submit's (``countdown``, at
    ``index`` in its results), which holds a window slot until answered."""

    __slots__ = ("fut", "sent_at", "tag", "part", "parts", "countdown", "index")

    def __init__(self, fut: asyncio.Future[p.Pdu] | None, sent_at: float, tag: object, part: int,
                 parts: int, countdown: Countdown | None = None, index: int = 0) -> None:
        self.fut = fut
        self.sent_at = sent_at
        self.tag = tag
        self.part = part
        self.parts = parts
        self.countdown = countdown
        self.index = index

    def resolve(self, value: p.Pdu | str | BaseException) -> None:
        countdown = self.countdown
        if countdown is not None:
            if countdown.results[self.index] is None:
                countdown.results[self.index] = value
        elif self.fut is not None and not self.fut.done():
            if isinstance(value, BaseException):
                self.fut.set_exception(value)
            elif not isinstance(value, str):
                self.fut.set_result(value)
