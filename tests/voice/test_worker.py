"""The voice worker on a real store and the embedded broker: from a routed alert to calls and
their outcomes, retries of busy and unanswered numbers, a Cancel mid-campaign, a number that
cannot be dialled, a redelivered batch; then over SIP to sipp, with the user agent killed
mid-campaign."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from hub.broker.base import Message, Retry
from hub.domain import Channel, DeliveryState
from hub.services.router import CHANNEL_QUEUES, EVENTS_QUEUE
from hub.services.tracker import Tracker
from hub.voice.providers import SimulatorVoiceProvider, SipVoiceProvider, VoiceProvider
from hub.voice.tts import AudioCache, EspeakTts
from hub.voice.worker import VoiceWorker
from hub.wiring import Hub
from tests.services.test_router import cap, post, queued
from tests.voice.conftest import sip_settings
from tests.voice.peers import Sipp

KEYS = dict[str, tuple[bytes, bytes]]
VOICE = CHANNEL_QUEUES[Channel.VOICE]
NUMBERS = {"+32477123456", "+32478123456", "+3225112233"}  # the fixture's members' numbers


def worker(hub: Hub, provider: VoiceProvider, **kw: object) -> VoiceWorker:
    options: dict[str, object] = dict(calls_per_minute=0, retry_interval=0, attempts=2)
    options.update(kw)
    return VoiceWorker(hub.store, hub.broker, provider, **options)  # type: ignore[arg-type]


async def events(hub: Hub) -> list[dict[str, object]]:
    return [o for m in await queued(hub, EVENTS_QUEUE) if m.topic == EVENTS_QUEUE for o in json.loads(m.body)]


async def route(hub: Hub, keypairs: KEYS, identifier: str) -> tuple[int, int, list[Message]]:
    alert_id = await post(hub, keypairs, cap(identifier))
    campaign = await hub.router.route(alert_id)
    assert campaign is not None
    return alert_id, campaign.id, await queued(hub, VOICE)


async def test_calls_are_placed_and_their_outcomes_published(hub: Hub, keypairs: KEYS) -> None:
    provider = SimulatorVoiceProvider(answer_ratio=1.0, seed=1, keep_called=True)
    voice = worker(hub, provider)
    _, campaign_id, batches = await route(hub, keypairs, "V-1")
    for batch in batches:
        await voice.handle(batch)
    assert set(provider.called) == NUMBERS and provider.calls == 3
    published = await queued(hub, EVENTS_QUEUE)
    got = [o for m in published if m.topic == EVENTS_QUEUE for o in json.loads(m.body)]
    assert {o["state"] for o in got} == {"delivered"} and len(got) == 3
    assert all(o["parts"] == 1 and o["cost_eur"] == 0.055 and 2 < float(str(o["seconds"])) < 60 for o in got)
    tracker = Tracker(hub.store, hub.broker)
    for m in published:
        await tracker.handle(m)
    assert await hub.store.campaign_cost(campaign_id) == 0.165
    # the same batch again (a crash before its ack): nobody is called twice
    for batch in batches:
        await voice.handle(Message(batch.topic, batch.body, attempt=2))
    assert provider.calls == 3


async def test_busy_and_unanswered_numbers_are_retried_then_failed_uncharged(
        hub: Hub, keypairs: KEYS) -> None:
    provider = SimulatorVoiceProvider(answer_ratio=0.0, seed=3)
    voice = worker(hub, provider, attempts=2, retry_interval=0)
    _, campaign_id, batches = await route(hub, keypairs, "V-2")
    for batch in batches:
        await voice.handle(batch)
    assert provider.calls == 3 and await events(hub) == []
    states = await hub.store.delivery_states(campaign_id)
    assert states[("voice", "queued")] == 3
    retries = await queued(hub, VOICE)
    bodies = [json.loads(r.body) for r in retries]
    assert sum(len(b["deliveries"]) for b in bodies) == 3
    assert all(b["not_before"] <= datetime.now(UTC).timestamp() for b in bodies)
    for retry in retries:
        await voice.handle(retry)
    assert provider.calls == 6
    got = await events(hub)
    assert {o["state"] for o in got} == {"failed"} and {o["cost_eur"] for o in got} == {0.0}
    reasons = [str(o["reason"]) for o in got]
    assert all(r.startswith(("busy: 486", "no answer: 480")) and "after 2 attempts" in r for r in reasons)


async def test_a_retry_waits_for_its_interval(hub: Hub, keypairs: KEYS) -> None:
    voice = worker(hub, SimulatorVoiceProvider(answer_ratio=0.0, seed=3), retry_interval=300)
    _, _, batches = await route(hub, keypairs, "V-3")
    for batch in batches:
        await voice.handle(batch)
    retry = (await queued(hub, VOICE))[0]
    try:
        await voice.handle(retry)
        raise AssertionError("a retry batch was called before its time")
    except Retry as early:
        assert 290 < early.delay <= 300


async def test_a_cancel_mid_campaign_starts_no_new_call(hub: Hub, keypairs: KEYS) -> None:
    provider = SimulatorVoiceProvider(answer_ratio=1.0, latency=0.3, seed=1)
    voice = worker(hub, provider, max_concurrent=1)
    alert_id, campaign_id, batches = await route(hub, keypairs, "V-4")
    [batch] = batches
    handling = asyncio.create_task(voice.handle(batch))
    while provider.calls < 1:
        await asyncio.sleep(0.01)
    await hub.router.cancel([alert_id])
    cancelled_at = asyncio.get_running_loop().time()
    await handling
    assert provider.calls == 1 and all(t < cancelled_at for t in voice.starts)
    got = {o["id"]: o for o in await events(hub)}
    assert sorted(o["state"] for o in got.values()) == ["cancelled", "cancelled", "delivered"]
    states = await hub.store.delivery_states(campaign_id)
    assert states[("voice", "cancelled")] == 2


async def test_a_number_that_is_not_dialable_fails_without_a_call(hub: Hub, keypairs: KEYS) -> None:
    provider = SimulatorVoiceProvider(answer_ratio=1.0)
    voice = worker(hub, provider)
    _, _, [batch] = await route(hub, keypairs, "V-5")
    body = json.loads(batch.body)
    body["deliveries"][0][1] = "0477 12 34 56"  # not E.164: never dialled as it stands
    await voice.handle(Message(batch.topic, json.dumps(body).encode()))
    got = {o["id"]: o for o in await events(hub)}
    bad = got[body["deliveries"][0][0]]
    assert bad["state"] == "failed" and str(bad["reason"]).startswith("failed: not dialable")
    assert provider.calls == 2


async def test_calls_over_sip_with_the_user_agent_killed_mid_campaign(
        hub: Hub, keypairs: KEYS, sipp: Callable[[str], Sipp], tmp_path: Path) -> None:
    peer = sipp("answer")
    provider = SipVoiceProvider(sip_settings(peer.trunk, lines=1), tmp_path / "ua")
    await provider.open()
    cache = AudioCache(tmp_path / "audio", EspeakTts())
    try:
        voice = worker(hub, provider, cache=cache, max_concurrent=1, max_seconds=15)
        _, campaign_id, [batch] = await route(hub, keypairs, "V-6")
        handling = asyncio.create_task(voice.handle(batch))
        [line] = provider.lines
        while not (line.in_call and sum(peer.invites().values()) >= 1):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        pid = line.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # the user agent dies while the first call plays
        await asyncio.wait_for(handling, 120)
    finally:
        await provider.close()
    assert provider.restarts == 1
    assert peer.invites() == {n: 1 for n in NUMBERS}  # every number called once, none twice
    got = await events(hub)
    assert [o["state"] for o in got] == ["delivered"] * 3
    assert sum("user agent stopped" in str(o["reason"]) for o in got) == 1
    assert cache.renders == 2  # nl and fr, once each
    states = await hub.store.delivery_states(campaign_id)
    # answered and stored; the tracker (not running here) makes them delivered
    assert {k: v for k, v in states.items() if k[0] == "voice"} == {("voice", DeliveryState.SUBMITTED): 3}


async def test_a_script_the_engine_cannot_render_fails_its_deliveries(hub: Hub, keypairs: KEYS,
                                                                      tmp_path: Path) -> None:
    provider = SipVoiceProvider(sip_settings("127.0.0.1:9"), tmp_path / "ua")  # never opened: no call
    cache = AudioCache(tmp_path / "audio", EspeakTts(espeak="/nonexistent/espeak-ng"))
    voice = worker(hub, provider, cache=cache)
    _, _, [batch] = await route(hub, keypairs, "V-7")
    await voice.handle(batch)
    got = await events(hub)
    assert [o["state"] for o in got] == ["failed"] * 3 and provider.calls == 0
    assert {o["reason"] for o in got} == {"speech: espeak-ng: cannot run '/nonexistent/espeak-ng': "
                                          "No such file or directory"}


class _Silence:
    """A speech engine that writes a few bytes: the sweep cares about files, not sound."""

    async def render(self, ssml: str, language: str, out: Path) -> None:
        out.write_bytes(b"RIFF")


async def test_the_audio_of_finished_campaigns_is_swept(hub: Hub, keypairs: KEYS, tmp_path: Path) -> None:
    cache = AudioCache(tmp_path / "audio", _Silence())
    voice = worker(hub, SimulatorVoiceProvider(answer_ratio=1.0, seed=1), cache=cache)
    alert_id, campaign_id, _ = await route(hub, keypairs, "V-8")
    sending = await cache.audio(campaign_id, "nl", "<speak>Rook</speak>")
    gone = await cache.audio(999_999, "nl", "<speak>Rook</speak>")  # a campaign the store no longer has
    (tmp_path / "audio" / "notes").mkdir()  # not a campaign's: left alone
    assert await voice.sweep_audio() == [999_999]
    assert sending.exists() and not gone.parent.exists() and (tmp_path / "audio" / "notes").exists()
    await hub.store.cancel_campaigns([alert_id], at=datetime.now(UTC))
    assert await voice.sweep_audio() == [campaign_id] and not sending.parent.exists()
    assert await voice.sweep_audio() == []
