"""The progress and report SQL (hub/store/sql_progress.py) on a real store: tallies from the
index alone or from the rows agree, the timeline's buckets, the end of sending, and waits per
channel before a campaign ends without the outcomes it still awaits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.domain import CampaignState, DeliveryState
from hub.wiring import Hub
from tests.services.conftest import hub, keypairs
from tests.services.test_router import cap, post

__all__ = ["hub", "keypairs"]  # the stage tests' fixtures
KEYS = dict[str, tuple[bytes, bytes]]
T0 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


async def planned(hub: Hub, keypairs: KEYS, ident: str) -> tuple[int, dict[str, list[int]]]:
    campaign = await hub.router.route(await post(hub, keypairs, cap(ident)))
    assert campaign is not None
    rows = await hub.store._read("SELECT channel, id FROM deliveries WHERE campaign_id = ? ORDER BY id",
                                 (campaign.id,))
    by_channel: dict[str, list[int]] = {}
    for channel, delivery_id in rows:
        by_channel.setdefault(channel, []).append(delivery_id)
    return campaign.id, by_channel


async def test_tallies_from_the_index_and_from_the_rows_agree(hub: Hub, keypairs: KEYS) -> None:
    campaign_id, ids = await planned(hub, keypairs, "S-1")
    await hub.store.claim(ids["sms"] + ids["email"], at=T0)
    await hub.store.record_outcomes([(ids["sms"][0], DeliveryState.DELIVERED, None, 2, 0.11),
                                     (ids["sms"][1], DeliveryState.FAILED, "UNDELIV", 1, 0.055),
                                     (ids["email"][0], DeliveryState.DELIVERED, None, 0, 0.0)],
                                    at=T0 + timedelta(seconds=30))
    since = T0 + timedelta(seconds=20)
    light = {(t.channel, t.language, t.state): (t.count, t.recent, t.cost_eur)
             for t in await hub.store.campaign_tally(campaign_id, since=since)}
    full = await hub.store.campaign_tally(campaign_id, since=since, detail=True)
    assert light == {(t.channel, t.language, t.state): (t.count, t.recent, t.cost_eur) for t in full}
    assert light[("sms", "nl", "delivered")] == (1, 1, 0.11)
    assert light[("voice", "nl", "queued")][:2] == (1, 0)  # not final: never "recent"
    sms = next(t for t in full if (t.channel, t.state) == ("sms", "delivered"))
    assert sms.parts == 2 and sms.first_sent == sms.last_sent == T0
    assert sms.last_update == T0 + timedelta(seconds=30)
    later = {(t.channel, t.state): t.recent
             for t in await hub.store.campaign_tally(campaign_id, since=T0 + timedelta(minutes=1))}
    assert later[("sms", "delivered")] == 0


async def test_timeline_reasons_and_rows(hub: Hub, keypairs: KEYS) -> None:
    campaign_id, ids = await planned(hub, keypairs, "S-2")
    await hub.store.claim(ids["sms"], at=T0)
    for i, delivery_id in enumerate(ids["sms"]):
        await hub.store.record_outcomes([(delivery_id, DeliveryState.FAILED, "UNDELIV err:001", 1, 0.055)],
                                        at=T0 + timedelta(seconds=7 * i))
    assert await hub.store.campaign_timeline(campaign_id, bucket_seconds=5) == [
        ("sms", int(T0.timestamp()), 1), ("sms", int(T0.timestamp()) + 5, 1)]
    minute = await hub.store.campaign_timeline(campaign_id, bucket_seconds=60)
    assert minute == [("sms", int(T0.timestamp()), 2)]
    reasons = await hub.store.campaign_reasons(campaign_id)
    assert sorted(reasons) == [("sms", "fr", "failed", "UNDELIV err:001", 1),
                               ("sms", "nl", "failed", "UNDELIV err:001", 1)]
    rows = await hub.store.report_rows(campaign_id, limit=3)
    assert [r.id for r in rows] == sorted(r.id for r in rows) and len(rows) == 3
    rest = await hub.store.report_rows(campaign_id, after_id=rows[-1].id)
    assert len(rows) + len(rest) == sum(len(v) for v in ids.values())
    assert {r.name for r in rows + rest} == {"An", "Luc"}
    assert {r.channel: r.sent_at for r in rows + rest if r.state == "failed"} == {"sms": T0}


async def test_sending_ends_and_waits_run_out_per_channel(hub: Hub, keypairs: KEYS) -> None:
    campaign_id, ids = await planned(hub, keypairs, "S-3")
    assert await hub.store.mark_sent([campaign_id], at=T0) == []  # all still queued
    await hub.store.claim(ids["sms"] + ids["email"], at=T0)
    await hub.store.settle(ids["sms"] + ids["email"], [], at=T0)  # all submitted, awaiting outcomes
    await hub.store.record_outcomes([(i, DeliveryState.SKIPPED, "voice off", 0, 0.0) for i in ids["voice"]],
                                    at=T0)
    assert await hub.store.mark_sent([campaign_id], at=T0) == [campaign_id]
    assert await hub.store.mark_sent([campaign_id], at=T0) == []  # once
    waits = {"sms": 3600.0, "email": 60.0, "voice": 60.0}
    assert await hub.store.end_waiting_campaigns(waits, at=T0 + timedelta(seconds=61)) == []  # SMS wait
    await hub.store.record_outcomes([(i, DeliveryState.DELIVERED, None, 1, 0.055) for i in ids["sms"]],
                                    at=T0 + timedelta(seconds=70))
    # a channel without a wait waits for ever: the e-mails' outcomes are still awaited
    assert await hub.store.end_waiting_campaigns({"sms": 3600.0}, at=T0 + timedelta(hours=5)) == []
    assert await hub.store.end_waiting_campaigns(waits, at=T0 + timedelta(seconds=71)) == [campaign_id]
    campaign = await hub.store.campaign(campaign_id)
    assert campaign is not None and campaign.state is CampaignState.DONE
    assert await hub.store.campaign_times(campaign_id) == (T0, T0 + timedelta(seconds=71))
