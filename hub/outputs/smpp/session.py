"""One SMPP 3.4 transceiver bind on asyncio streams.

    session = SmppSession("smsc.example", 2775, system_id="hub", password="secret")
    await session.open()                       # connect + bind_transceiver, or BindRefused
    ids = await session.submit("+32470123456", parts, data_coding=0, source_addr="1789", tag=key)
    async for receipt in session.receipts():  # Receipt(tag=key, part=1, parts=2, state=...)
        ...
    await session.close()                      # unbind, then close

**Window.** At most ``window`` requests wait for their response at once (sequence number →
future); more submits wait for a slot. Responses are matched by sequence number, in any
order, and the submit id is handed to the :class:`Correlator` in the reader itself, before
any later PDU is looked at, so a receipt right behind its resp is always correlated.

**Slowing down.** ``ESME_RTHROTTLED`` and ``ESME_RMSGQFUL`` pause new sends on this bind for
``throttle_pause`` seconds (doubling while they repeat, at most 2 s) and the same PDU is
sent again, up to ``max_retries`` times; then :class:`SubmitRefused` (transient).

**Connection loss.** EOF, a socket error, an unbind from the SMSC, a garbled frame, or a
request without a response for ``response_timeout`` seconds all end the session: every
waiting request fails with :class:`ConnectionLost` and the session cannot be used again.
A part that got its submit_sm_resp has its id (``err.message_ids``); one that did not was
not acknowledged, so the caller resubmits it on a new session (``known_ids=``, ``ref=``).
SMPP cannot tell "the SMSC never got it" from "its resp was lost on the way": a resubmit
after a lost resp is the one case that can double a part, and it is rare and unavoidable.
Reconnecting with back-off is the caller's job (:class:`hub.outputs.smpp.pool.Pool` does it).

**Addresses.** The destination is E.164 (``+`` optional), sent as TON 1 (international) /
NPI 1 (ISDN/E.164) without the ``+``. The source follows common SMSC practice: ``+`` or
more than 8 digits → 1/1; a numeric short code of up to 8 digits (``1789``) → TON 3
(network specific) / NPI 0 (unknown); letters → TON 5 (alphanumeric) / NPI 0. Operators
differ for short codes (some want 0/1 or 6/0): ``source_ton``/``source_npi`` override it.

**Receipts from the SMSC** are answered with deliver_sm_resp at once, parsed, correlated and
queued; ``enquire_link`` is answered; ours is sent when nothing was read for
``enquire_link_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence

from hub.outputs.ratelimit import Pacer, Ticket
from hub.outputs.smpp import pdu as p
from hub.outputs.smpp.errors import SLOW_DOWN, BindRefused, ConnectionLost, SubmitRefused
from hub.outputs.smpp.pending import Countdown, Pending
from hub.outputs.smpp.receipts import Correlator, Receipt, receipt_from_data_sm, receipt_from_frame
from hub.outputs.smpp.submit import Concat, SubmitBodies

log = logging.getLogger(__name__)

_HEAD = struct.Struct(">III")
# The stream reader's buffer before it stops reading the socket: large, so that responses
# wait in our memory rather than in the kernel's, where a reset from the SMSC would drop them.
READ_LIMIT = 4 * 1024 * 1024

class _Protocol(asyncio.StreamReaderProtocol):
    """The stream protocol, but a connection that breaks on a write (the SMSC reset it) first
    hands over what the kernel had already received: asyncio would close the socket unread,
    and responses to submits the SMSC took would be lost (the submits then sent twice)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        super().__init__(reader)
        self._stream = reader
        self._socket_of: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._socket_of = transport
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        sock = self._socket_of.get_extra_info("socket") if self._socket_of is not None else None
        if exc is not None and sock is not None:
            try:
                with sock.dup() as raw:
                    raw.setblocking(False)
                    while data := raw.recv(262144):
                        self._stream.feed_data(data)
            except OSError:
                pass  # nothing more to read (or the reset took it)
        super().connection_lost(exc)


async def _connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio.open_connection with :class:`_Protocol` and a large read buffer."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READ_LIMIT)
    protocol = _Protocol(reader)
    transport, _ = await loop.create_connection(lambda: protocol, host, port)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


def _consume(fut: asyncio.Future[p.Pdu]) -> None:
    if not fut.cancelled():
        fut.exception()


DEFAULT_WINDOW = 64  # requests awaiting their response at once, per bind


class SmppSession:
    """One transceiver bind. Not reusable after :meth:`close` or a :class:`ConnectionLost`."""

    def __init__(
        self, host: str, port: int, *, system_id: str, password: str, system_type: str = "",
        window: int = DEFAULT_WINDOW, enquire_link_interval: float = 30.0, response_timeout: float = 10.0,
        connect_timeout: float = 5.0, throttle_pause: float = 0.05, max_retries: int = 20,
        source_ton: int | None = None, source_npi: int | None = None,
        correlator: Correlator | None = None, receipts: asyncio.Queue[Receipt] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.system_id, self.password, self.system_type = system_id, password, system_type
        self.window = window
        self.enquire_link_interval = enquire_link_interval
        self.response_timeout = response_timeout
        self.connect_timeout = connect_timeout
        self.throttle_pause = throttle_pause
        self.max_retries = max_retries
        self.correlator = correlator if correlator is not None else Correlator()
        self.receipt_queue: asyncio.Queue[Receipt] = receipts if receipts is not None else asyncio.Queue()
        self.smsc_system_id = ""
        self._pending: dict[int, Pending] = {}
        self._seq = 0
        self._free = window  # window slots; a FIFO of waiters (asyncio.Semaphore scans its waiters)
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._out: list[bytes] = []
        self._load = 0
        self._resume_at = 0.0
        self._slow_streak = 0
        self._lost: ConnectionLost | None = None
        self._closing = False
        self._last_read = 0.0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bodies = SubmitBodies(source_ton, source_npi)

    # -- life cycle ------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Requests sent and waiting for their response."""
        return len(self._pending)

    @property
    def load(self) -> int:
        """Messages being submitted here, sent or waiting for a window slot."""
        return self._load

    @property
    def alive(self) -> bool:
        return self._writer is not None and self._lost is None and not self._closing

    async def open(self) -> None:
        """Connect and bind as a transceiver. :class:`BindRefused` or :class:`ConnectionLost`."""
        self._loop = asyncio.get_running_loop()
        try:
            self._reader, self._writer = await asyncio.wait_for(_connect(self.host, self.port),
                                                                self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise ConnectionLost(f"cannot connect to SMSC {self.host}:{self.port}: {exc!r}") from exc
        self._last_read = self._loop.time()
        self._tasks = [asyncio.create_task(self._read_loop()), asyncio.create_task(self._housekeeping())]
        seq = self._next_seq()
        bind = p.BindTransceiver(sequence_number=seq, system_id=self.system_id, password=self.password,
                                 system_type=self.system_type)
        resp = await self._request(seq, p.encode(bind))
        if resp.command_status:
            await self._shutdown(ConnectionLost("bind refused"))
            raise BindRefused(resp.command_status)
        if isinstance(resp, p.BindTransceiverResp):
            self.smsc_system_id = resp.system_id

    async def close(self, timeout: float = 2.0) -> None:
        """Unbind politely (waiting up to ``timeout`` for unbind_resp), then close."""
        if self.alive:
            self._closing = True
            seq = self._next_seq()
            try:
                await asyncio.wait_for(self._request(seq, p.frame(p.CommandId.UNBIND, 0, seq)), timeout)
            except (ConnectionLost, TimeoutError):
                pass
        self._closing = True
        await self._shutdown(ConnectionLost("session closed"))

    async def _shutdown(self, reason: ConnectionLost) -> None:
        self._fail(reason)
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        if self._writer is not None:
            try:
                await self._writer.wait_closed()
            except OSError:
                pass

    def _fail(self, reason: ConnectionLost) -> None:
        """End the session: every waiting request gets ``reason``; the socket is closed."""
        if self._lost is None:
            self._lost = reason
            if not self._closing:
                log.warning("SMPP session %s:%s lost: %s", self.host, self.port, reason)
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            entry.resolve(ConnectionLost(str(self._lost)))
            if entry.countdown is not None:  # a bulk submit: its slot, and its answer counted
                self._release()
                entry.countdown.one()
        if self._writer is not None and not self._writer.is_closing():
            self._writer.close()

    def _lost_error(self) -> ConnectionLost:
        return ConnectionLost(str(self._lost) if self._lost else "session not open")

    # -- sending ---------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq + 1 if self._seq < 0x7FFFFFFF else 1
        return self._seq

    def _send(self, data: bytes, now: bool = False) -> None:
        """Queue ``data``; everything queued in one loop iteration goes out in one write, or
        at once with ``now`` (a paced submit: written the instant its tokens were taken)."""
        if self._writer is None or self._lost is not None:
            raise self._lost_error()
        if now:
            self._out.append(data)
            self._flush()
            return
        if not self._out:
            assert self._loop is not None
            self._loop.call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        out, self._out = self._out, []
        # Not after the SMSC's FIN (its EOF is read before ready callbacks run): an SMSC that
        # closes right after answers resets the connection when more comes, and asyncio then
        # drops what it had not read yet, our answered submits' responses among it.
        if self._writer is not None and self._lost is None and not self._writer.is_closing() \
                and not getattr(self._reader, "_eof", False):
            self._writer.write(b"".join(out))

    async def _acquire(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release()  # the slot was handed over as we were cancelled: pass it on
            raise

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    async def _request(self, seq: int, data: bytes, tag: object = None, part: int = 0,
                       parts: int = 0, now: bool = False) -> p.Pdu:
        assert self._loop is not None
        fut: asyncio.Future[p.Pdu] = self._loop.create_future()
        self._send(data, now)
        self._pending[seq] = Pending(fut, self._loop.time(), tag, part, parts)
        assert self._writer is not None
        transport = self._writer.transport
        if transport.get_write_buffer_size() > 262144:
            try:
                await self._writer.drain()
            except OSError as exc:
                self._fail(ConnectionLost(f"write failed: {exc!r}"))
        return await fut

    async def submit_sm(self, body: bytes, *, tag: object = None, part: int = 0, parts: int = 0,
                        pacer: Pacer | None = None, cost: int = 1) -> str:
        """Send one encoded submit_sm body (see :func:`pdu.sm_body`); its message id.

        Slows down and sends it again on ESME_RTHROTTLED/ESME_RMSGQFUL; raises
        :class:`SubmitRefused` or :class:`ConnectionLost`. With a ``pacer`` (the channel's rate),
        each send of it takes ``cost`` tokens (SMS parts) and is written the moment they are due.
        """
        assert self._loop is not None
        attempts = 0
        while True:
            if self._lost is not None:
                raise self._lost_error()
            delay = self._resume_at - self._loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._acquire()
            ticket: Ticket | None = None
            try:
                paced = pacer is not None and not pacer.unlimited
                if paced:
                    assert pacer is not None
                    # Counted from the write until the SMSC's answer: it takes the submit in
                    # somewhere between the two (see hub.outputs.ratelimit.SendWindow).
                    await pacer.reserve(cost)
                    ticket = await pacer.admit(cost, answered=False)
                    if self._lost is not None:
                        raise self._lost_error()
                seq = self._next_seq()
                data = p.frame(p.CommandId.SUBMIT_SM, 0, seq, body)
                resp = await self._request(seq, data, tag, part, parts, paced)
            finally:
                self._release()
                if pacer is not None:
                    pacer.answered(ticket)
            status = resp.command_status
            if not status:
                self._slow_streak = 0
                assert isinstance(resp, p.SubmitSmResp)
                return resp.message_id
            if status in SLOW_DOWN and attempts < self.max_retries:
                attempts += 1
                self._slow_streak += 1
                pause = min(self.throttle_pause * 2 ** min(self._slow_streak - 1, 6), 2.0)
                self._resume_at = max(self._resume_at, self._loop.time() + pause)
                continue
            raise SubmitRefused(status, f"after {attempts} retries" if status in SLOW_DOWN else "")

    async def submit(
        self, dest_e164: str, parts: Sequence[bytes], data_coding: int, source_addr: str,
        registered_delivery: bool = True, *, tag: object = None, concat: Concat = "udh",
        ref: int | None = None, known_ids: Sequence[str | None] | None = None, pacer: Pacer | None = None,
    ) -> list[str]:
        """Submit one message already split and encoded into ``parts`` (see hub.outputs.gsm).

        One submit_sm per part, all parts in flight at once; with several parts each carries
        the concatenation UDH (``concat="udh"``, esm_class 0x40, 8-bit ``ref``) or the sar_*
        TLVs (``"sar"``); ``"payload"`` sends one submit_sm with every part joined in
        ``message_payload``. Returns the SMSC's message id per submit_sm sent. ``known_ids``
        (from an earlier ConnectionLost) skips the parts that already have an id. ``pacer``:
        see :meth:`submit_sm` (a ``message_payload`` submit costs all its parts).
        """
        bodies, ref = self.bodies(dest_e164, parts, data_coding, source_addr, registered_delivery,
                                  concat=concat, ref=ref)
        known: list[str | None] = list(known_ids) if known_ids is not None else [None] * len(bodies)
        if len(known) != len(bodies):
            raise ValueError("known_ids does not match the number of submits")
        total = len(bodies)
        todo = [i for i in range(total) if known[i] is None]
        self._load += 1
        try:
            cost = len(parts) if len(bodies) == 1 else 1
            outcomes = await self._submit_bodies(bodies, todo, tag, pacer, cost)
        finally:
            self._load -= 1
        return self._merge(known, todo, outcomes, ref)

    def bodies(self, dest_e164: str, parts: Sequence[bytes], data_coding: int, source_addr: str,
               registered_delivery: bool = True, *, concat: Concat = "udh",
               ref: int | None = None) -> tuple[list[bytes], int | None]:
        """The encoded submit_sm bodies of one message (see :meth:`submit`) and its
        concatenation ref; :class:`SubmitRefused` (permanent) if the number is not E.164."""
        return self._bodies.bodies(dest_e164, parts, data_coding, source_addr, registered_delivery,
                                   concat=concat, ref=ref)

    def bodies_many(self, dests: Sequence[str], parts: Sequence[bytes], data_coding: int, source_addr: str,
                    registered_delivery: bool = True, *, concat: Concat = "udh",
                    ) -> list[tuple[list[bytes], int | None] | SubmitRefused]:
        """:meth:`bodies` of one text for each of ``dests``, or the refusal of a number."""
        return self._bodies.many(dests, parts, data_coding, source_addr, registered_delivery, concat=concat)

    # -- the bulk path (hub.outputs.smpp.bulk): no coroutine per submit -----------------

    def take_slot(self) -> bool:
        """Take a window slot now if one is free (and nobody queues for one, and the bind is
        not slowed down by a throttle)."""
        assert self._loop is not None
        if self._free > 0 and not self._waiters and self._resume_at <= self._loop.time():
            self._free -= 1
            return True
        return False

    async def wait_slot(self) -> None:
        """Wait for a window slot and take it."""
        await self._acquire()

    def queue_submit(self, body: bytes, tag: object, part: int, parts: int, countdown: Countdown) -> None:
        """Queue one submit_sm on a slot the caller took; its response (or error) lands in
        ``countdown.results`` at the next index, and the slot is freed, when the response comes
        or the session ends. Raises :class:`ConnectionLost` (the slot freed) if the session
        is gone."""
        assert self._loop is not None
        if self._lost is not None:
            self._release()
            raise self._lost_error()
        seq = self._next_seq()
        self._send(p.frame(p.CommandId.SUBMIT_SM, 0, seq, body))
        self._pending[seq] = Pending(None, self._loop.time(), tag, part, parts, countdown,
                                      len(countdown.results))
        countdown.results.append(None)
        countdown.left += 1

    async def drain(self) -> None:
        """Wait while more than 256 KiB wait in the socket's write buffer."""
        if self._writer is not None and self._writer.transport.get_write_buffer_size() > 262144:
            try:
                await self._writer.drain()
            except OSError as exc:
                self._fail(ConnectionLost(f"write failed: {exc!r}"))

    async def _submit_bodies(self, bodies: list[bytes], todo: list[int], tag: object,
                             pacer: Pacer | None = None, cost: int = 1) -> Sequence[str | BaseException]:
        total = len(bodies)
        if len(todo) == 1:
            i = todo[0]
            outcomes: list[str | BaseException] = []
            try:
                outcomes.append(await self.submit_sm(bodies[i], tag=tag, part=i + 1, parts=total,
                                                     pacer=pacer, cost=cost))
            except (ConnectionLost, SubmitRefused) as exc:
                outcomes.append(exc)
        else:
            outcomes = await asyncio.gather(
                *(self.submit_sm(bodies[i], tag=tag, part=i + 1, parts=total, pacer=pacer, cost=cost)
                  for i in todo),
                return_exceptions=True)
        return outcomes

    @staticmethod
    def _merge(known: list[str | None], todo: list[int], outcomes: Sequence[str | BaseException],
               ref: int | None) -> list[str]:
        first_error: BaseException | None = None
        for i, outcome in zip(todo, outcomes, strict=True):
            if isinstance(outcome, str):
                known[i] = outcome
            elif first_error is None or isinstance(outcome, ConnectionLost):
                first_error = outcome
        if first_error is None:
            return [mid for mid in known if mid is not None]
        if isinstance(first_error, ConnectionLost | SubmitRefused):
            raise first_error.with_parts(known, ref)
        raise first_error

    # -- receiving -------------------------------------------------------------------------

    async def receipts(self) -> AsyncIterator[Receipt]:
        """Receipts as they come (correlated when the submit was made here)."""
        while True:
            yield await self.receipt_queue.get()

    async def _read_loop(self) -> None:
        assert self._reader is not None and self._loop is not None
        frames = p.FrameReader()
        try:
            while True:
                data = await self._reader.read(262144)
                if not data:
                    raise ConnectionLost("SMSC closed the connection")
                self._last_read = self._loop.time()
                for frame in frames.feed(data):
                    self._dispatch(frame)
        except ConnectionLost as exc:
            self._fail(exc)
        except OSError as exc:
            # A failed write (the SMSC closed while we sent) makes the reader raise at once,
            # ahead of what it had already received: read those responses first, or their
            # submits would be taken for lost and sent twice.
            try:
                for frame in frames.feed(bytes(getattr(self._reader, "_buffer", b""))):
                    self._dispatch(frame)
            except (ConnectionLost, p.PduError):
                pass
            self._fail(ConnectionLost(f"{type(exc).__name__}: {exc}"))
        except p.PduError as exc:
            self._fail(ConnectionLost(f"{type(exc).__name__}: {exc}"))

    def _dispatch(self, frame: bytes) -> None:
        assert self._loop is not None
        command_id, status, seq = _HEAD.unpack_from(frame, 4)
        if command_id & 0x80000000:
            entry = self._pending.pop(seq, None)
            if entry is None:
                log.warning("SMPP response 0x%08X for unknown sequence %d", command_id, seq)
                return
            try:
                self._answer(entry, command_id, status, seq, frame)
            except p.PduError as exc:  # the reader ends the session; this request ends with it
                entry.resolve(ConnectionLost(f"undecodable response: {exc}"))
                raise
            finally:
                if entry.countdown is not None:  # a bulk submit: its slot, and its answer counted
                    self._release()
                    entry.countdown.one()
        elif command_id == p.CommandId.DELIVER_SM:
            self._on_receipt(frame, seq, receipt_from_frame, p.CommandId.DELIVER_SM_RESP)
        elif command_id == p.CommandId.DATA_SM:  # §2.11: some SMSCs send receipts in data_sm
            self._on_receipt(frame, seq, receipt_from_data_sm, p.CommandId.DATA_SM_RESP)
        elif command_id == p.CommandId.ENQUIRE_LINK:
            self._send(p.frame(p.CommandId.ENQUIRE_LINK_RESP, 0, seq))
        elif command_id == p.CommandId.UNBIND:
            self._send(p.frame(p.CommandId.UNBIND_RESP, 0, seq))
            raise ConnectionLost("SMSC unbound the session")
        else:
            self._send(p.frame(p.CommandId.GENERIC_NACK, p.Status.ESME_RINVCMDID, seq))

    def _answer(self, entry: Pending, command_id: int, status: int, seq: int, frame: bytes) -> None:
        """Resolve a request's future with its response."""
        assert self._loop is not None
        if command_id == p.CommandId.SUBMIT_SM_RESP and not status:
            end = frame.find(b"\0", 16)  # its message_id, read here: one comes for every part sent
            if end == len(frame) - 1:
                message_id = frame[16:end].decode("latin-1")
            else:
                decoded = p.decode(frame)  # anything unusual: the codec says what is wrong
                assert isinstance(decoded, p.SubmitSmResp)
                message_id = decoded.message_id
            now = self._loop.time()
            for receipt in self.correlator.sent(message_id, entry.tag, entry.part, entry.parts, now):
                self.receipt_queue.put_nowait(receipt)
            # A bulk submit's answer is its id alone; a request's, the PDU.
            entry.resolve(message_id if entry.countdown is not None
                          else p.SubmitSmResp(sequence_number=seq, message_id=message_id))
        elif command_id == p.CommandId.GENERIC_NACK:
            entry.resolve(p.SubmitSmResp(sequence_number=seq,
                                         command_status=status or p.Status.ESME_RUNKNOWNERR))
        else:
            entry.resolve(p.decode(frame))

    def _on_receipt(self, frame: bytes, seq: int, read: Callable[[bytes], Receipt | None],
                    resp: p.CommandId) -> None:
        """A deliver_sm or data_sm: answered (``resp``, its message_id empty), and the receipt
        it carries, ``read`` from the frame, correlated."""
        assert self._loop is not None
        try:
            receipt = read(frame)
        except p.PduError as exc:
            log.warning("SMPP 0x%08X could not be decoded: %s", resp & 0x7FFFFFFF, exc)
            self._send(p.frame(resp, p.Status.ESME_RSYSERR, seq))
            return
        self._send(p.frame(resp, 0, seq, b"\0"))
        if receipt is None:
            log.info("SMPP mobile-originated message ignored")  # its sender is personal data
            return
        correlated = self.correlator.received(receipt, self._loop.time())
        if correlated is not None:
            self.receipt_queue.put_nowait(correlated)

    async def _housekeeping(self) -> None:
        """Enquire when idle, fail on overdue responses, release held receipts."""
        assert self._loop is not None
        while self._lost is None:
            await asyncio.sleep(0.2)
            now = self._loop.time()
            for receipt in self.correlator.expire(now):
                self.receipt_queue.put_nowait(receipt)
            if self._pending:
                oldest = next(iter(self._pending.values()))
                if now - oldest.sent_at > self.response_timeout:
                    self._fail(ConnectionLost(f"no response from SMSC in {self.response_timeout:g} s"))
                    return
            if now - self._last_read > self.enquire_link_interval and self._lost is None:
                seq = self._next_seq()
                try:
                    self._send(p.frame(p.CommandId.ENQUIRE_LINK, 0, seq))
                except ConnectionLost:
                    return
                fut: asyncio.Future[p.Pdu] = self._loop.create_future()
                fut.add_done_callback(_consume)
                self._pending[seq] = Pending(fut, now, None, 0, 0)
                self._last_read = now  # one enquire per idle interval
