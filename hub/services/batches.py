"""A delivery batch as the router publishes it to ``deliver.<channel>``, read by every channel
worker the same way: decoded, held back until its ``not_before`` and tied to its campaign."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from hub.broker.base import Reject, Retry
from hub.domain import Campaign

# One delivery of a batch: (delivery id, address, language, info index)
BatchRow = tuple[int, str, str, int]


class CampaignSource(Protocol):
    async def campaign(self, campaign_id: int) -> Campaign | None: ...


@dataclass(frozen=True, slots=True)
class Batch:
    body: dict[str, Any]  # the whole message, for fields only one channel reads
    campaign: Campaign
    alert_id: int
    deliveries: list[BatchRow]


async def open_batch(body: bytes, store: CampaignSource, clock: Callable[[], datetime]) -> Batch:
    """The batch in ``body``: a :class:`Reject` when it is not one or its campaign is gone,
    a :class:`Retry` when it is a retry batch whose time has not come."""
    try:
        batch = json.loads(body)
        campaign_id, alert_id = int(batch["campaign"]), int(batch["alert"])
        deliveries = [(int(d[0]), str(d[1]), str(d[2]), int(d[3])) for d in batch["deliveries"]]
        not_before = float(batch.get("not_before") or 0.0)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise Reject(f"not a delivery batch: {exc}") from exc
    early = not_before - clock().timestamp()
    if early > 0:
        raise Retry("a retry batch before its time", early)
    campaign = await store.campaign(campaign_id)
    if campaign is None:
        raise Reject(f"no campaign {campaign_id}")
    return Batch(batch, campaign, alert_id, deliveries)
