"""The channel workers: ``deliver.<channel>`` batches in, messages sent, outcomes out.

One ``ChannelWorker`` per channel consumes its queue. For each batch it checks the campaign
is not cancelled and the alert's info not expired (those deliveries are skipped with that
reason), renders the text once per campaign × info (an info is one language), then works
through the batch in **chunks** (what the rate allows in ``CLAIM_SPAN`` seconds; 500 at rate
0): for each chunk it **claims** the deliveries in the store (pending/queued → sending,
atomically: a redelivered batch finds them claimed or sent and sends nothing twice), sends
them through the provider, and stores the answers in one store job: final outcomes
(delivered, failed), *submitted* with the SMSC's message ids for SMS awaiting receipts,
transient failures back to queued. That store job is the submitted marker. Rate tokens (SMS
parts, e-mail recipients) are taken as late as possible: per submit_sm as it is written
(SMPP), right before DATA (SMTP), by a :class:`~hub.outputs.ratelimit.Pacer` whose log of
actual sends keeps every 1-second window under the rate. Chunks run a few at a time
(``PARALLEL_CHUNKS``, shared by all the batches a worker holds), so store commits overlap the
pacing and little is committed ahead of it. Once the batch is through, ``delivery.events``
gets one message for the outcomes stored here (``{"campaigns", "stored"}``: the tracker only
looks at the campaign's end) and one listing the skipped and cancelled (the tracker stores
them), retries are published, and the batch is acked only once those messages are confirmed.

Transient failures (not ok, not permanent: throttled, queue full, SMTP 4xx...) are published
again to ``deliver.<channel>`` as a new, smaller batch carrying ``attempt``, ``first_try``
and ``not_before`` (epoch seconds, ``retry_base`` × ``retry_factor`` ^ (attempt − 2), capped
at ``retry_cap``; the provider's ``retry_after`` is not used). A batch that arrives before its
``not_before`` is handed back with the broker's ``Retry(delay)`` (the RabbitMQ retry ladder,
or the embedded broker's timer), so no worker sleeps on it. The attempt count is the store's
(one per claim): a delivery whose ``max_attempts``-th attempt fails transiently, or that
fails once ``retry_budget`` seconds have passed since its first attempt, is failed with the
last reason. If the process dies after the store job, the queued retries are republished by
the router's start-up sweep; nothing is dropped.

Crash recovery (``tests/services/test_worker_kill.py`` kills a real worker process with
SIGKILL mid-batch): what was answered is stored chunk by chunk, so a restarted worker, handed
the unacked batch again, skips it; what was not yet claimed is still queued and is sent at
once. Only the chunks in hand at the instant of the kill stay **sending**; a batch holding
them again (RabbitMQ redelivers the unacked batch; the router's start-up sweep republishes
sending deliveries claimed before its grace) takes them over once the claim is older than
``sending_grace`` (or, with ``sole``, older than this worker's start: the embedded broker's
single process), and until then the batch is retried after the grace. **The rule: a
taken-over delivery is sent again.** Nothing tells whether a chunk reached the SMSC or the
SMTP server just before the kill (SMPP has no idempotency key), so its recipients may, rarely, get
the alert twice; at most once would risk none at all, which is worse for an alert. The doubt
covers what was written and not yet answered and stored at the instant of the kill: at most
``PARALLEL_CHUNKS`` chunks (``PARALLEL_CHUNKS`` × ``CLAIM_SPAN`` seconds of sending when
rate-limited, up to ``PARALLEL_CHUNKS`` × ``UNLIMITED_CHUNK`` at rate 0), in practice the few
milliseconds between a write and the commit of its answers. Chunks claimed but not yet
written are sent once, after the grace.

**SMPP receipts.** With a real SMSC (:class:`hub.outputs.sms_smpp.SmppSmsProvider`) an SMS
accepted by the SMSC is *submitted*, not delivered, until its receipts come. While a chunk is
in hand its tags are held on the provider's receipt queue
(:class:`~hub.outputs.smpp.receipt_queue.ReceiptQueue`): the final receipts that come before
its answers are stored (an SMSC on a fast link sends them milliseconds after the submit)
are taken here, and a delivery all of whose parts' receipts came is stored final, delivered
or failed, in the same write as the chunk's other answers. The rest are stored *submitted*
with the message id of every part (``delivery_messages``, written before the ack, with the
submitted marker, and with the states of the parts whose receipts came); their receipts are
recorded as they come by :func:`hub.services.receipts.track_receipts`, whose write ends each
delivery it completes. See :mod:`hub.store.sql_receipts` for the state model.

Voice deliveries are skipped ("voice not yet available").
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from hub.broker.base import Broker, Message, Retry
from hub.campaigns.cost import Prices, euro
from hub.cap.model import Alert, Info
from hub.domain import Campaign, CampaignState, Channel, DeliveryState, StoredAlert
from hub.outputs.email_render import render_email
from hub.outputs.email_smtp import EmailProvider, Outcome, SmtpProvider
from hub.outputs.ratelimit import Pacer, TokenBucket
from hub.outputs.simulator import SimulatorSmsProvider, SmsOutcome, SmsProvider
from hub.outputs.smpp.receipt_queue import ReceiptQueue
from hub.outputs.smpp.receipts import Receipt, canonical_id
from hub.outputs.sms_smpp import SmppSmsProvider
from hub.outputs.sms_text import Policy, SmsText, sms_text
from hub.services.alert_cache import AlertCache
from hub.services.batches import BatchRow, open_batch
from hub.services.receipts import OutcomeRow, outcomes_body, stored_body
from hub.services.router import CHANNEL_QUEUES, EVENTS_QUEUE
from hub.store.base import CampaignStore, MessageRow, Store

log = logging.getLogger(__name__)
R = TypeVar("R")

SMS_PREFIX = "BE-Alert:"
NO_REPLY = "no-reply@hub.invalid"
MESSAGE_ID_DOMAIN = "hub.invalid"
CACHED_ALERTS = 64  # parsed alerts kept (one per campaign in flight)
CANCEL_CHECK = 0.25  # seconds between looks at the campaign's state while a batch is sent

MAX_ATTEMPTS = 5  # attempts per delivery before a transient failure is final
RETRY_BASE = 2.0  # seconds before the 2nd attempt...
RETRY_FACTOR = 2.0  # ...multiplied by this for each next one
RETRY_CAP = 300.0  # seconds, the longest back-off
RETRY_BUDGET = 3600.0  # seconds after the first attempt when no retry starts any more (0: none)
UNLIMITED_CHUNK = 500  # deliveries claimed and sent together when the rate is unlimited
PARALLEL_CHUNKS = 8  # chunks being claimed, sent or stored at once, per worker
CLAIM_SPAN = 0.05  # seconds of sending (at the rate) claimed and stored together
EMAIL_STEP = 0.01  # seconds of e-mail recipients (at the rate) in one SMTP transaction at least
SENDING_GRACE = timedelta(minutes=2)  # a claim older than this belongs to a dead worker

# One part's message id: (delivery id, message id, part, parts)
MessageIdRow = tuple[int, str, int, int]


@dataclass
class PartIds:
    """The SMSC's message ids of one chunk: of SMS submitted whole (their receipts will tell),
    and of parts of SMS that failed half-way (superseded: the SMS is sent again whole)."""

    submitted: list[MessageRow] = field(default_factory=list)
    superseded: list[MessageIdRow] = field(default_factory=list)


@dataclass
class Sent:
    """What one batch came to: the outcomes to publish (skipped, cancelled), how many it
    stored itself (final, or submitted to an SMSC and awaiting receipts), transient failures
    to retry (each with its attempt count and reason) and deliveries still sending under
    another worker's claim."""

    outcomes: list[OutcomeRow] = field(default_factory=list)  # not stored (skipped, cancelled)
    stored: int = 0  # final or submitted outcomes stored by the worker
    retries: list[tuple[BatchRow, int, str]] = field(default_factory=list)
    busy: list[int] = field(default_factory=list)


class WorkerStore(Store, CampaignStore, Protocol):
    pass


class ChannelWorker:
    def __init__(self, channel: Channel, store: WorkerStore, broker: Broker, provider: Any,
                 bucket: TokenBucket, clock: Callable[[], datetime] = lambda: datetime.now(UTC), *,
                 countersign: Callable[[StoredAlert], Awaitable[bytes]] | None = None,
                 sms_prefix: str = SMS_PREFIX, sms_max_parts: int = 3, sms_policy: Policy = "ucs2",
                 sender: str = NO_REPLY,
                 max_attempts: int = MAX_ATTEMPTS, retry_base: float = RETRY_BASE,
                 retry_factor: float = RETRY_FACTOR, retry_cap: float = RETRY_CAP,
                 retry_budget: float = RETRY_BUDGET, sending_grace: timedelta = SENDING_GRACE,
                 sole: bool = False, queue: str | None = None, prices: Prices | None = None) -> None:
        """``provider`` is an ``SmsProvider`` for SMS, an ``EmailProvider`` for e-mail (and
        unused for voice). ``countersign`` gives the hub-signed CAP attached to e-mails.
        Retries: at most ``max_attempts`` attempts per delivery, the n-th after ``retry_base``
        × ``retry_factor`` ^ (n − 2) seconds (at most ``retry_cap``), none once ``retry_budget``
        seconds have passed since the first attempt (0: no time limit).
        ``sole``: no other process sends this channel (the embedded broker), so a claim
        older than this worker is a dead one's. ``queue``: the one to consume and retry on
        (default ``deliver.<channel>``; the simulation environment's workers have their own)."""
        if max_attempts < 1 or retry_base < 0 or retry_cap < 0 or retry_factor < 1 or retry_budget < 0:
            raise ValueError("max_attempts must be at least 1, retry_factor at least 1, retry_base, "
                             "retry_cap and retry_budget not negative")
        self.channel = channel
        self.queue = queue or CHANNEL_QUEUES[channel]
        self._store = store
        self._broker = broker
        self._provider = provider
        self._bucket = bucket
        # Sends of up to ``burst`` tokens (an e-mail step carries at least EMAIL_STEP seconds of
        # recipients: SMTP transactions of 15 recipients would not keep up with 2,500/s).
        self._burst = bucket.burst if channel is not Channel.EMAIL else \
            max(bucket.burst, bucket.rate_per_s * EMAIL_STEP)
        # Over SMTP and SMPP each send is counted until the peer answers it (DATA's reply, the
        # submit_sm_resp): whenever the peer stamps it, between our write and its answer, every
        # window holding that instant counts it, so the log needs no margin for jitter or a
        # stalling peer and may set the pace at the full rate (``Pacer.till_answered``).
        self._pacer = Pacer.till_answered(bucket.rate_per_s, self._burst) \
            if isinstance(provider, SmtpProvider | SmppSmsProvider) \
            else Pacer.for_rate(bucket.rate_per_s, self._burst)
        if isinstance(provider, SmppSmsProvider) and not self._pacer.unlimited:
            provider.pool.pacer = self._pacer  # taken per submit_sm, as it is written
        # Receipts that come while their SMS's chunk is in hand are stored with its answers.
        receipts = getattr(provider, "receipts", None) if channel is Channel.SMS else None
        self._receipts = receipts if isinstance(receipts, ReceiptQueue) else None
        self._clock = clock
        self._prices = prices or Prices()  # per number prefix, as the tracker prices
        self._flat_sms: dict[int, float] = {}
        self._countersign = countersign
        self._prefix = sms_prefix
        self._max_parts = sms_max_parts
        self._policy: Policy = sms_policy
        self._sender = sender
        self._alerts = AlertCache(store, CACHED_ALERTS, on_evict=self._forget_texts)
        self._sms: dict[tuple[int, int], SmsText] = {}
        self._emails: dict[tuple[int, int], bytes] = {}
        self._attempts, self._budget_s = max_attempts, retry_budget
        self._base, self._factor, self._cap = retry_base, retry_factor, retry_cap
        self._grace = sending_grace
        self._started = clock() if sole else None
        self._slots = asyncio.Semaphore(PARALLEL_CHUNKS)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 for the first retry)."""
        return float(min(self._cap, self._base * self._factor ** max(0, attempt - 2)))

    async def handle(self, message: Message) -> None:
        """The ``deliver.<channel>`` queue's consumer."""
        opened = await open_batch(message.body, self._store, self._clock)
        batch, campaign, deliveries = opened.body, opened.campaign, opened.deliveries
        first_try = float(batch.get("first_try") or self._clock().timestamp())
        sent = await self.deliver(campaign, opened.alert_id, deliveries, first_try=first_try)
        now = self._clock()
        if sent.outcomes:  # skipped, cancelled: the tracker stores them
            await self._broker.publish(EVENTS_QUEUE, outcomes_body(sent.outcomes))
        if sent.stored:  # stored here: the tracker only looks at the campaign's end
            await self._broker.publish(EVENTS_QUEUE, stored_body(campaign.id, sent.stored))
        by_attempt: dict[int, list[BatchRow]] = {}
        for row, attempt, _ in sent.retries:
            by_attempt.setdefault(attempt + 1, []).append(row)
        for attempt, rows in sorted(by_attempt.items()):
            body = dict(batch, deliveries=[list(r) for r in rows], attempt=attempt, first_try=first_try,
                        not_before=now.timestamp() + self.backoff(attempt))
            await self._broker.publish(self.queue, json.dumps(body, separators=(",", ":")).encode())
        if sent.busy:
            # Claimed by another worker not long ago: ask again once its claim may be stale.
            raise Retry(f"{len(sent.busy)} deliveries still sending elsewhere", self._grace.total_seconds())
        # returning acks the batch: only now that its outcomes and retries are confirmed

    async def deliver(self, campaign: Campaign, alert_id: int, deliveries: Sequence[BatchRow], *,
                      first_try: float | None = None) -> Sent:
        """Send what this batch owes, chunk by chunk (see :meth:`_send_group`): each chunk is
        claimed, sent and its answers stored on its own, so a worker killed mid-batch leaves
        only the chunks being written in doubt. Returns the outcomes to publish (stored
        already, or skipped/cancelled) and the transient failures to retry."""
        sent = Sent()
        if campaign.state is CampaignState.CANCELLED:
            sent.outcomes = [(d[0], DeliveryState.CANCELLED, "cancelled", 0, 0.0) for d in deliveries]
            return sent
        if self.channel is Channel.VOICE:
            sent.outcomes = [(d[0], DeliveryState.SKIPPED, "voice not yet available", 0, 0.0)
                             for d in deliveries]
            return sent
        stored, alert = await self._alert(alert_id)
        now = self._clock()
        out = sent.outcomes
        by_info: dict[int, list[BatchRow]] = {}
        for row in deliveries:
            delivery_id, info_index = row[0], row[3]
            info = alert.infos[info_index] if 0 <= info_index < len(alert.infos) else None
            if info is None:
                out.append((delivery_id, DeliveryState.SKIPPED, "no such info in the alert", 0, 0.0))
            elif info.expires is not None and info.expires <= now:
                out.append((delivery_id, DeliveryState.SKIPPED, "expired", 0, 0.0))
            else:
                by_info.setdefault(info_index, []).append(row)
        out_of_time = self._out_of_time(first_try)
        for info_index, group in by_info.items():
            send: Callable[[Sequence[BatchRow], PartIds], Awaitable[list[tuple[OutcomeRow, bool]]]]
            if self.channel is Channel.SMS:
                sms = self._text(campaign, alert.infos[info_index], info_index)
                cost = sms.part_count
                send = functools.partial(self._send_sms_chunk, sms)
            else:
                body = await self._email(campaign, stored, alert, info_index)
                cost = 1
                send = functools.partial(self._send_email_chunk, body)
            await self._send_group(campaign, group, cost, send, sent, out_of_time)
        return sent

    def _out_of_time(self, first_try: float | None) -> bool:
        """Whether the retry budget (seconds since a delivery's first attempt) is spent."""
        if not self._budget_s or first_try is None:
            return False
        return self._clock().timestamp() - first_try >= self._budget_s

    async def _settle(self, results: list[tuple[OutcomeRow, bool]], ids: PartIds,
                      chunk: Sequence[BatchRow], claimed: dict[int, int], sent: Sent,
                      out_of_time: bool) -> None:
        """Store one chunk's answers at once (the submitted marker), and note what to publish
        and what to retry."""
        awaiting: list[tuple[int, int, float]] = []
        final: list[OutcomeRow] = []
        retries: list[tuple[BatchRow, int, str]] = []
        resent: list[int] = []
        for row, (outcome, transient) in zip(chunk, results, strict=True):
            attempt = claimed[row[0]]
            if attempt > 1 and self.channel is Channel.SMS:
                resent.append(row[0])  # the parts its earlier attempts sent are billed with it
            if outcome[1] is DeliveryState.SUBMITTED:
                awaiting.append((row[0], outcome[3], outcome[4]))  # its receipts will tell
            elif transient and attempt < self._attempts and not out_of_time:
                retries.append((row, attempt, outcome[2] or "transient failure"))
            else:
                final.append(outcome)
        await self._store.settle((), [(d[0], reason) for d, _, reason in retries],
                                 at=self._clock(), outcomes=final, message_ids=ids.submitted,
                                 superseded=ids.superseded, awaiting=awaiting, resent=resent)
        sent.stored += len(final) + len(awaiting)
        sent.retries.extend(retries)

    async def _alert(self, alert_id: int) -> tuple[StoredAlert, Alert]:
        return await self._alerts.get(alert_id)

    def _forget_texts(self) -> None:
        self._sms.clear()
        self._emails.clear()

    def _text(self, campaign: Campaign, info: Info, info_index: int) -> SmsText:
        key = (campaign.id, info_index)
        text = self._sms.get(key)
        if text is None:
            text = self._sms[key] = sms_text(info, prefix=self._prefix, max_parts=self._max_parts,
                                             policy=self._policy)
        return text

    def _step(self, cost: int) -> int:
        """Deliveries per write: no more than the rate limit's burst (``cost`` tokens each)."""
        bucket = self._bucket
        return UNLIMITED_CHUNK if bucket.unlimited else max(1, int(self._burst // max(cost, 1)))

    async def _stepped(self, todo: Sequence[BatchRow], cost: int,
                       send: Callable[[Sequence[BatchRow]], Awaitable[list[R]]]) -> list[R]:
        """``send`` for each step of ``todo``, all started at once: each paces itself in turn
        (the bucket queues them in order), so each is written as soon as its tokens are due."""
        step = self._step(cost)
        if step >= len(todo):
            return await send(todo)
        parts = await asyncio.gather(*(send(todo[i:i + step]) for i in range(0, len(todo), step)))
        return [r for part in parts for r in part]

    async def _send_sms_chunk(self, sms: SmsText, todo: Sequence[BatchRow],
                              ids: PartIds) -> list[tuple[OutcomeRow, bool]]:
        """One (outcome, transient) per delivery, in order; the message ids go to ``ids``. Paced
        as the submits are written: by the SMPP pool per submit_sm (its ``pacer``), else here."""
        async def step(rows: Sequence[BatchRow]) -> list[SmsOutcome]:
            if not isinstance(self._provider, SmppSmsProvider):  # its pool paces each submit_sm
                await self._pacer.pace(sms.part_count * len(rows))
            if isinstance(self._provider, SmppSmsProvider | SimulatorSmsProvider):  # receipts carry tags
                return await self._provider.send(sms, [d[1] for d in rows], tags=[d[0] for d in rows])
            provider: SmsProvider = self._provider
            return await provider.send(sms, [d[1] for d in rows])

        queue = self._receipts
        tags = [d[0] for d in todo]
        if queue is not None:
            queue.hold(tags)  # receipts that come while this chunk is in hand: stored with it
        try:
            results = await self._stepped(todo, sms.part_count, step)
            return self._sms_outcomes(sms, todo, results, ids)
        finally:
            if queue is not None:
                queue.release(tags)  # what was not taken (a failure, a cancel) goes the usual way

    def _sms_outcomes(self, sms: SmsText, todo: Sequence[BatchRow], results: Sequence[SmsOutcome],
                      ids: PartIds) -> list[tuple[OutcomeRow, bool]]:
        queue = self._receipts
        out: list[tuple[OutcomeRow, bool]] = []
        for (delivery_id, number, *_), result in zip(todo, results, strict=True):
            # A submitted SMS is billed, delivered or not, at its number's price.
            cost = self._sms_cost(number, result.parts)
            held = queue.take(delivery_id) if queue is not None else []
            if result.ok and result.message_ids:
                # Indexed in canonical form, as receipts look them up (an SMSC may answer
                # "00EE6B2800" and put "ee6b2800" or "4000000000" in the receipt).
                n = len(result.message_ids)
                canon = [canonical_id(mid) for mid in result.message_ids]
                came = _by_part(canon, held)
                if len(came) == n:  # every part's receipt is in: the delivery ends here
                    failed = min((r for r in came.values() if r is not None), default=None)
                    state = DeliveryState.FAILED if failed is not None else DeliveryState.DELIVERED
                    out.append(((delivery_id, state, failed, result.parts, cost), False))
                    continue
                ids.submitted.extend(
                    (delivery_id, mid, i + 1, n, *(("failed" if came[i] else "delivered", came[i])
                                                   if i in came else (None, None)))
                    for i, mid in enumerate(canon))
                out.append(((delivery_id, DeliveryState.SUBMITTED, None, result.parts, cost), False))
            elif result.ok:
                out.append(((delivery_id, DeliveryState.DELIVERED, None, result.parts, cost), False))
            else:
                ids.superseded.extend((delivery_id, canonical_id(mid), 0, sms.part_count)
                                      for mid in result.partial_ids)
                out.append(((delivery_id, DeliveryState.FAILED, result.reason, result.parts, cost),
                            not result.permanent))
        return out

    def _sms_cost(self, number: str, parts: int) -> float:
        """What an SMS of ``parts`` to ``number`` costs, in euro; one price for every number
        when no prefix has its own (kept per part count: Decimal arithmetic per SMS shows)."""
        if self._prices.sms_prefixes:
            return euro(self._prices.sms(number, parts))
        cost = self._flat_sms.get(parts)
        if cost is None:
            cost = self._flat_sms[parts] = euro(self._prices.sms(None, parts))
        return cost

    async def _email(self, campaign: Campaign, stored: StoredAlert, alert: Alert, info_index: int) -> bytes:
        key = (campaign.id, info_index)
        body = self._emails.get(key)
        if body is None:
            signed = await self._countersign(stored) if self._countersign is not None else None
            body = render_email(alert, info_index, sender=self._sender, reply_to=self._sender,
                                signed_cap=signed, message_id_domain=MESSAGE_ID_DOMAIN).as_bytes()
            self._emails[key] = body
        return body

    async def _send_email_chunk(self, body: bytes, todo: Sequence[BatchRow],
                                ids: PartIds) -> list[tuple[OutcomeRow, bool]]:
        """One (outcome, transient) per delivery, in order. Over SMTP, each transaction
        reserves its recipients before MAIL FROM and is admitted right before DATA (what the
        server counts); see :class:`~hub.outputs.ratelimit.Pacer`."""
        async def step(rows: Sequence[BatchRow]) -> list[Outcome]:
            if isinstance(self._provider, SmtpProvider):
                return await self._provider.send(body, self._sender, [d[1] for d in rows], pacer=self._pacer)
            provider: EmailProvider = self._provider
            await self._pacer.pace(len(rows))
            return await provider.send(body, self._sender, [d[1] for d in rows])

        results = await self._stepped(todo, 1, step)
        out: list[tuple[OutcomeRow, bool]] = []
        for (delivery_id, *_), result in zip(todo, results, strict=True):
            if result.ok:
                out.append(((delivery_id, DeliveryState.DELIVERED, None, 0, 0.0), False))
            else:
                out.append(((delivery_id, DeliveryState.FAILED, result.reason, 0, 0.0), not result.permanent))
        return out

    async def _send_group(self, campaign: Campaign, todo: Sequence[BatchRow], cost: int,
                          send: Callable[[Sequence[BatchRow], PartIds],
                                         Awaitable[list[tuple[OutcomeRow, bool]]]],
                          sent: Sent, out_of_time: bool) -> None:
        """The deliveries of one info in chunks, started in order, each once one of the
        worker's ``PARALLEL_CHUNKS`` slots is free (shared by every batch in hand), so that the
        store's commits overlap the pacing but little is committed ahead of the rate.

        A chunk holds what the rate allows in ``CLAIM_SPAN`` seconds (``cost`` tokens each: SMS
        parts, one per e-mail recipient; at least one step of :meth:`_stepped`; at most
        ``UNLIMITED_CHUNK`` deliveries at rate 0), so that the store works a few times per
        second rather than per message, a Cancel is seen between chunks (looked up at most
        every CANCEL_CHECK seconds: what was not started is then cancelled, and what was
        started is at most PARALLEL_CHUNKS × CLAIM_SPAN seconds of sending) and a kill leaves
        little in doubt."""
        bucket = self._bucket
        size = UNLIMITED_CHUNK if bucket.unlimited else \
            max(self._step(cost), int(bucket.rate_per_s * CLAIM_SPAN // max(cost, 1)))
        loop = asyncio.get_running_loop()
        checked = loop.time()
        tasks: list[asyncio.Task[None]] = []
        try:
            for start in range(0, len(todo), size):
                await self._slots.acquire()
                now = loop.time()
                if now - checked >= CANCEL_CHECK:
                    checked = now
                    try:
                        current = await self._store.campaign(campaign.id)
                    except BaseException:
                        self._slots.release()
                        raise
                    if current is not None and current.state is CampaignState.CANCELLED:
                        self._slots.release()
                        sent.outcomes.extend((d[0], DeliveryState.CANCELLED, "cancelled", 0, 0.0)
                                             for d in todo[start:])
                        break
                task = asyncio.create_task(self._chunk(todo[start:start + size], send, sent, out_of_time))
                task.add_done_callback(lambda _: self._slots.release())
                tasks.append(task)
            await asyncio.gather(*tasks)  # a failed chunk fails the batch (the broker redelivers it)
        finally:
            for task in tasks:
                task.cancel()

    async def _chunk(self, chunk: Sequence[BatchRow],
                     send: Callable[[Sequence[BatchRow], PartIds],
                                    Awaitable[list[tuple[OutcomeRow, bool]]]],
                     sent: Sent, out_of_time: bool) -> None:
        """Claim, send (paced inside ``send``), store the answers. Deliveries found sending
        under another worker's recent claim go to ``sent.busy``."""
        at = self._clock()
        stale_before = at - self._grace
        if self._started is not None:
            stale_before = max(stale_before, self._started)
        claimed, busy = await self._store.claim([d[0] for d in chunk], at=at, stale_before=stale_before)
        sent.busy.extend(busy)
        mine = [d for d in chunk if d[0] in claimed]
        if not mine:
            return  # a redelivered batch: sent before
        ids = PartIds()
        results = await send(mine, ids)
        await self._settle(results, ids, mine, claimed, sent, out_of_time)


def _by_part(ids: Sequence[str], held: Sequence[Receipt]) -> dict[int, str | None]:
    """The parts (0-based) of a message whose parts got ``ids`` (canonical) whose final receipt
    is among ``held``: None for a part delivered, else the receipt's reason."""
    if not held:
        return {}
    if len(ids) == 1:  # the usual SMS: one part
        return next(({0: r.reason} for r in held if r.submit_id == ids[0]), {})
    index = {mid: i for i, mid in enumerate(ids)}
    came: dict[int, str | None] = {}
    for receipt in held:
        i = index.get(receipt.submit_id)
        if i is not None:  # else a part of an earlier try of the same delivery: not this message's
            came.setdefault(i, receipt.reason)
    return came
