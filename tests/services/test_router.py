"""The router stage against a real store and the embedded broker: from an accepted alert to
stored deliveries and deliver.<channel> batches; idempotent, cancellable, re-publishable."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.broker.base import Message
from hub.cap.sign import sign
from hub.config import Settings
from hub.domain import CampaignState, DeliveryState, EntityType, Role
from hub.services import admin
from hub.services.ingest import Caller
from hub.services.members import ADMIN
from hub.services.router import STORE_CHUNK, Router
from hub.wiring import Hub

TERRITORY = json.dumps({"type": "Polygon", "coordinates": [
    [[4.30, 50.80], [4.40, 50.80], [4.40, 50.90], [4.30, 50.90], [4.30, 50.80]]]})
EMAIL_ONLY = "<parameter><valueName>channels</valueName><value>email</value></parameter>"
MEMBERS = (b"naam;gsm;telefoon;e-mail;taal\n"
           b"An;0477 12 34 56;;an@example.be;nl\n"
           b"Luc;0478 12 34 56;02 511 22 33;luc@example.be;fr\n")


def cap(identifier: str, *, msg_type: str = "Alert", references: str = "", status: str = "Actual",
        params: str = "") -> bytes:
    sent = datetime.now(UTC).replace(microsecond=0)
    expires = (sent + timedelta(hours=1)).isoformat()
    refs = f"<references>{references}</references>" if references else ""
    info = "" if msg_type == "Cancel" else "".join(
        f"<info><language>{lang}</language><category>Safety</category><event>Brand</event>"
        f"<urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>"
        f"<expires>{expires}</expires><headline>Rook</headline>{params}<area><areaDesc>Centrum</areaDesc>"
        f"<polygon>50.83,4.33 50.83,4.38 50.87,4.38 50.87,4.33 50.83,4.33</polygon></area></info>"
        for lang in ("nl-BE", "fr-BE"))
    return (f'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>{identifier}</identifier>'
            f"<sender>pz@example.be</sender><sent>{sent.isoformat()}</sent><status>{status}</status>"
            f"<msgType>{msg_type}</msgType><scope>Public</scope>{refs}{info}</alert>").encode()


async def post(hub: Hub, keypairs: dict[str, tuple[bytes, bytes]], data: bytes) -> int:
    account = await hub.store.account_by_name("dispatch")
    entity = await hub.store.entity_by_name("PZ")
    assert account is not None and entity is not None
    outcome = await hub.ingest.post(sign(data, *keypairs["police"]), Caller(account, entity))
    assert outcome.status == 201, outcome.problems
    assert outcome.stored is not None
    return outcome.stored.id


async def queued(hub: Hub, queue: str) -> list[Message]:
    got: list[Message] = []

    async def take(m: Message) -> None:
        got.append(m)

    consumer = await hub.broker.consume(queue, (queue,), take)
    await asyncio.sleep(0.05)
    await consumer.cancel()
    return got


async def test_an_alert_becomes_a_campaign_with_batches_per_channel(
        hub: Hub, keypairs: dict[str, tuple[bytes, bytes]]) -> None:
    alert_id = await post(hub, keypairs, cap("A-1"))
    campaign = await hub.router.route(alert_id)
    assert campaign is not None and campaign.state is CampaignState.SENDING
    plan = json.loads(campaign.plan)
    # An is in both groups and gets each message once; Luc is called on his mobile and landline.
    assert plan["deliveries"] == {"sms": 2, "voice": 3, "email": 2}
    assert plan["members_matched"] == 2 and set(plan["groups"]) == {"plp-a", "plp-b"}
    states = await hub.store.delivery_states(campaign.id)
    assert states == {("sms", "queued"): 2, ("voice", "queued"): 3, ("email", "queued"): 2}
    sms = await queued(hub, "deliver.sms")
    batch = json.loads(sms[0].body)
    assert batch["campaign"] == campaign.id and batch["channel"] == "sms" and not batch["simulation"]
    assert sorted(d[1] for d in batch["deliveries"]) == ["+32477123456", "+32478123456"]
    assert {d[2] for d in batch["deliveries"]} == {"nl", "fr"}
    again = await hub.router.route(alert_id)  # the same event delivered twice
    assert again is not None and again.id == campaign.id
    assert await hub.store.delivery_states(campaign.id) == states


async def test_channels_parameter_exercise_and_cancel(
        hub: Hub, keypairs: dict[str, tuple[bytes, bytes]]) -> None:
    only_email = "<parameter><valueName>channels</valueName><value>email</value></parameter>"
    alert_id = await post(hub, keypairs, cap("A-2", status="Exercise", params=only_email))
    campaign = await hub.router.route(alert_id)
    assert campaign is not None and campaign.simulation
    assert json.loads(campaign.plan)["deliveries"] == {"email": 2}
    stored = await hub.store.alert(alert_id)
    assert stored is not None
    cancelled = await hub.router.cancel([alert_id])
    assert cancelled == [campaign.id]
    states = await hub.store.delivery_states(campaign.id)
    assert states == {("email", DeliveryState.CANCELLED.value): 2}
    again = await hub.store.campaign(campaign.id)
    assert again is not None and again.state is CampaignState.CANCELLED


async def test_republish_hands_over_what_is_owed(hub: Hub, keypairs: dict[str, tuple[bytes, bytes]]) -> None:
    alert_id = await post(hub, keypairs, cap("A-3"))
    campaign = await hub.router.route(alert_id)
    assert campaign is not None
    await queued(hub, "deliver.sms")  # drain: as if the broker had lost them
    count = await hub.router.republish(published_before=datetime.now(UTC) + timedelta(seconds=1))
    assert count == 7
    assert len(json.loads((await queued(hub, "deliver.sms"))[0].body)["deliveries"]) == 2


async def test_erasing_a_member_leaves_an_anonymous_delivery(
        hub: Hub, keypairs: dict[str, tuple[bytes, bytes]]) -> None:
    campaign = await hub.router.route(await post(hub, keypairs, cap("A-4")))
    assert campaign is not None
    member = (await hub.members.members(ADMIN, "plp-a", search="An"))[0]
    await hub.members.erase_member(ADMIN, member.id)
    owed = await hub.store.unsent_deliveries(published_before=datetime.now(UTC) + timedelta(1))
    assert all(d.member_id != member.id for d in owed)
    assert sum((await hub.store.delivery_states(campaign.id)).values()) == 7


async def test_nothing_is_planned_for_a_cancel_or_an_expired_alert(
        hub: Hub, keypairs: dict[str, tuple[bytes, bytes]]) -> None:
    alert_id = await post(hub, keypairs, cap("A-5"))
    stored = await hub.store.alert(alert_id)
    assert stored is not None
    ref = f"{stored.sender},{stored.identifier},{stored.sent}"
    cancel_id = await post(hub, keypairs, cap("C-5", msg_type="Cancel", references=ref))
    assert await hub.router.route(cancel_id) is None


async def test_serve_routes_what_it_accepts(tmp_path: Path, keypairs: dict[str, tuple[bytes, bytes]]) -> None:
    hub = await Hub.start(Settings(data_dir=str(tmp_path)), tmp_path)  # every stage, one process
    try:
        entity, _ = await admin.add_entity(hub.store, "PZ", EntityType.GROUPS, ["pz@example.be"],
                                           certificates=[("t", keypairs["police"][1])])
        await admin.add_account(hub.store, "PZ", "dispatch", Role.COORDINATOR)
        await hub.members.add_group(ADMIN, entity, "plp-a", "PLP A", territory=TERRITORY)
        await hub.members.import_csv(ADMIN, "plp-a", MEMBERS)
        alert_id = await post(hub, keypairs, cap("S-1"))
        for _ in range(100):
            campaign = await hub.store.campaign_for_alert(alert_id)
            # the workers and the tracker run too: it may be sent and done already
            if campaign is not None and campaign.state in (CampaignState.SENDING, CampaignState.DONE):
                break
            await asyncio.sleep(0.02)
        assert campaign is not None and campaign.state in (CampaignState.SENDING, CampaignState.DONE)
    finally:
        await hub.stop()


async def test_an_alert_whose_event_was_lost_is_routed_at_start_up(
        hub: Hub, keypairs: dict[str, tuple[bytes, bytes]]) -> None:
    alert_id = await post(hub, keypairs, cap("L-1"))  # nobody consumes "route" in this hub
    assert await hub.store.campaign_for_alert(alert_id) is None
    await hub.router.republish(published_before=datetime.now(UTC))
    campaign = await hub.store.campaign_for_alert(alert_id)
    assert campaign is not None and campaign.state is CampaignState.SENDING
    assert await hub.store.unrouted_alerts() == []


async def test_the_first_batch_is_handed_over_before_the_rest_is_stored(
        hub: Hub, keypairs: dict[str, tuple[bytes, bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers start sending while a large plan is still being stored: the first chunk stored
    is one batch, published and marked queued before the next chunk is stored."""
    rows = [b"naam;gsm;telefoon;e-mail;taal"]
    rows += [f"M{i};;;m{i}@example.org;nl".encode() for i in range(STORE_CHUNK + 250)]
    await hub.members.import_csv(ADMIN, "plp-a", b"\n".join(rows) + b"\n")
    steps: list[tuple[str, int]] = []
    store, broker = hub.store, hub.broker
    add, publish = store.add_deliveries, broker.publish_many

    async def add_deliveries(campaign_id: int, planned: Any, **kw: Any) -> Any:
        steps.append(("store", len(planned)))
        return await add(campaign_id, planned, **kw)

    async def publish_many(queue: str, bodies: Any) -> Any:
        steps.append((queue, sum(len(json.loads(b)["deliveries"]) for b in bodies)))
        return await publish(queue, bodies)

    monkeypatch.setattr(store, "add_deliveries", add_deliveries)
    monkeypatch.setattr(broker, "publish_many", publish_many)
    router = Router(store, broker, batch_size=100)
    campaign = await router.route(await post(hub, keypairs, cap("A-BIG", params=EMAIL_ONLY)))
    assert campaign is not None and campaign.state is CampaignState.SENDING
    email = STORE_CHUNK + 250 + 2  # the fixture's An and Luc have an address too
    assert steps[:2] == [("store", 100), ("deliver.email", 100)]
    assert steps[2] == ("store", STORE_CHUNK)
    assert sum(n for what, n in steps if what == "store") == email
    assert sum(n for what, n in steps if what == "deliver.email") == email
    assert await store.delivery_states(campaign.id) == {("email", "queued"): email}
    batches = await queued(hub, "deliver.email")
    ids = [d[0] for b in batches for d in json.loads(b.body)["deliveries"]]
    assert len(ids) == len(set(ids)) == email


async def test_a_shared_process_leaves_the_workers_time_during_a_large_hand_over(
        hub: Hub, keypairs: dict[str, tuple[bytes, bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``leave_share`` the router waits after each chunk it stored and published, as long
    as the chunk took times share / (1 - share); without, it never waits."""
    import hub.services.router as router_module

    monkeypatch.setattr(router_module, "STORE_CHUNK", 200)
    rows = [b"naam;gsm;telefoon;e-mail;taal"] + [f"M{i};;;m{i}@example.org;nl".encode() for i in range(650)]
    await hub.members.import_csv(ADMIN, "plp-a", b"\n".join(rows) + b"\n")
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float, *args: Any) -> Any:
        if sys._getframe(1).f_code.co_filename == router_module.__file__:
            waits.append(delay)
        return await real_sleep(delay, *args)

    monkeypatch.setattr(router_module.asyncio, "sleep", sleep)
    for share, ident in ((0.0, "L-0"), (0.5, "L-5")):
        waits.clear()
        router = Router(hub.store, hub.broker, batch_size=100, leave_share=share)
        campaign = await router.route(await post(hub, keypairs, cap(ident, params=EMAIL_ONLY)))
        assert campaign is not None and campaign.state is CampaignState.SENDING
        # 652 deliveries in chunks of 100, 200, 200, 152: a wait after each but the last
        assert len(waits) == (3 if share else 0) and all(w > 0 for w in waits)
    with pytest.raises(ValueError):
        Router(hub.store, hub.broker, leave_share=1.0)


async def test_serve_leaves_its_workers_time_a_router_alone_does_not(tmp_path: Path) -> None:
    together = await Hub.start(Settings(data_dir=str(tmp_path / "a")), tmp_path / "a")
    alone = await Hub.start(Settings(data_dir=str(tmp_path / "b")), tmp_path / "b",
                            roles=frozenset({"router"}))
    try:
        assert together.router.leave_share == 0.5 and alone.router.leave_share == 0.0
    finally:
        await together.stop()
        await alone.stop()
