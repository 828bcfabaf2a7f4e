"""The router stage: an accepted alert becomes a campaign, its deliveries stored and handed to
the channel queues in batches.

It consumes the ``route`` queue (``alert.accepted``, ``alert.cancelled``). Planning is pure
(``hub.routing.plan``); this module only reads the store, writes the plan in batches, and
publishes ``deliver.<channel>`` messages of a few hundred deliveries each. It is idempotent:
an event delivered twice finds its campaign already planned and does nothing more, and a
delivery is stored once per (campaign, channel, address). The store is the source of truth:
``republish`` hands the broker again whatever is owed and not in flight (at start-up).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from hub import rights
from hub.broker.base import Broker, Message, Reject
from hub.cap.model import Alert, MsgType, Status
from hub.cap.parse import parse
from hub.domain import Campaign, CampaignState, Channel, DeliveryRow, DeliveryState, Kind, Language
from hub.routing.directory import Directory
from hub.routing.plan import CampaignPlan, Delivery, plan_campaign
from hub.services.events import alert_event
from hub.store.base import CampaignStore, MemberStore, Store

log = logging.getLogger(__name__)
_T = TypeVar("_T")

ROUTE_QUEUE = "route"
ROUTE_TOPICS = ("alert.accepted", "alert.cancelled")
CHANNEL_QUEUES = {c: f"deliver.{c.value}" for c in Channel}
# The simulation environment's own queues: a simulation campaign's batches go only there, to
# workers whose providers are simulators, so that nothing of it can reach a real provider.
SIMULATION_QUEUES = {c: f"simulate.{c.value}" for c in Channel}
EVENTS_QUEUE = "delivery.events"
BATCH_SIZE = 500  # deliveries per deliver.<channel> message
STORE_CHUNK = 5_000  # deliveries per store transaction
# Status values whose alerts owe no one anything.
_SILENT = {Status.SYSTEM, Status.DRAFT}


class RouterStore(Store, MemberStore, CampaignStore, Protocol):
    async def unrouted_alerts(self, *, limit: int = 1000) -> list[int]:
        """Active Alerts and Updates without a campaign (their event never got routed)."""


def delivery_batch(campaign: Campaign, channel: Channel, rows: Sequence[DeliveryRow]) -> bytes:
    """The body of one ``deliver.<channel>`` message. It carries addresses (personal data):
    the channel workers need them, and the broker is inside the hub's trust boundary."""
    return json.dumps({
        "campaign": campaign.id, "alert": campaign.alert_id, "channel": channel.value,
        "simulation": campaign.simulation,
        "deliveries": [[r.id, r.address, r.language, r.info] for r in rows],
    }, separators=(",", ":")).encode()


def queue_for(campaign: Campaign, channel: Channel) -> str:
    """The queue of a campaign's batches on a channel: the simulation's for a simulation."""
    return (SIMULATION_QUEUES if campaign.simulation else CHANNEL_QUEUES)[channel]


class Router:
    def __init__(self, store: RouterStore, broker: Broker, *, executor: Executor | None = None,
                 default_language: Language = Language.NL, batch_size: int = BATCH_SIZE,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), simulation: bool = False,
                 leave_share: float = 0.0) -> None:
        """``simulation``: the whole hub is a simulation environment (every campaign is one);
        otherwise Exercise and Test alerts and the alerts of simulation entities are.
        ``leave_share``: the share of its time a large plan's hand-over leaves to the rest of
        the process, when channel workers share it (``serve``): handing over 75,000 deliveries
        at full speed took the e-mail worker's first two seconds down to 2,000/s at a
        2,500/s rate, and a second lost at a rate limit is lost for good. After each chunk the
        router waits ``leave_share / (1 - leave_share)`` × the time the chunk took; at 0.5 it
        still stores and publishes ~15,000 deliveries a second, well ahead of any channel."""
        if not 0 <= leave_share < 1:
            raise ValueError("leave_share must be in [0, 1)")
        self.leave_share = leave_share
        self._leave = leave_share / (1 - leave_share)
        self._simulation = simulation
        self._store = store
        self._broker = broker
        self._executor = executor
        self._default_language = default_language
        self._batch_size = batch_size
        self._clock = clock

    async def _cpu(self, fn: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def handle(self, message: Message) -> None:
        """The ``route`` queue's consumer."""
        _, alert_id, references = alert_event(message.body)
        if message.topic == "alert.cancelled":
            await self.cancel(references)
        else:
            await self.route(alert_id)

    async def cancel(self, alert_ids: Sequence[int]) -> list[int]:
        """Stop every delivery not yet sent of the campaigns of these alerts."""
        if not alert_ids:
            return []
        ids = await self._store.cancel_campaigns(alert_ids, at=self._clock())
        if ids:
            await self._broker.publish("campaign.cancelled", json.dumps({"campaigns": ids}).encode())
        return ids

    async def route(self, alert_id: int) -> Campaign | None:
        """Plan the campaign of an accepted alert, store it and hand it to the channels.
        None when the message owes nothing (a Cancel, an Ack, a System or Draft message)."""
        stored = await self._store.alert(alert_id)
        if stored is None:
            raise Reject(f"no alert {alert_id}")
        if stored.msg_type not in (MsgType.ALERT.value, MsgType.UPDATE.value) or \
                Status(stored.status) in _SILENT or stored.entity_id is None:
            return None
        # Parsed off the event loop: lxml holds the GIL in bursts, and the loop also answers posts.
        received = stored.received
        alert = (await self._cpu(lambda: parse(received, max_bytes=len(received) + 1))).alert
        if alert is None:
            raise Reject(f"alert {alert_id} no longer parses")
        kind = rights.message_kind(alert)
        kind = kind if isinstance(kind, Kind) else Kind.ALERT
        now = self._clock()
        # As marked when received: an entity taken live since then does not make it real.
        simulation = self._simulation or alert.status in (Status.EXERCISE, Status.TEST) or stored.simulation
        campaign, _ = await self._store.open_campaign(alert_id, stored.entity_id, kind,
                                                      simulation=simulation, at=now)
        if campaign.state is not CampaignState.PLANNING:
            return campaign  # planned before: this event was delivered again
        plan = await self._plan(alert, campaign, now)
        await self._hand_over(campaign, plan, now)
        state = CampaignState.SENDING if len(plan) else CampaignState.NOTHING
        await self._store.set_plan(campaign.id, json.dumps(plan.counts()), state, at=self._clock())
        await self._broker.publish("campaign.planned", json.dumps(
            {"campaign": campaign.id, "alert": alert_id, "deliveries": len(plan)}).encode())
        log.info("campaign %d of alert %d: %d deliveries %s", campaign.id, alert_id, len(plan),
                 {c.value: n for c, n in plan.per_channel().items()})
        return await self._store.campaign(campaign.id)

    async def _plan(self, alert: Alert, campaign: Campaign, now: datetime) -> CampaignPlan:
        assert campaign.entity_id is not None
        entity = await self._store.entity(campaign.entity_id)
        if entity is None:
            raise Reject(f"no entity {campaign.entity_id}")
        groups = await self._store.groups(entity.id)
        members, phones, emails, links = await self._store.directory_rows([g.gid for g in groups])

        def plan() -> CampaignPlan:
            directory = Directory.from_rows(members=members, phones=phones, emails=emails,
                                            memberships=links, groups=groups)
            return plan_campaign(alert, entity_type=entity.type, entity_groups=groups,
                                 directory=directory, kind=campaign.kind,
                                 default_language=self._default_language, now=now)

        return await self._cpu(plan)

    async def _hand_over(self, campaign: Campaign, plan: CampaignPlan, now: datetime) -> None:
        """Store the plan and hand it to the broker chunk by chunk, each chunk's batches
        published (their confirms in flight together) and marked queued as soon as the chunk
        is stored. The first chunk is a single batch, so that the workers start sending while
        the rest is stored; later ones hold a few thousand deliveries per transaction."""
        loop = asyncio.get_running_loop()
        for channel in plan.per_channel():
            chunk: list[Delivery] = []
            size = self._batch_size
            for part in plan.batches(channel, self._batch_size):
                chunk.extend(part)
                if len(chunk) >= size:
                    started = loop.time()
                    await self._store_and_publish(campaign, channel, chunk, now)
                    if self._leave:
                        await asyncio.sleep((loop.time() - started) * self._leave)
                    chunk, size = [], STORE_CHUNK
            if chunk:
                await self._store_and_publish(campaign, channel, chunk, now)

    async def _store_and_publish(self, campaign: Campaign, channel: Channel, chunk: Sequence[Delivery],
                                 now: datetime) -> None:
        rows = await self._store.add_deliveries(
            campaign.id, [(d.member_id, d.channel, d.address, d.language, d.info) for d in chunk], at=now)
        await self._publish(campaign, channel, [r for r in rows if r.state is DeliveryState.PENDING])

    async def _publish(self, campaign: Campaign, channel: Channel, owed: Sequence[DeliveryRow]) -> None:
        """These deliveries to their channel's queue in batches, confirmed, then marked queued."""
        if not owed:
            return
        size = self._batch_size
        bodies = [delivery_batch(campaign, channel, owed[i:i + size]) for i in range(0, len(owed), size)]
        await self._broker.publish_many(queue_for(campaign, channel), bodies)
        await self._store.mark_queued([r.id for r in owed], at=self._clock())

    async def republish(self, *, published_before: datetime) -> int:
        """Hand the broker again every delivery still owed and not in flight (pending, or
        queued before ``published_before``), after routing the accepted alerts whose event
        never reached a router. Workers skip what was already sent, so a delivery the broker
        did keep is not sent twice. Returns how many deliveries were published."""
        for alert_id in await self._store.unrouted_alerts():
            await self.route(alert_id)  # publishes what it plans
        total, after = 0, 0
        campaigns: dict[int, Campaign | None] = {}
        while True:
            rows = await self._store.unsent_deliveries(published_before=published_before, after_id=after)
            if not rows:
                return total
            after = rows[-1].id
            by_key: dict[tuple[int, Channel], list[DeliveryRow]] = {}
            for row in rows:
                by_key.setdefault((row.campaign_id, row.channel), []).append(row)
            for (campaign_id, channel), owed in by_key.items():
                if campaign_id not in campaigns:
                    campaigns[campaign_id] = await self._store.campaign(campaign_id)
                campaign = campaigns[campaign_id]
                if campaign is None or campaign.state is CampaignState.CANCELLED:
                    continue
                await self._publish(campaign, channel, owed)
                total += len(owed)
