"""Several transceiver binds to one SMSC, used as one.

A real SMSC takes about 100–150 submits/s per bind, so 500/s needs several binds. The pool
opens ``binds`` sessions sharing one :class:`Correlator` and one receipt queue (an SMSC may
send a receipt on any bind of the same system_id), sends each message on the live bind with
the fewest requests in flight (all parts of a message on the same bind), and reopens a lost
bind in the background with exponential back-off and jitter (``reconnect_min`` doubling up
to ``reconnect_max``).

A submit caught by a lost bind raises :class:`ConnectionLost` with the parts that did get an
id; the caller submits the rest again (``known_ids=``, ``ref=``), which lands on another bind
or, once reopened, the same one. With no live bind at all ``submit`` raises ConnectionLost
with ``retry_after`` set to the next reconnect attempt.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

from hub.outputs.ratelimit import Pacer
from hub.outputs.smpp.bulk import Result, submit_many
from hub.outputs.smpp.errors import BindRefused, ConnectionLost, SmppError
from hub.outputs.smpp.receipt_queue import ReceiptQueue
from hub.outputs.smpp.receipts import Correlator, Receipt
from hub.outputs.smpp.session import DEFAULT_WINDOW, SmppSession
from hub.outputs.smpp.submit import Concat

log = logging.getLogger(__name__)


class Pool:
    """``binds`` sessions to ``host:port``; ``session_options`` go to each :class:`SmppSession`."""

    def __init__(self, host: str, port: int, *, system_id: str, password: str, system_type: str = "",
                 binds: int = 4, reconnect_min: float = 0.5, reconnect_max: float = 30.0,
                 correlator: Correlator | None = None, **session_options: Any) -> None:
        self.host, self.port = host, port
        self.binds = binds
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        self.correlator = correlator if correlator is not None else Correlator()
        self.receipt_queue = ReceiptQueue()
        self._options = dict(system_id=system_id, password=password, system_type=system_type,
                             **session_options)
        self._sessions: list[SmppSession | None] = [None] * binds
        self._reconnects: dict[int, asyncio.Task[None]] = {}
        self._next_try = 0.0
        self._closed = False
        # The channel's rate, taken per submit_sm right before it is written (SMS parts).
        self.pacer: Pacer | None = None

    @property
    def session_window(self) -> int:
        """Requests awaiting their response per bind (each session's ``window``)."""
        return int(self._options.get("window", DEFAULT_WINDOW))

    def _new_session(self) -> SmppSession:
        return SmppSession(self.host, self.port, correlator=self.correlator,
                           receipts=self.receipt_queue, **self._options)

    @property
    def live(self) -> int:
        return sum(1 for s in self._sessions if s is not None and s.alive)

    async def open(self) -> None:
        """Open every bind; raises the first error if none could be opened."""
        sessions = [self._new_session() for _ in range(self.binds)]
        results = await asyncio.gather(*(s.open() for s in sessions), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if len(errors) == self.binds:
            first = errors[0]
            if isinstance(first, SmppError):
                raise first
            raise ConnectionLost(f"no bind could be opened: {first!r}") from first
        for i, (session, result) in enumerate(zip(sessions, results, strict=True)):
            if isinstance(result, BaseException):
                log.warning("SMPP bind %d failed: %s", i, result)
                self._reconnect(i)
            else:
                self._sessions[i] = session

    def _pick(self) -> SmppSession:
        best: SmppSession | None = None
        for i, session in enumerate(self._sessions):
            if session is None or not session.alive:
                if i not in self._reconnects and not self._closed:
                    self._reconnect(i)
                continue
            if best is None or session.load < best.load:
                best = session
        if best is None:
            loop = asyncio.get_running_loop()
            raise ConnectionLost("no SMPP bind is up", retry_after=max(self._next_try - loop.time(), 0.1))
        return best

    def _reconnect(self, index: int) -> None:
        self._sessions[index] = None
        self._reconnects[index] = asyncio.create_task(self._reconnect_loop(index))

    async def _reconnect_loop(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        delay = self.reconnect_min
        try:
            while not self._closed:
                wait = delay * random.uniform(0.8, 1.2)
                self._next_try = loop.time() + wait
                await asyncio.sleep(wait)
                session = self._new_session()
                try:
                    await session.open()
                except (ConnectionLost, BindRefused) as exc:
                    log.warning("SMPP bind %d: reconnect failed: %s", index, exc)
                    delay = min(delay * 2, self.reconnect_max)
                    continue
                self._sessions[index] = session
                return
        finally:
            self._reconnects.pop(index, None)

    async def submit(self, dest_e164: str, parts: Sequence[bytes], data_coding: int, source_addr: str,
                     registered_delivery: bool = True, *, tag: object = None, concat: Concat = "udh",
                     ref: int | None = None, known_ids: Sequence[str | None] | None = None) -> list[str]:
        """As :meth:`SmppSession.submit`, on the least busy live bind."""
        session = self._pick()
        try:
            return await session.submit(dest_e164, parts, data_coding, source_addr, registered_delivery,
                                        tag=tag, concat=concat, ref=ref, known_ids=known_ids,
                                        pacer=self.pacer)
        except ConnectionLost:
            for i, s in enumerate(self._sessions):
                if s is session and i not in self._reconnects and not self._closed:
                    self._reconnect(i)
            raise

    async def submit_many(self, messages: Sequence[tuple[str, object]], parts: Sequence[bytes],
                          data_coding: int, source_addr: str, registered_delivery: bool = True, *,
                          concat: Concat = "udh") -> list[Result]:
        """One text to many (number, tag): :func:`hub.outputs.smpp.bulk.submit_many`, the
        messages shared out between the live binds. Per message its ids or its error (a
        :class:`ConnectionLost` with the parts that did go, to submit the rest again)."""
        live = [s for s in self._sessions if s is not None and s.alive]
        if not live:
            self._pick()  # reconnects the lost binds, then raises ConnectionLost
        share = -(-len(messages) // len(live))
        groups = [(live[g], messages[g * share:(g + 1) * share]) for g in range(len(live))]
        groups = [(session, group) for session, group in groups if group]
        done = await asyncio.gather(*(submit_many(session, group, parts, data_coding, source_addr,
                                                  registered_delivery, concat=concat)
                                      for session, group in groups))
        for session, _ in groups:
            if not session.alive:
                for i, s in enumerate(self._sessions):
                    if s is session and i not in self._reconnects and not self._closed:
                        self._reconnect(i)
        return [r for results in done for r in results]

    async def receipts(self) -> AsyncIterator[Receipt]:
        """Receipts from every bind, correlated across binds."""
        while True:
            yield await self.receipt_queue.get()

    async def close(self) -> None:
        """Stop reconnecting, unbind and close every bind."""
        self._closed = True
        for task in list(self._reconnects.values()):
            task.cancel()
        await asyncio.gather(*self._reconnects.values(), return_exceptions=True)
        await asyncio.gather(*(s.close() for s in self._sessions if s is not None), return_exceptions=True)
