"""The channel workers: ``deliver.<channel>`` batches in, messages sent, outcomes out.

One ``ChannelWorker`` per channel consumes its queue. For each batch it checks the campaign
is not cancelled and the alert's info not expired (those deliveries are skipped with that
reason), renders the text once per campaign × info (an info is one language), **claims** the
deliveries in the store (pending/queued → sending, atomically: a redelivered batch finds
them claimed and sends nothing twice), takes rate tokens (SMS parts, e-mail recipients),
sends through the provider, then in one store job moves what the provider answered to
submitted, publishes the outcomes to ``delivery.events`` as one message per batch (the
tracker makes them final) and acks the batch only once that message is confirmed.

Transient failures (not ok, not permanent: throttled, queue full, SMTP 4xx...) are not
final: the store job above puts them back to queued with the reason, and they are published
again to ``deliver.<channel>`` as a new, smaller batch carrying ``attempt`` and
``not_before`` (epoch seconds, ``retry_base`` × 2^(attempt − 2), capped at ``retry_cap``; the
provider's ``retry_after`` is not used). A batch that arrives before its ``not_before`` is
handed back with the broker's ``Retry(delay)`` (the RabbitMQ retry ladder, or the embedded
broker's timer), so no worker sleeps on it. The attempt count is the store's (one per
claim): a delivery whose ``retry_budget``-th attempt fails transiently is failed with the
last reason. If the process dies after the store job, the queued retries are republished by
the router's start-up sweep; nothing is dropped.

Crash recovery: a delivery stays **sending** from its claim until the provider's answer is
stored. A worker killed in between (kill -9) leaves it sending; a batch holding it again
(RabbitMQ redelivers the unacked batch; the router's start-up sweep republishes sending
deliveries claimed before its grace) takes it over once the claim is older than
``sending_grace`` (or, with ``sole``, older than this worker's start: the embedded broker's
single process). Until then the batch is retried after the grace. **The rule: a taken-over
delivery is sent again.** Neither the simulators nor SMTP can tell whether a message went
out before the crash, so a recipient may, rarely, get the alert twice; at most once would
risk none at all, which is worse for an alert. (The SMPP path will record message ids per
part and resend only what the SMSC did not take.) A delivery whose answer was stored
(submitted or final) is never sent again; one left submitted by a crash before its outcome
was published keeps that state (sent once; the tracker's counts show it).

**SMPP receipts.** With a real SMSC (:class:`hub.outputs.sms_smpp.SmppSmsProvider`) an SMS
accepted by the SMSC is *submitted*, not delivered: the worker stores the message id of every
part (``delivery_messages``, written before the ack, with the submitted marker) and publishes
no outcome for it. :func:`track_receipts` reads the pool's receipts, records each part's
final receipt in the store (matched by the in-memory tag, else by message id, so a receipt
arriving hours later, after a restart, still finds its delivery) and, once every part of a
delivery has its receipt, publishes the delivery's outcome to ``delivery.events``: delivered
when every part was, else failed with the receipt's state (``UNDELIV err:...``), with the
parts and their cost either way. A receipt for an id nobody knows is logged and dropped.

Voice deliveries are skipped ("voice not yet available").
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from hub.broker.base import Broker, Message, Reject, Retry
from hub.cap.model import Alert, Info
from hub.cap.parse import parse
from hub.domain import Campaign, CampaignState, Channel, DeliveryState, StoredAlert
from hub.outputs.email_render import render_email
from hub.outputs.email_smtp import EmailProvider
from hub.outputs.ratelimit import TokenBucket, acquire
from hub.outputs.simulator import SmsProvider
from hub.outputs.smpp.receipts import Receipt, id_forms
from hub.outputs.sms_smpp import SmppSmsProvider
from hub.outputs.sms_text import Policy, SmsText, sms_cost, sms_text
from hub.services.router import CHANNEL_QUEUES, EVENTS_QUEUE
from hub.store.base import CampaignStore, Store

log = logging.getLogger(__name__)

SMS_PREFIX = "BE-Alert:"
NO_REPLY = "no-reply@hub.invalid"
MESSAGE_ID_DOMAIN = "hub.invalid"
CACHED_ALERTS = 64  # parsed alerts kept (one per campaign in flight)
CANCEL_CHECK = 0.25  # seconds between looks at the campaign's state while a batch is sent

RECEIPT_BATCH = 1_000  # receipts stored and published together at most
RETRY_BUDGET = 5  # attempts per delivery before a transient failure is final
RETRY_BASE = 2.0  # seconds before the 2nd attempt; doubled for each next one
RETRY_CAP = 300.0  # seconds, the longest back-off
SENDING_GRACE = timedelta(minutes=2)  # a claim older than this belongs to a dead worker

# One outcome: (delivery id, state, reason, parts, cost in euro)
OutcomeRow = tuple[int, DeliveryState, str | None, int, float]
# One delivery of a batch: (id, address, language, info index)
BatchRow = tuple[int, str, str, int]


@dataclass
class Sent:
    """What one batch came to: final outcomes, transient failures to retry (each with its
    attempt count and reason), deliveries still sending under another worker's claim, and
    SMS submitted to an SMSC that wait for their receipts (with their message ids: delivery
    id, message id, part, parts)."""

    outcomes: list[OutcomeRow] = field(default_factory=list)
    awaiting: list[int] = field(default_factory=list)
    message_ids: list[tuple[int, str, int, int]] = field(default_factory=list)
    retries: list[tuple[BatchRow, int, str]] = field(default_factory=list)
    busy: list[int] = field(default_factory=list)


class WorkerStore(Store, CampaignStore, Protocol):
    pass


def outcomes_body(rows: Sequence[OutcomeRow]) -> bytes:
    """The body of one ``delivery.events`` message: a JSON list of outcomes."""
    return json.dumps([{"id": i, "state": s.value, "reason": r, "parts": p, "cost_eur": c}
                       for i, s, r, p, c in rows], separators=(",", ":")).encode()


class ChannelWorker:
    def __init__(self, channel: Channel, store: WorkerStore, broker: Broker, provider: Any,
                 bucket: TokenBucket, clock: Callable[[], datetime] = lambda: datetime.now(UTC), *,
                 countersign: Callable[[StoredAlert], Awaitable[bytes]] | None = None,
                 sms_prefix: str = SMS_PREFIX, sms_max_parts: int = 3, sms_policy: Policy = "ucs2",
                 sender: str = NO_REPLY,
                 retry_budget: int = RETRY_BUDGET, retry_base: float = RETRY_BASE,
                 retry_cap: float = RETRY_CAP, sending_grace: timedelta = SENDING_GRACE,
                 sole: bool = False) -> None:
        """``provider`` is an ``SmsProvider`` for SMS, an ``EmailProvider`` for e-mail (and
        unused for voice). ``countersign`` gives the hub-signed CAP attached to e-mails.
        ``sole``: no other process sends this channel (the embedded broker), so a claim
        older than this worker is a dead one's."""
        if retry_budget < 1 or retry_base < 0 or retry_cap < 0:
            raise ValueError("retry_budget must be at least 1, retry_base and retry_cap not negative")
        self.channel = channel
        self.queue = CHANNEL_QUEUES[channel]
        self._store = store
        self._broker = broker
        self._provider = provider
        self._bucket = bucket
        self._clock = clock
        self._countersign = countersign
        self._prefix = sms_prefix
        self._max_parts = sms_max_parts
        self._policy: Policy = sms_policy
        self._sender = sender
        self._alerts: dict[int, tuple[StoredAlert, Alert]] = {}
        self._sms: dict[tuple[int, int], SmsText] = {}
        self._emails: dict[tuple[int, int], bytes] = {}
        self._budget, self._base, self._cap = retry_budget, retry_base, retry_cap
        self._grace = sending_grace
        self._started = clock() if sole else None

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 for the first retry)."""
        return float(min(self._cap, self._base * 2 ** max(0, attempt - 2)))

    async def handle(self, message: Message) -> None:
        """The ``deliver.<channel>`` queue's consumer."""
        try:
            batch = json.loads(message.body)
            campaign_id, alert_id = int(batch["campaign"]), int(batch["alert"])
            deliveries = [(int(d[0]), str(d[1]), str(d[2]), int(d[3])) for d in batch["deliveries"]]
            not_before = float(batch.get("not_before") or 0.0)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise Reject(f"not a delivery batch: {exc}") from exc
        early = not_before - self._clock().timestamp()
        if early > 0:
            raise Retry("a retry batch before its time", early)
        campaign = await self._store.campaign(campaign_id)
        if campaign is None:
            raise Reject(f"no campaign {campaign_id}")
        sent = await self.deliver(campaign, alert_id, deliveries)
        now = self._clock()
        await self._store.add_message_ids(sent.message_ids)
        await self._store.settle([r[0] for r in sent.outcomes] + sent.awaiting,
                                 [(d[0], reason) for d, _, reason in sent.retries], at=now)
        if sent.outcomes:
            await self._broker.publish(EVENTS_QUEUE, outcomes_body(sent.outcomes))
        by_attempt: dict[int, list[BatchRow]] = {}
        for row, attempt, _ in sent.retries:
            by_attempt.setdefault(attempt + 1, []).append(row)
        for attempt, rows in sorted(by_attempt.items()):
            body = dict(batch, deliveries=[list(r) for r in rows], attempt=attempt,
                        not_before=now.timestamp() + self.backoff(attempt))
            await self._broker.publish(self.queue, json.dumps(body, separators=(",", ":")).encode())
        if sent.busy:
            # Claimed by another worker not long ago: ask again once its claim may be stale.
            raise Retry(f"{len(sent.busy)} deliveries still sending elsewhere", self._grace.total_seconds())
        # returning acks the batch: only now that its outcomes and retries are confirmed

    async def deliver(self, campaign: Campaign, alert_id: int, deliveries: Sequence[BatchRow]) -> Sent:
        """Send what this batch owes; the outcomes of what this call claimed or skipped, and
        the transient failures to retry."""
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
        for info_index, group in by_info.items():
            at = self._clock()
            stale_before = at - self._grace
            if self._started is not None:
                stale_before = max(stale_before, self._started)
            claimed, busy = await self._store.claim([d[0] for d in group], at=at, stale_before=stale_before)
            sent.busy.extend(busy)
            todo = [d for d in group if d[0] in claimed]
            if not todo:
                continue  # a redelivered batch: sent before
            if self.channel is Channel.SMS:
                results = await self._send_sms(campaign, alert, info_index, todo, sent)
            else:
                results = await self._send_email(campaign, stored, alert, info_index, todo)
            for row, (outcome, transient) in zip(todo, results, strict=True):
                attempt = claimed[row[0]]
                if outcome[1] is DeliveryState.SUBMITTED:
                    sent.awaiting.append(row[0])  # its receipts will tell
                elif transient and attempt < self._budget:
                    sent.retries.append((row, attempt, outcome[2] or "transient failure"))
                else:
                    out.append(outcome)
        return sent

    async def _alert(self, alert_id: int) -> tuple[StoredAlert, Alert]:
        cached = self._alerts.get(alert_id)
        if cached is not None:
            return cached
        stored = await self._store.alert(alert_id)
        if stored is None:
            raise Reject(f"no alert {alert_id}")
        alert = parse(stored.received, max_bytes=len(stored.received) + 1).alert
        if alert is None:
            raise Reject(f"alert {alert_id} no longer parses")
        if len(self._alerts) >= CACHED_ALERTS:
            self._alerts.pop(next(iter(self._alerts)))
            self._sms.clear()
            self._emails.clear()
        self._alerts[alert_id] = (stored, alert)
        return stored, alert

    def _text(self, campaign: Campaign, info: Info, info_index: int) -> SmsText:
        key = (campaign.id, info_index)
        text = self._sms.get(key)
        if text is None:
            text = self._sms[key] = sms_text(info, prefix=self._prefix, max_parts=self._max_parts,
                                             policy=self._policy)
        return text

    async def _send_sms(self, campaign: Campaign, alert: Alert, info_index: int,
                        todo: Sequence[BatchRow], sent: Sent) -> list[tuple[OutcomeRow, bool]]:
        """One (outcome, transient) per delivery, in order; an SMS waiting for its receipts
        has the state SUBMITTED, its message ids added to ``sent``."""
        sms = self._text(campaign, alert.infos[info_index], info_index)
        out: list[tuple[OutcomeRow, bool]] = []
        async for chunk, rest in self._paced(campaign, todo, sms.part_count):
            if chunk is None:  # the campaign was cancelled while this batch was being sent
                out.extend(_cancelled(rest))
                break
            out.extend(await self._send_sms_chunk(sms, chunk, sent))
        return out

    async def _send_sms_chunk(self, sms: SmsText, todo: Sequence[BatchRow],
                              sent: Sent) -> list[tuple[OutcomeRow, bool]]:
        if isinstance(self._provider, SmppSmsProvider):
            results = await self._provider.send(sms, [d[1] for d in todo], tags=[d[0] for d in todo])
        else:
            provider: SmsProvider = self._provider
            results = await provider.send(sms, [d[1] for d in todo])
        out: list[tuple[OutcomeRow, bool]] = []
        for (delivery_id, *_), result in zip(todo, results, strict=True):
            cost = float(sms_cost(result.parts))  # a submitted SMS is billed, delivered or not
            if result.ok and result.message_ids:
                n = len(result.message_ids)
                sent.message_ids.extend((delivery_id, mid, i + 1, n)
                                        for i, mid in enumerate(result.message_ids))
                out.append(((delivery_id, DeliveryState.SUBMITTED, None, result.parts, cost), False))
            elif result.ok:
                out.append(((delivery_id, DeliveryState.DELIVERED, None, result.parts, cost), False))
            else:
                out.append(((delivery_id, DeliveryState.FAILED, result.reason, result.parts, cost),
                            not result.permanent))
        return out

    async def _email(self, campaign: Campaign, stored: StoredAlert, alert: Alert, info_index: int) -> bytes:
        key = (campaign.id, info_index)
        body = self._emails.get(key)
        if body is None:
            signed = await self._countersign(stored) if self._countersign is not None else None
            body = render_email(alert, info_index, sender=self._sender, reply_to=self._sender,
                                signed_cap=signed, message_id_domain=MESSAGE_ID_DOMAIN).as_bytes()
            self._emails[key] = body
        return body

    async def _send_email(self, campaign: Campaign, stored: StoredAlert, alert: Alert, info_index: int,
                          todo: Sequence[BatchRow]) -> list[tuple[OutcomeRow, bool]]:
        """One (outcome, transient) per delivery, in order."""
        body = await self._email(campaign, stored, alert, info_index)
        provider: EmailProvider = self._provider
        out: list[tuple[OutcomeRow, bool]] = []
        async for chunk, rest in self._paced(campaign, todo, 1):
            if chunk is None:
                out.extend(_cancelled(rest))
                break
            results = await provider.send(body, self._sender, [d[1] for d in chunk])
            for (delivery_id, *_), result in zip(chunk, results, strict=True):
                if result.ok:
                    out.append(((delivery_id, DeliveryState.DELIVERED, None, 0, 0.0), False))
                else:
                    out.append(((delivery_id, DeliveryState.FAILED, result.reason, 0, 0.0),
                                not result.permanent))
        return out

    async def _paced(self, campaign: Campaign, todo: Sequence[BatchRow],
                     cost: int) -> AsyncIterator[tuple[Sequence[BatchRow] | None, Sequence[BatchRow]]]:
        """The batch in chunks no larger than the rate limit's burst, each yielded once its
        tokens are taken (``cost`` each: SMS parts, one per e-mail recipient), so that no
        second goes over the rate and a Cancel is seen between chunks (looked up at most
        every CANCEL_CHECK seconds): then ``(None, what was not sent)`` ends it."""
        bucket = self._bucket
        size = len(todo) if bucket.unlimited else max(1, int(bucket.burst // max(cost, 1)))
        checked = asyncio.get_running_loop().time()
        for start in range(0, len(todo), size):
            chunk = todo[start:start + size]
            now = asyncio.get_running_loop().time()
            if start and now - checked >= CANCEL_CHECK:
                checked = now
                current = await self._store.campaign(campaign.id)
                if current is not None and current.state is CampaignState.CANCELLED:
                    yield None, todo[start:]
                    return
            await acquire(bucket, cost * len(chunk))
            yield chunk, ()


def _receipt_row(receipt: Receipt) -> tuple[tuple[str, ...], int | None, int, int, bool, str | None]:
    reason = None if receipt.delivered else receipt.state + (f" err:{receipt.error}" if receipt.error else "")
    tag = receipt.tag if isinstance(receipt.tag, int) else None
    return id_forms(receipt.message_id), tag, receipt.part, receipt.parts, receipt.delivered, reason


async def record_receipts(store: CampaignStore, broker: Broker,
                          receipts: Sequence[Receipt]) -> list[OutcomeRow]:
    """Store final receipts per part; publish (and return) the outcomes of the deliveries
    whose every part now has its receipt."""
    final = [r for r in receipts if r.final]
    if not final:
        return []
    done = await store.message_receipts([_receipt_row(r) for r in final])
    rows: list[OutcomeRow] = [
        (delivery_id, DeliveryState.DELIVERED if ok else DeliveryState.FAILED, reason, parts,
         float(sms_cost(parts)))
        for delivery_id, ok, reason, parts in done]
    if rows:
        await broker.publish(EVENTS_QUEUE, outcomes_body(rows))
    return rows


async def track_receipts(store: CampaignStore, broker: Broker, queue: asyncio.Queue[Receipt]) -> None:
    """Run until cancelled: receipts from ``queue`` (the SMPP pool's), stored and published
    in batches of what has arrived (at most ``RECEIPT_BATCH``)."""
    while True:
        batch = [await queue.get()]
        while len(batch) < RECEIPT_BATCH and not queue.empty():
            batch.append(queue.get_nowait())
        try:
            await record_receipts(store, broker, batch)
        except Exception:  # keep reading: a later receipt of the same delivery completes it
            log.exception("could not record %d delivery receipts", len(batch))


def _cancelled(rows: Sequence[BatchRow]) -> list[tuple[OutcomeRow, bool]]:
    """Deliveries this worker claimed but will not send: the campaign was cancelled."""
    return [((d[0], DeliveryState.CANCELLED, "cancelled", 0, 0.0), False) for d in rows]
