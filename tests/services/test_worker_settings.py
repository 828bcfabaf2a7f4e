"""The workers' settings: the channel rate split between its worker processes, and the retry
policy (attempts, base, factor, longest wait, time budget) from ``[worker]``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from hub.config import EmailSettings, Settings, SmsSettings, WorkerSettings, load
from hub.domain import Channel
from hub.errors import ConfigError
from hub.outputs.ratelimit import TokenBucket
from hub.outputs.sms_smpp import SmppSmsProvider
from hub.services.router import CHANNEL_QUEUES, EVENTS_QUEUE
from hub.services.worker import ChannelWorker
from hub.wiring import Hub, channel_rate, make_provider, retry_options
from tests.services.test_router import cap, post, queued
from tests.services.test_worker import FlakySms, handle_when_due, sms_states, sms_worker

KEYS = dict[str, tuple[bytes, bytes]]


def test_the_channel_rate_is_split_between_its_workers() -> None:
    settings = Settings(sms=SmsSettings(rate=500.0, workers=4), email=EmailSettings(rate=2500.0, workers=2))
    assert channel_rate(settings, Channel.SMS) == 125.0
    assert channel_rate(settings, Channel.EMAIL) == 1250.0
    assert channel_rate(Settings(), Channel.SMS) == 500.0  # one worker by default
    assert channel_rate(Settings(sms=SmsSettings(rate=0.0, workers=3)), Channel.SMS) == 0.0  # unlimited
    env = load(None, environ={"CAPHUB_SMS_WORKERS": "2", "CAPHUB_SMS_RATE": "500"})
    assert channel_rate(env, Channel.SMS) == 250.0


@pytest.mark.parametrize(("settings", "needle"), [
    (Settings(sms=SmsSettings(workers=0)), "sms.workers = 0: must be at least 1"),
    (Settings(email=EmailSettings(workers=-1)), "email.workers = -1: must be at least 1"),
    (Settings(sms=SmsSettings(rate=-5.0)), "sms.rate = -5.0: must not be negative"),
])
def test_a_bad_split_names_the_setting(settings: Settings, needle: str) -> None:
    channel = Channel.SMS if settings.sms != SmsSettings() else Channel.EMAIL
    with pytest.raises(ConfigError, match=needle):
        channel_rate(settings, channel)


@pytest.mark.parametrize(("key", "value"), [("window", 0), ("binds", -1)])
def test_an_smpp_window_or_bind_count_below_one_names_the_setting(key: str, value: int) -> None:
    settings = Settings(sms=SmsSettings(provider="smpp", **{key: value}))
    with pytest.raises(ConfigError, match=f"sms.{key} = {value}: must be at least 1"):
        make_provider(settings, Channel.SMS)


def test_the_smpp_window_is_a_setting() -> None:
    settings = load(None, environ={"CAPHUB_SMS_PROVIDER": "smpp", "CAPHUB_SMS_WINDOW": "256"})
    provider = make_provider(settings, Channel.SMS)
    assert isinstance(provider, SmppSmsProvider) and provider.pool.session_window == 256


@pytest.mark.parametrize(("worker", "needle"), [
    (WorkerSettings(max_attempts=0), "worker.max_attempts = 0: must be at least 1"),
    (WorkerSettings(retry_factor=0.5), "worker.retry_factor = 0.5: must be at least 1"),
    (WorkerSettings(retry_base=-1.0), "worker.retry_base = -1.0: must be at least 0"),
    (WorkerSettings(retry_budget=-1.0), "worker.retry_budget = -1.0: must be at least 0"),
    (WorkerSettings(sending_grace=-1.0), "worker.sending_grace = -1.0: must be at least 0"),
])
def test_bad_retry_settings_name_the_setting(worker: WorkerSettings, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        retry_options(Settings(worker=worker))


def test_retry_settings_reach_the_worker_back_off() -> None:
    settings = load(None, environ={"CAPHUB_WORKER_RETRY_BASE": "1.5", "CAPHUB_WORKER_RETRY_FACTOR": "3",
                                   "CAPHUB_WORKER_RETRY_MAX_DELAY": "20", "CAPHUB_WORKER_MAX_ATTEMPTS": "7"})
    options = retry_options(settings)
    assert options["max_attempts"] == 7 and options["sending_grace"] == timedelta(seconds=120)
    worker = ChannelWorker(Channel.EMAIL, None, None, None, TokenBucket(0), **options)  # type: ignore[arg-type]
    assert [worker.backoff(a) for a in (2, 3, 4, 5)] == [1.5, 4.5, 13.5, 20.0]


async def test_after_the_retry_budget_in_seconds_a_transient_failure_is_final(hub: Hub,
                                                                              keypairs: KEYS) -> None:
    """Two attempts allowed by count (max_attempts 5), but the second one starts after the
    time budget (clock moved 2 minutes on, budget 60 s): it fails with the last reason, no
    third is queued."""
    shift = [timedelta(0)]
    provider = FlakySms(failures=99)
    worker = sms_worker(hub, provider, retry_base=0.01, retry_budget=60.0,
                        clock=lambda: datetime.now(UTC) + shift[0])
    campaign = await hub.router.route(await post(hub, keypairs, cap("W-B")))
    assert campaign is not None
    [batch] = await queued(hub, CHANNEL_QUEUES[Channel.SMS])
    await worker.handle(batch)
    [again] = await queued(hub, CHANNEL_QUEUES[Channel.SMS])
    body = json.loads(again.body)
    assert body["attempt"] == 2 and body["first_try"] <= datetime.now(UTC).timestamp()
    shift[0] = timedelta(minutes=2)
    await handle_when_due(worker, again)
    assert await queued(hub, CHANNEL_QUEUES[Channel.SMS]) == []
    events = [json.loads(m.body) for m in await queued(hub, EVENTS_QUEUE) if m.topic == EVENTS_QUEUE]
    assert events == [{"campaigns": [campaign.id], "stored": 2}]  # stored by the worker
    assert await sms_states(hub, campaign.id) == [("failed", "throttled (2)", 2)] * 2
