"""The channel workers: ``deliver.<channel>`` batches in, messages sent, outcomes out.

One ``ChannelWorker`` per channel consumes its queue. For each batch it checks the campaign
is not cancelled and the alert's info not expired (those deliveries are skipped with that
reason), renders the text once per campaign × info (an info is one language), **claims** the
deliveries in the store (pending/queued → submitted, atomically: a redelivered batch finds
them claimed and sends nothing twice), takes rate tokens (SMS parts, e-mail recipients),
sends through the provider and publishes the outcomes to ``delivery.events`` as one message
per batch. The batch is acked only once that message is confirmed.

A delivery claimed by a worker that died before publishing its outcome stays submitted: it
is never sent again (at most once beats twice for an alert); the tracker's counts show it.

Not yet: transient provider failures are recorded as failures with the provider's reason
(no broker retries yet); voice deliveries are skipped ("voice not yet available").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from hub.broker.base import Broker, Message, Reject
from hub.cap.model import Alert, Info
from hub.cap.parse import parse
from hub.domain import Campaign, CampaignState, Channel, DeliveryState, StoredAlert
from hub.outputs.email_render import render_email
from hub.outputs.email_smtp import EmailProvider
from hub.outputs.ratelimit import TokenBucket, acquire
from hub.outputs.simulator import SmsProvider
from hub.outputs.sms_text import SmsText, sms_cost, sms_text
from hub.services.router import CHANNEL_QUEUES, EVENTS_QUEUE
from hub.store.base import CampaignStore, Store

log = logging.getLogger(__name__)

SMS_PREFIX = "BE-Alert:"
NO_REPLY = "no-reply@hub.invalid"
MESSAGE_ID_DOMAIN = "hub.invalid"
CACHED_ALERTS = 64  # parsed alerts kept (one per campaign in flight)

# One outcome: (delivery id, state, reason, parts, cost in euro)
OutcomeRow = tuple[int, DeliveryState, str | None, int, float]


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
                 sms_prefix: str = SMS_PREFIX, sender: str = NO_REPLY) -> None:
        """``provider`` is an ``SmsProvider`` for SMS, an ``EmailProvider`` for e-mail (and
        unused for voice). ``countersign`` gives the hub-signed CAP attached to e-mails."""
        self.channel = channel
        self.queue = CHANNEL_QUEUES[channel]
        self._store = store
        self._broker = broker
        self._provider = provider
        self._bucket = bucket
        self._clock = clock
        self._countersign = countersign
        self._prefix = sms_prefix
        self._sender = sender
        self._alerts: dict[int, tuple[StoredAlert, Alert]] = {}
        self._sms: dict[tuple[int, int], SmsText] = {}
        self._emails: dict[tuple[int, int], bytes] = {}

    async def handle(self, message: Message) -> None:
        """The ``deliver.<channel>`` queue's consumer."""
        try:
            batch = json.loads(message.body)
            campaign_id, alert_id = int(batch["campaign"]), int(batch["alert"])
            deliveries = [(int(d[0]), str(d[1]), str(d[2]), int(d[3])) for d in batch["deliveries"]]
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise Reject(f"not a delivery batch: {exc}") from exc
        campaign = await self._store.campaign(campaign_id)
        if campaign is None:
            raise Reject(f"no campaign {campaign_id}")
        rows = await self.deliver(campaign, alert_id, deliveries)
        if rows:
            await self._broker.publish(EVENTS_QUEUE, outcomes_body(rows))
        # returning acks the batch: only now that its outcomes are confirmed

    async def deliver(self, campaign: Campaign, alert_id: int,
                      deliveries: Sequence[tuple[int, str, str, int]]) -> list[OutcomeRow]:
        """Send what this batch owes; the outcomes of what this call claimed or skipped."""
        if campaign.state is CampaignState.CANCELLED:
            return [(d[0], DeliveryState.CANCELLED, "cancelled", 0, 0.0) for d in deliveries]
        if self.channel is Channel.VOICE:
            return [(d[0], DeliveryState.SKIPPED, "voice not yet available", 0, 0.0) for d in deliveries]
        stored, alert = await self._alert(alert_id)
        now = self._clock()
        out: list[OutcomeRow] = []
        by_info: dict[int, list[tuple[int, str]]] = {}
        for delivery_id, address, _language, info_index in deliveries:
            info = alert.infos[info_index] if 0 <= info_index < len(alert.infos) else None
            if info is None:
                out.append((delivery_id, DeliveryState.SKIPPED, "no such info in the alert", 0, 0.0))
            elif info.expires is not None and info.expires <= now:
                out.append((delivery_id, DeliveryState.SKIPPED, "expired", 0, 0.0))
            else:
                by_info.setdefault(info_index, []).append((delivery_id, address))
        for info_index, group in by_info.items():
            claimed = set(await self._store.claim([d for d, _ in group], at=self._clock()))
            todo = [(d, a) for d, a in group if d in claimed]
            if not todo:
                continue  # a redelivered batch: sent before
            if self.channel is Channel.SMS:
                out.extend(await self._send_sms(campaign, alert, info_index, todo))
            else:
                out.extend(await self._send_email(campaign, stored, alert, info_index, todo))
        return out

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
            text = self._sms[key] = sms_text(info, prefix=self._prefix)
        return text

    async def _send_sms(self, campaign: Campaign, alert: Alert, info_index: int,
                        todo: Sequence[tuple[int, str]]) -> list[OutcomeRow]:
        sms = self._text(campaign, alert.infos[info_index], info_index)
        await acquire(self._bucket, sms.part_count * len(todo))
        provider: SmsProvider = self._provider
        results = await provider.send(sms, [a for _, a in todo])
        out: list[OutcomeRow] = []
        for (delivery_id, _), result in zip(todo, results, strict=True):
            cost = float(sms_cost(result.parts))  # a submitted SMS is billed, delivered or not
            if result.ok:
                out.append((delivery_id, DeliveryState.DELIVERED, None, result.parts, cost))
            else:
                out.append((delivery_id, DeliveryState.FAILED, result.reason, result.parts, cost))
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
                          todo: Sequence[tuple[int, str]]) -> list[OutcomeRow]:
        body = await self._email(campaign, stored, alert, info_index)
        await acquire(self._bucket, len(todo))
        provider: EmailProvider = self._provider
        results = await provider.send(body, self._sender, [a for _, a in todo])
        out: list[OutcomeRow] = []
        for (delivery_id, _), result in zip(todo, results, strict=True):
            if result.ok:
                out.append((delivery_id, DeliveryState.DELIVERED, None, 0, 0.0))
            else:
                out.append((delivery_id, DeliveryState.FAILED, result.reason, 0, 0.0))
        return out
