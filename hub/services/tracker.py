"""The tracker stage: delivery outcomes in, stored in batches; campaigns' ends recorded.

It consumes ``delivery.events``: outcome batches (a JSON list of ``{id, state, reason,
parts, cost_eur}``, with ``seconds`` for calls: the voice worker's, the SMS receipts', the
skipped and cancelled of the channel workers), the note a channel worker sends for the
outcomes it stored itself (``{"campaigns": [id], "stored": n}``: nothing to write, the
campaign's end to look at) and the ``campaign.*`` events. Recording is idempotent: a final
state stays final, so a redelivered event changes nothing. Stages store most outcomes
themselves before they publish them; a read (``tracking_needed``) tells the tracker whether
anything is left to write, so that it takes the store's writer, shared with the workers,
only when it has work: then one job stores the outcomes still owed and looks at the
campaigns' ends. An outcome the tracker stores is priced here by the ``[cost]`` settings
and the number's prefix (:mod:`hub.campaigns.cost`): SMS per part, calls per started minute
(the worker's figure when the event gives no ``seconds``).

After each batch it looks at the campaigns it touched (a ``campaign.planned`` event checks
its campaign too: a small campaign may be sent before the router has marked it sending):

- **sending ended** (nothing left pending, queued or being sent): the time is recorded and
  ``campaign.sent`` published; the report is ready from then on;
- **done** when no delivery is owed any more (``campaign.done``).

A campaign whose sent deliveries wait for outcomes that do not come (an SMS receipt lost by
the SMSC) ends when the last of them has waited its channel's ``[campaigns] *_wait``:
:meth:`Tracker.sweep`, run every ``sweep_interval`` seconds. A late outcome, even after the
campaign ended or the hub restarted, is stored like any other: the counts and the report,
which are read from the deliveries, include it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from hub.broker.base import Broker, Message, Reject
from hub.campaigns.cost import Prices, euro
from hub.config import CampaignSettings
from hub.domain import DeliveryState
from hub.services.router import EVENTS_QUEUE
from hub.store.base import CampaignStore

log = logging.getLogger(__name__)

EVENTS_TOPICS = (EVENTS_QUEUE, "campaign.*")
_FINAL = {DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.SKIPPED, DeliveryState.CANCELLED}

OutcomeRow = tuple[int, DeliveryState, str | None, int, float]
# What an outcome costs: (delivery id, channel, number or address, parts, the worker's figure) -> euro
Pricer = Callable[[int, str, str | None, int, float], float]


class TrackerStore(CampaignStore, Protocol):
    async def track_outcomes(self, rows: Sequence[OutcomeRow], *, at: datetime, price: Pricer | None = None,
                             campaign_ids: Sequence[int] = (),
                             costs: Sequence[tuple[int, float]] = ()) -> tuple[list[int], list[int]]:
        """Record the outcomes and the corrected ``costs``, then the end of sending and the end
        of the campaigns touched (and of ``campaign_ids``), in one transaction; returns
        (sending ended, done)."""

    async def delivery_costs(self, delivery_ids: Sequence[int]) -> dict[int, tuple[str, str | None, float]]:
        """(channel, address, cost so far) of these deliveries (read only)."""

    async def tracking_needed(self, delivery_ids: Sequence[int],
                              campaign_ids: Sequence[int] = ()) -> tuple[list[int], bool]:
        """The campaigns of these deliveries, and whether ``track_outcomes`` has work (read only)."""

    async def end_waiting_campaigns(self, waits: Mapping[str, float], *, at: datetime) -> list[int]: ...


def waits(settings: CampaignSettings) -> dict[str, float]:
    """Seconds a sent delivery waits for its outcome, per channel."""
    return {"sms": settings.sms_wait, "voice": settings.voice_wait, "email": settings.email_wait}


class Tracker:
    def __init__(self, store: TrackerStore, broker: Broker | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), *,
                 prices: Prices | None = None, settings: CampaignSettings | None = None) -> None:
        self._store = store
        self._broker = broker
        self._clock = clock
        self._prices = prices or Prices()
        # Workers price SMS at the flat default: outcomes they stored need another look only
        # when the settings price otherwise.
        self._reprice = self._prices != Prices()
        self._settings = settings or CampaignSettings()

    async def handle(self, message: Message) -> None:
        """The ``delivery.events`` queue's consumer."""
        try:
            event = json.loads(message.body)
            rows: list[OutcomeRow]
            seconds: dict[int, float]
            if message.topic == EVENTS_QUEUE and isinstance(event, dict):
                # outcomes their stage stored itself: only the campaigns' ends to look at
                rows, seconds, campaigns = [], {}, [int(c) for c in event["campaigns"]]
            elif message.topic == EVENTS_QUEUE:
                rows, seconds = _outcomes(event)
                campaigns = []
            elif message.topic == "campaign.planned":
                rows, seconds, campaigns = [], {}, [int(event["campaign"])]
            else:
                return  # campaign.cancelled, .sent, .done and others: nothing to count
        except (ValueError, KeyError, TypeError) as exc:
            raise Reject(f"not a delivery event: {exc}") from exc
        # The store's writer is shared with the workers, who store most outcomes themselves:
        # a read tells whether anything is left to write, and then one writer job does it all.
        campaigns, needed = await self._store.tracking_needed([r[0] for r in rows], campaigns)
        costs = await self._corrections(rows, seconds) if self._reprice else []
        if not needed and not costs:
            return
        sent, done = await self._store.track_outcomes(rows, at=self._clock(), price=self._pricer(seconds),
                                                      campaign_ids=campaigns, costs=costs)
        for campaign_id in sent:
            log.info("campaign %d: sending ended, report ready", campaign_id)
            await self._publish("campaign.sent", {"campaign": campaign_id})
        for campaign_id in done:
            log.info("campaign %d done", campaign_id)
            await self._publish("campaign.done", {"campaign": campaign_id})

    async def _corrections(self, rows: Sequence[OutcomeRow],
                           seconds: Mapping[int, float]) -> list[tuple[int, float]]:
        """(delivery, cost) for the outcomes a worker stored at a price other than the settings'
        (it prices at the flat default; the settings may price by prefix)."""
        stored = await self._store.delivery_costs([r[0] for r in rows if r[3] > 0 or r[0] in seconds])
        price = self._pricer(seconds)
        out = []
        for delivery_id, _, _, parts, _ in rows:
            if delivery_id in stored:
                channel, address, cost = stored[delivery_id]
                wanted = price(delivery_id, channel, address, parts, cost)
                if abs(wanted - cost) > 1e-9:
                    out.append((delivery_id, wanted))
        return out

    def _pricer(self, seconds: Mapping[int, float]) -> Pricer:
        """The cost of an outcome by the settings' prices: SMS per part, calls per started
        minute (by the event's ``seconds``; without them, the worker's figure), to the number."""
        def price(delivery_id: int, channel: str, address: str | None, parts: int, given: float) -> float:
            if channel == "sms":
                return euro(self._prices.sms(address, parts))
            if channel == "voice" and delivery_id in seconds:
                return euro(self._prices.voice(address, seconds[delivery_id]))
            return given

        return price

    async def sweep(self) -> list[int]:
        """End the campaigns whose remaining deliveries waited for their outcome longer
        than their channel allows. Returns their ids."""
        ended = await self._store.end_waiting_campaigns(waits(self._settings), at=self._clock())
        for campaign_id in ended:
            log.info("campaign %d done: the outcomes still awaited timed out", campaign_id)
            await self._publish("campaign.done", {"campaign": campaign_id, "timedOut": True})
        return ended

    async def sweep_periodically(self) -> None:
        """Run until cancelled: :meth:`sweep` every ``sweep_interval`` seconds."""
        while True:
            try:
                await self.sweep()
            except Exception:  # keep sweeping; the next sweep catches up
                log.exception("campaign timeout sweep failed")
            await asyncio.sleep(self._settings.sweep_interval)

    async def _publish(self, topic: str, body: dict[str, Any]) -> None:
        if self._broker is not None:
            await self._broker.publish(topic, json.dumps(body).encode())


def _outcomes(event: Any) -> tuple[list[OutcomeRow], dict[int, float]]:
    rows: list[OutcomeRow] = []
    seconds: dict[int, float] = {}
    for e in event:
        row = (int(e["id"]), DeliveryState(e["state"]), e.get("reason"), int(e.get("parts") or 0),
               float(e.get("cost_eur") or 0.0))
        if row[1] not in _FINAL:
            raise ValueError("an outcome must be a final state")
        if e.get("seconds") is not None:
            seconds[row[0]] = float(e["seconds"])
        rows.append(row)
    return rows, seconds
