"""The router stage on real RabbitMQ: `Hub.start` with an AMQP URL and both roles, in the test
session's own virtual host (the ``rabbit`` fixture of tests/broker/conftest.py: skipped when
RabbitMQ is unreachable, failed then under ``CAPHUB_REQUIRE_AMQP=1``), each test under a
queue-name prefix of its own."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aio_pika
import pytest

from hub.broker.base import Message
from hub.config import AmqpSettings, Settings
from hub.domain import CampaignState, EntityType, Role
from hub.services import admin
from hub.services.members import ADMIN
from hub.wiring import Hub
from tests.broker.conftest import Rabbit, rabbit
from tests.services.test_router import MEMBERS, TERRITORY, cap, post

__all__ = ["rabbit"]  # the session fixture, used here by name

Keys = dict[str, tuple[bytes, bytes]]
ROLES = frozenset({"api", "router"})  # no workers: the batches stay in RabbitMQ to be looked at


def amqp_settings(rabbit: Rabbit, data: Path, prefix: str) -> Settings:
    return Settings(data_dir=str(data), amqp=AmqpSettings(url=rabbit.url, prefix=prefix))


@pytest.fixture
def prefix() -> str:
    return f"r{uuid.uuid4().hex[:8]}."


@pytest.fixture
async def hub(rabbit: Rabbit, prefix: str, tmp_path: Path, keypairs: Keys) -> AsyncIterator[Hub]:
    hub = await Hub.start(amqp_settings(rabbit, tmp_path, prefix), tmp_path, roles=ROLES)  # api and router
    entity, _ = await admin.add_entity(hub.store, "PZ", EntityType.GROUPS, ["pz@example.be"],
                                       certificates=[("t", keypairs["police"][1])])
    await admin.add_account(hub.store, "PZ", "dispatch", Role.COORDINATOR)
    await hub.members.add_group(ADMIN, entity, "plp-a", "PLP A", territory=TERRITORY)
    await hub.members.import_csv(ADMIN, "plp-a", MEMBERS)
    try:
        yield hub
    finally:
        await hub.stop()


async def routed(hub: Hub, alert_id: int, timeout: float = 10.0) -> int:
    """Wait until the router consumer has planned and handed over the alert's campaign."""
    async with asyncio.timeout(timeout):
        while True:
            campaign = await hub.store.campaign_for_alert(alert_id)
            if campaign is not None and campaign.state is CampaignState.SENDING:
                return campaign.id
            await asyncio.sleep(0.02)


async def depth(rabbit: Rabbit, queue: str) -> int:
    """Messages ready in a queue of the test's virtual host (confirmed publishes are counted)."""
    connection = await aio_pika.connect(rabbit.url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        count = declared.declaration_result.message_count
        assert count is not None
        return count


async def take(hub: Hub, queue: str, count: int, timeout: float = 10.0) -> list[Message]:
    """Consume ``count`` messages of ``queue`` through the hub's broker (acked)."""
    got: list[Message] = []
    enough = asyncio.Event()

    async def handler(message: Message) -> None:
        got.append(message)
        if len(got) >= count:
            enough.set()

    consumer = await hub.broker.consume(queue, (queue,), handler)
    try:
        async with asyncio.timeout(timeout):
            await enough.wait()
    finally:
        await consumer.cancel()
    return got


async def test_a_posted_alert_is_routed_through_rabbitmq(hub: Hub, keypairs: Keys) -> None:
    alert_id = await post(hub, keypairs, cap("Q-1"))  # ingest publishes alert.accepted
    campaign_id = await routed(hub, alert_id)
    states = await hub.store.delivery_states(campaign_id)
    assert states == {("sms", "queued"): 2, ("voice", "queued"): 3, ("email", "queued"): 2}
    batches = await take(hub, "deliver.sms", 1)
    batch = json.loads(batches[0].body)
    assert batch["campaign"] == campaign_id and batch["alert"] == alert_id and batch["channel"] == "sms"
    assert sorted(d[1] for d in batch["deliveries"]) == ["+32477123456", "+32478123456"]
    assert {d[2] for d in batch["deliveries"]} == {"nl", "fr"}


async def test_a_restarted_hub_republishes_what_is_owed_once(
        rabbit: Rabbit, prefix: str, tmp_path: Path, keypairs: Keys,
        monkeypatch: pytest.MonkeyPatch) -> None:
    hub = await Hub.start(amqp_settings(rabbit, tmp_path, prefix), tmp_path, roles=ROLES)
    try:
        entity, _ = await admin.add_entity(hub.store, "PZ", EntityType.GROUPS, ["pz@example.be"],
                                           certificates=[("t", keypairs["police"][1])])
        await admin.add_account(hub.store, "PZ", "dispatch", Role.COORDINATOR)
        await hub.members.add_group(ADMIN, entity, "plp-a", "PLP A", territory=TERRITORY)
        await hub.members.import_csv(ADMIN, "plp-a", MEMBERS)
        campaign_id = await routed(hub, await post(hub, keypairs, cap("Q-2")))
        states = await hub.store.delivery_states(campaign_id)
    finally:
        await hub.stop()
    sms = f"{prefix}deliver.sms"
    assert await depth(rabbit, sms) == 1  # nothing drained: the batch waits in RabbitMQ

    # Within the grace period the queued deliveries count as in flight: nothing again.
    hub = await Hub.start(amqp_settings(rabbit, tmp_path, prefix), tmp_path, roles=ROLES)
    await hub.stop()
    assert await depth(rabbit, sms) == 1

    # Past it (grace 0), what is owed is handed over again, the stored deliveries unchanged.
    monkeypatch.setattr("hub.wiring.REPUBLISH_AFTER", timedelta(0))
    hub = await Hub.start(amqp_settings(rabbit, tmp_path, prefix), tmp_path, roles=ROLES)
    try:
        assert await depth(rabbit, sms) == 2
        assert await depth(rabbit, f"{prefix}deliver.voice") == 2
        assert await hub.store.delivery_states(campaign_id) == states
        first, again = (json.loads(m.body) for m in await take(hub, "deliver.sms", 2))
        assert first["campaign"] == again["campaign"] == campaign_id
        assert sorted(map(tuple, first["deliveries"])) == sorted(map(tuple, again["deliveries"]))
    finally:
        await hub.stop()
