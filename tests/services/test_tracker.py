"""The tracker against a real store and the embedded broker: outcomes priced by prefix, the
end of sending, campaigns that end when awaited receipts time out, and late receipts (after
the end, after a restart) counted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from hub.broker.base import Message, Reject
from hub.campaigns.cost import Prices
from hub.config import CampaignSettings, CostSettings, Settings
from hub.domain import CampaignState, DeliveryState
from hub.errors import ConfigError
from hub.services.router import EVENTS_QUEUE
from hub.services.tracker import Tracker
from hub.store.sqlite import SqliteStore
from hub.wiring import Hub
from tests.services.test_router import cap, post, queued

KEYS = dict[str, tuple[bytes, bytes]]


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def outcome(delivery_id: int, state: str, parts: int = 0, cost: float = 0.0,
            **more: object) -> dict[str, object]:
    return {"id": delivery_id, "state": state, "reason": None, "parts": parts, "cost_eur": cost, **more}


async def event(tracker: Tracker, rows: list[dict[str, object]]) -> None:
    await tracker.handle(Message(EVENTS_QUEUE, json.dumps(rows).encode()))


async def ids(hub: Hub, campaign_id: int, channel: str) -> dict[str, int]:
    rows = await hub.store._read("SELECT address, id FROM deliveries WHERE campaign_id = ? AND channel = ?",
                                 (campaign_id, channel))
    return {r[0]: r[1] for r in rows}


async def test_campaign_ends_when_receipts_time_out_and_late_ones_still_count(hub: Hub,
                                                                              keypairs: KEYS) -> None:
    clock = Clock()
    prices = Prices(sms_prefixes={"+32478": Decimal("0.08")})
    tracker = Tracker(hub.store, hub.broker, clock, prices=prices, settings=CampaignSettings(sms_wait=60.0))
    alert_id = await post(hub, keypairs, cap("T-1"))
    campaign = await hub.router.route(alert_id)
    assert campaign is not None
    sms, email, voice = [await ids(hub, campaign.id, c) for c in ("sms", "email", "voice")]
    # A worker sends: SMS submitted to the SMSC (awaiting receipts), e-mail delivered, voice skipped.
    claimed, _ = await hub.store.claim([*sms.values(), *email.values()], at=clock())
    assert len(claimed) == 4
    await hub.store.settle(list(sms.values()), [], at=clock())
    await event(tracker, [outcome(i, "delivered") for i in email.values()]
                + [outcome(i, "skipped") for i in voice.values()])
    assert await hub.store.campaign_times(campaign.id) == (clock.now, None)  # sending ended
    sent = [json.loads(m.body) for m in await queued(hub, "delivery.events") if m.topic == "campaign.sent"]
    assert sent == [{"campaign": campaign.id}]
    assert (await hub.store.campaign(campaign.id)).state is CampaignState.SENDING  # type: ignore[union-attr]

    clock.now += timedelta(seconds=30)
    assert await tracker.sweep() == []  # the SMS receipts may still come
    clock.now += timedelta(seconds=31)
    assert await tracker.sweep() == [campaign.id]
    ended = await hub.store.campaign(campaign.id)
    assert ended is not None and ended.state is CampaignState.DONE
    assert (await hub.store.campaign_times(campaign.id))[1] == clock.now
    assert (await hub.store.delivery_states(campaign.id))[("sms", "submitted")] == 2

    # A receipt hours later, priced by the number's prefix (the worker's figure is not kept)...
    clock.now += timedelta(hours=5)
    await event(tracker, [outcome(sms["+32478123456"], "delivered", parts=2, cost=0.11)])
    # ...and one after a restart, by another tracker on the same store file.
    again = SqliteStore(hub.store.path)
    await again.open()
    try:
        await event(Tracker(again, None, clock, prices=prices),
                    [outcome(sms["+32477123456"], "failed", parts=2, cost=0.11)])
    finally:
        await again.close()
    states = await hub.store.delivery_states(campaign.id)
    assert states[("sms", "delivered")] == 1 and states[("sms", "failed")] == 1
    assert ("sms", "submitted") not in states
    tallies = {(t.channel, t.state): t for t in await hub.store.campaign_tally(campaign.id, since=clock.now)}
    assert tallies[("sms", "delivered")].cost_eur == pytest.approx(0.16)
    assert tallies[("sms", "failed")].cost_eur == pytest.approx(0.11)
    assert (await hub.store.campaign(campaign.id)).state is CampaignState.DONE  # type: ignore[union-attr]


async def test_a_campaign_whose_every_delivery_is_final_is_done_at_once(hub: Hub, keypairs: KEYS) -> None:
    clock = Clock()
    tracker = Tracker(hub.store, hub.broker, clock)
    alert_id = await post(hub, keypairs, cap("T-2"))
    campaign = await hub.router.route(alert_id)
    assert campaign is not None
    rows = await hub.store._read("SELECT id, channel FROM deliveries WHERE campaign_id = ?", (campaign.id,))
    await hub.store.claim([r[0] for r in rows], at=clock())
    await event(tracker, [outcome(r[0], "delivered", parts=1 if r[1] == "sms" else 0) for r in rows])
    done = await hub.store.campaign(campaign.id)
    assert done is not None and done.state is CampaignState.DONE
    assert await hub.store.campaign_times(campaign.id) == (clock.now, clock.now)
    assert await hub.store.campaign_cost(campaign.id) == pytest.approx(2 * 0.055)  # voice: no seconds given


async def test_calls_are_priced_per_started_minute(hub: Hub, keypairs: KEYS) -> None:
    clock = Clock()
    tracker = Tracker(hub.store, hub.broker, clock, prices=Prices(voice_prefixes={"+322": Decimal("0.1")}))
    alert_id = await post(hub, keypairs, cap("T-3"))
    campaign = await hub.router.route(alert_id)
    assert campaign is not None
    voice = await ids(hub, campaign.id, "voice")
    await hub.store.claim(list(voice.values()), at=clock())
    await event(tracker, [outcome(voice["+3225112233"], "delivered", seconds=61),
                          outcome(voice["+32477123456"], "delivered", seconds=30),
                          outcome(voice["+32478123456"], "failed", seconds=0)])
    rows = await hub.store._read("SELECT address, cost_eur FROM deliveries WHERE campaign_id = ? "
                                 "AND channel = 'voice'", (campaign.id,))
    assert {r[0]: r[1] for r in rows} == {"+3225112233": pytest.approx(0.2),
                                          "+32477123456": pytest.approx(0.055), "+32478123456": 0.0}


async def test_bad_events_are_rejected(hub: Hub) -> None:
    tracker = Tracker(hub.store, hub.broker)
    for body in (b"not json", json.dumps([{"id": 1, "state": "queued"}]).encode(),
                 json.dumps([{"state": "delivered"}]).encode()):
        with pytest.raises(Reject):
            await tracker.handle(Message(EVENTS_QUEUE, body))


async def test_outcomes_a_worker_stored_itself_cost_the_writer_nothing_until_the_end(
        hub: Hub, keypairs: KEYS) -> None:
    clock = Clock()
    tracker = Tracker(hub.store, hub.broker, clock)
    alert_id = await post(hub, keypairs, cap("T-4"))
    campaign = await hub.router.route(alert_id)
    assert campaign is not None
    rows = [r[0] for r in await hub.store._read("SELECT id FROM deliveries WHERE campaign_id = ? ORDER BY id",
                                                (campaign.id,))]
    await hub.store.claim(rows, at=clock())
    first, last = rows[:-1], rows[-1:]
    # the worker stores the outcomes of a chunk itself, then publishes them
    await hub.store.record_outcomes([(i, DeliveryState.DELIVERED, None, 0, 0.0) for i in first], at=clock())
    assert await hub.store.tracking_needed(first) == ([campaign.id], False)
    await event(tracker, [outcome(i, "delivered") for i in first])
    assert await hub.store.campaign_times(campaign.id) == (None, None)  # one still being sent
    await hub.store.record_outcomes([(i, DeliveryState.DELIVERED, None, 0, 0.0) for i in last], at=clock())
    assert await hub.store.tracking_needed(last) == ([campaign.id], True)  # the campaign's end is due
    await event(tracker, [outcome(i, "delivered") for i in last])
    done = await hub.store.campaign(campaign.id)
    assert done is not None and done.state is CampaignState.DONE
    assert await hub.store.tracking_needed(rows) == ([campaign.id], False)


async def test_a_bad_price_stops_the_hub_before_it_opens_anything(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path), cost=CostSettings(sms_prefix_eur={"0033": 0.08}))
    with pytest.raises(ConfigError, match="cost.sms_prefix_eur: '0033' is not a country prefix"):
        await Hub.start(settings, tmp_path)
    assert not (tmp_path / "hub.sqlite3").exists()


async def test_outcomes_a_worker_priced_flat_are_repriced_by_prefix(hub: Hub, keypairs: KEYS) -> None:
    clock = Clock()
    prices = Prices(sms_prefixes={"+32478": Decimal("0.08")})
    tracker = Tracker(hub.store, hub.broker, clock, prices=prices)
    alert_id = await post(hub, keypairs, cap("T-5"))
    campaign = await hub.router.route(alert_id)
    assert campaign is not None
    sms = await ids(hub, campaign.id, "sms")
    await hub.store.claim(list(sms.values()), at=clock())
    # the worker stored them at the flat 0.055 per part, then published them
    stored = [(i, DeliveryState.DELIVERED, None, 2, 0.11) for i in sms.values()]
    await hub.store.record_outcomes(stored, at=clock())
    await event(tracker, [outcome(i, "delivered", parts=2, cost=0.11) for i in sms.values()])
    rows = await hub.store._read("SELECT address, cost_eur FROM deliveries WHERE campaign_id = ? "
                                 "AND channel = 'sms'", (campaign.id,))
    assert {r[0]: r[1] for r in rows} == {"+32478123456": pytest.approx(0.16),
                                          "+32477123456": pytest.approx(0.11)}
