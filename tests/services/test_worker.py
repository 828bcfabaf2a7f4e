"""The channel workers and the tracker against a real store and the embedded broker: from a
routed alert to delivered/failed deliveries, a done campaign and its cost; exactly once on
redelivery; cancelled and expired campaigns skipped."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hub.broker.base import Message, Retry
from hub.campaigns.cost import Prices
from hub.config import Settings, SignatureSettings
from hub.domain import CampaignState, Channel, EntityType, Role
from hub.outputs.email_smtp import SimulatorEmailProvider
from hub.outputs.ratelimit import TokenBucket
from hub.outputs.simulator import SimulatorSmsProvider, SmsOutcome
from hub.outputs.sms_text import SMS_PRICE_EUR, SmsText
from hub.services import admin
from hub.services.members import ADMIN
from hub.services.router import CHANNEL_QUEUES, EVENTS_QUEUE
from hub.services.tracker import EVENTS_TOPICS, Tracker
from hub.services.worker import ChannelWorker
from hub.wiring import Hub

# The router's tests' hub: stages driven by hand, on a real store and the embedded broker.
from tests.services.test_router import MEMBERS, TERRITORY, cap, post, queued

KEYS = dict[str, tuple[bytes, bytes]]


def workers(hub: Hub, *, clock_skew: timedelta = timedelta(0)) -> dict[Channel, ChannelWorker]:
    providers: dict[Channel, object] = {
        Channel.SMS: SimulatorSmsProvider(delivery_ratio=1.0, seed=1, keep_sent=True),
        Channel.EMAIL: SimulatorEmailProvider(delivery_ratio=0.0, permanent_share=1.0, seed=1),
        Channel.VOICE: None,
    }
    return {c: ChannelWorker(c, hub.store, hub.broker, p, TokenBucket(0),
                             lambda: datetime.now(UTC) + clock_skew, countersign=hub.ingest.countersign)
            for c, p in providers.items()}


async def rows(hub: Hub, campaign_id: int) -> list[tuple[str, str, str | None, int, float]]:
    found = await hub.store._read(
        "SELECT channel, state, reason, parts, cost_eur FROM deliveries WHERE campaign_id = ? ORDER BY id",
        (campaign_id,))
    return [tuple(r) for r in found]  # type: ignore[misc]


async def wait_state(hub: Hub, campaign_id: int, state: CampaignState) -> None:
    for _ in range(200):
        campaign = await hub.store.campaign(campaign_id)
        if campaign is not None and campaign.state is state:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"campaign {campaign_id} never reached {state}: {await rows(hub, campaign_id)}")


async def test_a_routed_alert_is_sent_tracked_and_done(hub: Hub, keypairs: KEYS) -> None:
    running = workers(hub)
    tracker = Tracker(hub.store, hub.broker)
    consumers = [await hub.broker.consume(w.queue, (w.queue,), w.handle) for w in running.values()]
    consumers.append(await hub.broker.consume(EVENTS_QUEUE, EVENTS_TOPICS, tracker.handle))
    try:
        campaign = await hub.router.route(await post(hub, keypairs, cap("W-1")))
        assert campaign is not None
        await wait_state(hub, campaign.id, CampaignState.DONE)
    finally:
        for c in consumers:
            await c.cancel()
    states = await hub.store.delivery_states(campaign.id)
    assert states == {("sms", "delivered"): 2, ("email", "failed"): 2, ("voice", "skipped"): 3}
    got = await rows(hub, campaign.id)
    assert {r[2] for r in got if r[0] == "voice"} == {"voice not yet available"}
    assert {r[2] for r in got if r[0] == "email"} == {"550 5.1.1 simulated: mailbox unavailable"}
    sms = running[Channel.SMS]._provider
    assert isinstance(sms, SimulatorSmsProvider) and sms.submits == 2
    assert all(text.startswith("BE-Alert:") for _, text in sms.sent)
    parts = sum(r[3] for r in got if r[0] == "sms")
    assert parts == sms.parts >= 2
    cost = await hub.store.campaign_cost(campaign.id)
    assert Decimal(str(cost)) == SMS_PRICE_EUR * parts


async def test_a_redelivered_batch_sends_nothing_twice(hub: Hub, keypairs: KEYS) -> None:
    worker = workers(hub)[Channel.SMS]
    campaign = await hub.router.route(await post(hub, keypairs, cap("W-2")))
    assert campaign is not None
    [batch] = await queued(hub, CHANNEL_QUEUES[Channel.SMS])
    await worker.handle(batch)
    await worker.handle(Message(batch.topic, batch.body, attempt=2))  # a crash before the ack
    sms = worker._provider
    assert isinstance(sms, SimulatorSmsProvider) and sms.submits == 2
    events = await queued(hub, EVENTS_QUEUE)
    # Stored by the worker (the tracker is told once, to look at the campaign's end).
    assert [json.loads(m.body) for m in events if m.topic == EVENTS_QUEUE] == [
        {"campaigns": [campaign.id], "stored": 2}]
    got = [r for r in await rows(hub, campaign.id) if r[0] == "sms"]
    assert {r[1] for r in got} == {"delivered"}
    assert all(r[4] == pytest.approx(r[3] * 0.055) for r in got)


async def test_a_cancelled_campaign_is_skipped(hub: Hub, keypairs: KEYS) -> None:
    worker = workers(hub)[Channel.SMS]
    alert_id = await post(hub, keypairs, cap("W-3"))
    campaign = await hub.router.route(alert_id)
    assert campaign is not None
    await hub.router.cancel([alert_id])
    for batch in await queued(hub, CHANNEL_QUEUES[Channel.SMS]):
        await worker.handle(batch)
    sms = worker._provider
    assert isinstance(sms, SimulatorSmsProvider) and sms.submits == 0
    events = [json.loads(m.body) for m in await queued(hub, EVENTS_QUEUE) if m.topic == EVENTS_QUEUE]
    assert [{(o["state"], o["reason"]) for o in e} for e in events] == [{("cancelled", "cancelled")}]
    assert (await hub.store.delivery_states(campaign.id))[("sms", "cancelled")] == 2


async def test_an_expired_alert_is_skipped_with_its_reason(hub: Hub, keypairs: KEYS) -> None:
    running = workers(hub, clock_skew=timedelta(hours=2))  # the alert expires after one hour
    tracker = Tracker(hub.store)
    campaign = await hub.router.route(await post(hub, keypairs, cap("W-4")))
    assert campaign is not None
    for channel in (Channel.SMS, Channel.EMAIL, Channel.VOICE):
        for batch in await queued(hub, CHANNEL_QUEUES[channel]):
            await running[channel].handle(batch)
    for event in await queued(hub, EVENTS_QUEUE):
        await tracker.handle(event)
    got = await rows(hub, campaign.id)
    assert {(r[0], r[1], r[2]) for r in got if r[0] != "voice"} == {
        ("sms", "skipped", "expired"), ("email", "skipped", "expired")}
    assert await hub.store.campaign_cost(campaign.id) == 0
    again = await hub.store.campaign(campaign.id)
    assert again is not None and again.state is CampaignState.DONE


async def test_serve_sends_with_the_simulators(tmp_path: Path, keypairs: KEYS) -> None:
    hub = await Hub.start(Settings(data_dir=str(tmp_path), signature=SignatureSettings()), tmp_path)
    try:
        entity, _ = await admin.add_entity(hub.store, "PZ", EntityType.GROUPS, ["pz@example.be"],
                                           certificates=[("t", keypairs["police"][1])])
        await admin.add_account(hub.store, "PZ", "dispatch", Role.COORDINATOR)
        await hub.members.add_group(ADMIN, entity, "plp-a", "PLP A", territory=TERRITORY)
        await hub.members.import_csv(ADMIN, "plp-a", MEMBERS)
        alert_id = await post(hub, keypairs, cap("S-2"))
        for _ in range(200):
            campaign = await hub.store.campaign_for_alert(alert_id)
            if campaign is not None and campaign.state is CampaignState.DONE:
                break
            await asyncio.sleep(0.02)
        assert campaign is not None and campaign.state is CampaignState.DONE
        states = await hub.store.delivery_states(campaign.id)
        assert {s for (c, s) in states if c != "voice"} <= {"delivered", "failed"}
        assert sum(n for (c, _), n in states.items() if c == "sms") == 2
        assert await hub.store.campaign_cost(campaign.id) > 0
    finally:
        await hub.stop()


class FlakySms:
    """An SMS provider that fails each number's first ``failures`` attempts transiently."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.tries: dict[str, int] = {}
        self.sent: list[str] = []

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def send(self, sms: SmsText, numbers: Sequence[str]) -> list[SmsOutcome]:
        self.calls += 1
        out: list[SmsOutcome] = []
        for n in numbers:
            tries = self.tries[n] = self.tries.get(n, 0) + 1
            if tries <= self.failures:
                out.append(SmsOutcome(n, False, sms.part_count, f"throttled ({tries})", permanent=False))
            else:
                self.sent.append(n)
                out.append(SmsOutcome(n, True, sms.part_count))
        return out


def sms_worker(hub: Hub, provider: Any, **options: Any) -> ChannelWorker:
    return ChannelWorker(Channel.SMS, hub.store, hub.broker, provider, TokenBucket(0),
                         countersign=hub.ingest.countersign, **options)


async def sms_states(hub: Hub, campaign_id: int) -> list[tuple[str, str | None, int]]:
    found = await hub.store._read("SELECT state, reason, attempts FROM deliveries WHERE campaign_id = ? "
                                  "AND channel = 'sms' ORDER BY id", (campaign_id,))
    return [tuple(r) for r in found]  # type: ignore[misc]


async def handle_when_due(worker: ChannelWorker, message: Message) -> None:
    for _ in range(100):
        try:
            await worker.handle(message)
            return
        except Retry as exc:
            assert exc.delay < 1
            await asyncio.sleep(exc.delay)
    raise AssertionError("never due")


async def test_a_transient_failure_is_retried_then_delivered(hub: Hub, keypairs: KEYS) -> None:
    provider = FlakySms(failures=1)
    worker = sms_worker(hub, provider, retry_base=0.5)
    tracker = Tracker(hub.store)
    campaign = await hub.router.route(await post(hub, keypairs, cap("W-5")))
    assert campaign is not None
    [batch] = await queued(hub, CHANNEL_QUEUES[Channel.SMS])
    await worker.handle(batch)
    assert [m for m in await queued(hub, EVENTS_QUEUE) if m.topic == EVENTS_QUEUE] == []  # nothing final
    assert [(s, r) for s, r, _ in await sms_states(hub, campaign.id)] == [("queued", "throttled (1)")] * 2
    [again] = await queued(hub, CHANNEL_QUEUES[Channel.SMS])
    body = json.loads(again.body)
    assert body["attempt"] == 2 and len(body["deliveries"]) == 2
    with pytest.raises(Retry):  # too early: handed back to the broker, not sent
        await worker.handle(again)
    calls = provider.calls
    await handle_when_due(worker, again)
    for event in await queued(hub, EVENTS_QUEUE):
        await tracker.handle(event)
    assert [(s, a) for s, _, a in await sms_states(hub, campaign.id)] == [("delivered", 2)] * 2
    assert provider.calls > calls and sorted(provider.tries.values()) == [2, 2] and len(provider.sent) == 2


async def test_after_the_budget_a_transient_failure_is_failed_with_the_last_reason(
        hub: Hub, keypairs: KEYS) -> None:
    provider = FlakySms(failures=99)
    worker = sms_worker(hub, provider, max_attempts=3, retry_base=0.01)
    tracker = Tracker(hub.store)
    campaign = await hub.router.route(await post(hub, keypairs, cap("W-6")))
    assert campaign is not None
    [batch] = await queued(hub, CHANNEL_QUEUES[Channel.SMS])
    await worker.handle(batch)
    for _ in range(2):
        [batch] = await queued(hub, CHANNEL_QUEUES[Channel.SMS])
        await handle_when_due(worker, batch)
    assert await queued(hub, CHANNEL_QUEUES[Channel.SMS]) == []  # no fourth attempt
    messages = await queued(hub, EVENTS_QUEUE)
    events = [json.loads(m.body) for m in messages if m.topic == EVENTS_QUEUE]
    assert events == [{"campaigns": [campaign.id], "stored": 2}]  # the final failures, stored
    for event in messages:
        await tracker.handle(event)
    assert await sms_states(hub, campaign.id) == [("failed", "throttled (3)", 3)] * 2
    assert sorted(provider.tries.values()) == [3, 3]


async def test_a_delivery_left_sending_by_a_killed_worker_is_sent_again(hub: Hub, keypairs: KEYS) -> None:
    campaign = await hub.router.route(await post(hub, keypairs, cap("W-7")))
    assert campaign is not None
    [batch] = await queued(hub, CHANNEL_QUEUES[Channel.SMS])
    ids = [d[0] for d in json.loads(batch.body)["deliveries"]]
    claimed, _ = await hub.store.claim(ids, at=datetime.now(UTC))  # then kill -9: never sent
    assert sorted(claimed) == sorted(ids)
    assert {s for s, _, _ in await sms_states(hub, campaign.id)} == {"sending"}
    # Another worker's claim, too recent to take over: the batch comes back later.
    with pytest.raises(Retry):
        await sms_worker(hub, FlakySms(0)).handle(batch)
    # After a restart: the router's sweep republishes what was left sending...
    await asyncio.sleep(0.01)
    assert await hub.router.republish(published_before=datetime.now(UTC)) == 7  # sms + email/voice queued
    [again] = await queued(hub, CHANNEL_QUEUES[Channel.SMS])
    # ...and the new worker (sole sender of its channel, as with the embedded broker) sends it.
    provider = FlakySms(0)
    restarted = sms_worker(hub, provider, sole=True)
    await restarted.handle(again)
    assert len(provider.sent) == 2
    assert {s for s, _, _ in await sms_states(hub, campaign.id)} == {"delivered"}  # stored with the send
    # Its outcome stored, a redelivered batch or another restart sends nothing twice.
    await restarted.handle(Message(again.topic, again.body, attempt=2))
    await sms_worker(hub, provider, sole=True).handle(batch)
    assert len(provider.sent) == 2
    assert await hub.router.republish(published_before=datetime.now(UTC)) == 5  # not the submitted sms
    tracker = Tracker(hub.store)
    for event in await queued(hub, EVENTS_QUEUE):
        await tracker.handle(event)
    assert [(s, a) for s, _, a in await sms_states(hub, campaign.id)] == [("delivered", 2)] * 2


async def test_the_worker_prices_each_sms_by_its_numbers_prefix(hub: Hub, keypairs: KEYS) -> None:
    """Outcomes carry each number's own price (``[cost]`` per prefix), not the flat default."""
    worker = ChannelWorker(Channel.SMS, hub.store, hub.broker,
                           SimulatorSmsProvider(delivery_ratio=1.0, seed=1), TokenBucket(0),
                           prices=Prices(sms_prefixes={"+32478": Decimal("0.08")}))
    campaign = await hub.router.route(await post(hub, keypairs, cap("W-PRICE")))
    assert campaign is not None
    [batch] = await queued(hub, CHANNEL_QUEUES[Channel.SMS])
    await worker.handle(batch)
    got = [r for r in await rows(hub, campaign.id) if r[0] == "sms"]
    assert sorted(r[4] / r[3] for r in got) == pytest.approx([0.055, 0.08])


async def test_receipts_the_store_could_not_take_are_recorded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SMSC had its deliver_sm_resp: a batch of receipts dropped on a busy store is never
    # sent again, and its deliveries would wait as submitted for a day.
    from hub.outputs.smpp import Receipt
    from hub.services import receipts as worker_module

    monkeypatch.setattr(worker_module, "RECEIPT_RETRY", 0.01)

    class BusyOnce:
        calls = 0

        async def message_receipts(self, rows: Sequence[Any]) -> list[tuple[int, bool, str | None, int]]:
            self.calls += 1
            if self.calls == 1:
                raise OSError("database is locked")
            return [(7, True, None, 1)]

    class Events:
        bodies: list[bytes] = []

        async def publish(self, topic: str, body: bytes) -> None:
            self.bodies.append(body)

    store, broker = BusyOnce(), Events()
    queue: asyncio.Queue[Receipt] = asyncio.Queue()
    task = asyncio.create_task(worker_module.track_receipts(store, broker, queue))  # type: ignore[arg-type]
    queue.put_nowait(Receipt("100", "DELIVRD", tag=7))
    try:
        for _ in range(200):
            if broker.bodies:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert store.calls == 2 and [o["id"] for o in json.loads(broker.bodies[0])] == [7]
