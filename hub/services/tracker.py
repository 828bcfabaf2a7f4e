"""The tracker stage: delivery outcomes in, stored in batches; campaigns marked done.

It consumes ``delivery.events``: the workers' outcome batches (a JSON list of ``{id, state,
reason, parts, cost_eur}``) and the ``campaign.*`` events. After each batch it marks done the
campaigns it touched that owe nothing any more (a ``campaign.planned`` event checks its
campaign too: a small campaign may be sent before the router has marked it sending).
Recording is idempotent: a final state stays final, so a redelivered event changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from hub.broker.base import Broker, Message, Reject
from hub.domain import DeliveryState
from hub.services.router import EVENTS_QUEUE
from hub.store.base import CampaignStore

log = logging.getLogger(__name__)

EVENTS_TOPICS = (EVENTS_QUEUE, "campaign.*")
_FINAL = {DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.SKIPPED, DeliveryState.CANCELLED}


class TrackerStore(CampaignStore, Protocol):
    pass


class Tracker:
    def __init__(self, store: TrackerStore, broker: Broker | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._store = store
        self._broker = broker
        self._clock = clock

    async def handle(self, message: Message) -> None:
        """The ``delivery.events`` queue's consumer."""
        try:
            event = json.loads(message.body)
            if message.topic == EVENTS_QUEUE:
                rows = [(int(e["id"]), DeliveryState(e["state"]), e.get("reason"), int(e.get("parts") or 0),
                         float(e.get("cost_eur") or 0.0)) for e in event]
                if any(r[1] not in _FINAL for r in rows):
                    raise ValueError("an outcome must be a final state")
                campaigns = await self._store.record_outcomes(rows, at=self._clock())
            elif message.topic == "campaign.planned":
                campaigns = [int(event["campaign"])]
            else:
                return  # campaign.cancelled and others: nothing to count
        except (ValueError, KeyError, TypeError) as exc:
            raise Reject(f"not a delivery event: {exc}") from exc
        for campaign_id in await self._store.finish_campaigns(campaigns, at=self._clock()):
            log.info("campaign %d done", campaign_id)
            if self._broker is not None:
                await self._broker.publish("campaign.done", json.dumps({"campaign": campaign_id}).encode())
