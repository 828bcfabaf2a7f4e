"""Builds the running hub from settings: store, broker, keys, services; starts and stops them.

This is the one place that knows the concrete classes. `cap-hub serve` uses it, and so do
the tests that drive the app end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hub.api.metrics import Metrics
from hub.broker.base import Broker, Consumer
from hub.broker.memory import MemoryBroker
from hub.campaigns.cost import Prices
from hub.cap import devkeys
from hub.config import Settings
from hub.domain import Channel
from hub.errors import ConfigError
from hub.outputs.email_smtp import SimulatorEmailProvider, SmtpProvider, SmtpSettings
from hub.outputs.ratelimit import TokenBucket
from hub.outputs.simulator import SimulatorSmsProvider
from hub.outputs.smpp import Pool
from hub.outputs.sms_smpp import SmppSmsProvider
from hub.services.ingest import HubIdentity, Ingest
from hub.services.members import Members
from hub.services.push import PushStage, build_stage
from hub.services.push import declare as declare_push
from hub.services.receipts import track_receipts
from hub.services.router import (
    CHANNEL_QUEUES,
    EVENTS_QUEUE,
    ROUTE_QUEUE,
    ROUTE_TOPICS,
    SIMULATION_QUEUES,
    Router,
)
from hub.services.tracker import EVENTS_TOPICS, Tracker
from hub.services.worker import ChannelWorker
from hub.store.sqlite import SqliteStore
from hub.voice.setup import start_voice
from hub.voice.worker import VoiceWorker

log = logging.getLogger(__name__)

STORE_FILE = "hub.sqlite3"


def open_store(data_dir: Path) -> SqliteStore:
    data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteStore(data_dir / STORE_FILE)


ALL_ROLES = frozenset({"api", "router", "worker", "tracker", "push"})
# "worker" runs a worker per channel; "worker:sms" (etc.) one channel's only.
WORKER_ROLES = {f"worker:{c.value}": c for c in Channel}
KNOWN_ROLES = ALL_ROLES | frozenset(WORKER_ROLES)
# With RabbitMQ, a queued delivery not taken by a worker within this time is published again
# at start-up (workers skip what was already sent).
REPUBLISH_AFTER = timedelta(minutes=10)
ROUTER_LEAVE_SHARE = 0.5  # of a large hand-over's time left to channel workers in the same process


def make_broker(settings: Settings) -> Broker:
    """RabbitMQ when an AMQP URL is set, else the embedded broker."""
    if settings.amqp.url:
        from hub.broker.amqp import AmqpBroker  # aio-pika only when it is used

        return AmqpBroker(settings.amqp.url, prefix=settings.amqp.prefix)
    return MemoryBroker()


async def declare_topology(broker: Broker, settings: Settings | None = None) -> None:
    """Every stage's queue, declared before anything is published so nothing falls between."""
    await broker.declare(ROUTE_QUEUE, ROUTE_TOPICS)
    for queue in (*CHANNEL_QUEUES.values(), *SIMULATION_QUEUES.values()):
        await broker.declare(queue, (queue,))
    await broker.declare(EVENTS_QUEUE, EVENTS_TOPICS)
    await declare_push(broker, settings or Settings())


def load_identity(settings: Settings, data_dir: Path) -> tuple[HubIdentity, Path | None]:
    """The hub's signing key pair: the configured files, or DATA_DIR/keys/, created on first
    start. Returns the folder it created keys in, or None."""
    hub = settings.hub
    if hub.key_file or hub.cert_file:
        if not (hub.key_file and hub.cert_file):
            raise ConfigError("hub.key_file and hub.cert_file go together: set both or neither")
        try:
            key_pem, cert_pem = Path(hub.key_file).read_bytes(), Path(hub.cert_file).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the hub's key or certificate: {exc}") from exc
        return HubIdentity(hub.sender, key_pem, cert_pem), None
    keys = data_dir / "keys"
    key, cert = keys / "hub-key.pem", keys / "hub-cert.pem"
    created = None
    keys.mkdir(parents=True, exist_ok=True)
    # Stages started together on a fresh data directory must not each make a key: the first
    # one to hold the lock makes it, the others read it.
    with open(keys / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not key.exists():
            key_pem, cert_pem = devkeys.new_identity(f"cap-hub {hub.sender}", days=3650)
            cert.write_bytes(cert_pem)
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key_pem)
            created = keys
    return HubIdentity(hub.sender, key.read_bytes(), cert.read_bytes()), created


def simulator_provider(channel: Channel) -> SimulatorSmsProvider | SimulatorEmailProvider | None:
    """The simulator provider of a channel (none for voice yet)."""
    if channel is Channel.SMS:
        return SimulatorSmsProvider()
    if channel is Channel.EMAIL:
        return SimulatorEmailProvider()
    return None


def simulation_provider(settings: Settings, channel: Channel) -> Any:
    """The simulation environment's provider of a channel, as ``[simulation]`` tunes it: it
    sends nothing and reports realistic outcomes (ratios, latency, late SMS receipts)."""
    sim = settings.simulation
    latency = (sim.latency_min, sim.latency_max)
    try:
        if channel is Channel.SMS:
            return SimulatorSmsProvider(delivery_ratio=sim.sms_delivery_ratio, latency=latency,
                                        seed=sim.seed or None, late_share=sim.late_share,
                                        late_after=(sim.late_min, sim.late_max))
        if channel is Channel.EMAIL:
            return SimulatorEmailProvider(delivery_ratio=sim.email_delivery_ratio,
                                          permanent_share=sim.email_permanent_share, latency=latency,
                                          seed=sim.seed or None)
    except ValueError as exc:
        raise ConfigError(f"[simulation]: {exc}") from exc
    return simulator_provider(channel)


def make_provider(settings: Settings, channel: Channel) -> Any:
    """The provider the settings choose for ``channel`` (not opened yet): ``[sms] provider``
    "simulator" or "smpp", ``[email] provider`` "simulator" or "smtp"; none for voice. A hub
    in simulation (``simulation.enabled``) opens no real provider at all."""
    if settings.simulation.enabled:
        return simulation_provider(settings, channel)
    if channel is Channel.SMS and settings.sms.provider == "smpp":
        sms = settings.sms
        for key, value in (("binds", sms.binds), ("window", sms.window)):
            if value < 1:
                raise ConfigError(f"sms.{key} = {value}: must be at least 1")
        pool = Pool(sms.host, sms.port, system_id=sms.system_id, password=sms.password,
                    system_type=sms.system_type, binds=sms.binds, window=sms.window)
        return SmppSmsProvider(pool, sms.source_addr)
    if channel is Channel.EMAIL and settings.email.provider == "smtp":
        email = settings.email
        return SmtpProvider(SmtpSettings(
            host=email.host, port=email.port, security=email.security, username=email.username or None,
            password=email.password or None, pool_size=email.pool_size, batch_size=email.batch_size))
    return simulator_provider(channel)


def channel_rate(settings: Settings, channel: Channel) -> float:
    """Tokens per second for one of a channel's workers (SMS parts, e-mail recipients): the
    channel's rate split explicitly between its ``workers`` processes; 0 = unlimited."""
    if channel is Channel.SMS:
        rate, workers, section = settings.sms.rate, settings.sms.workers, "sms"
    elif channel is Channel.EMAIL:
        rate, workers, section = settings.email.rate, settings.email.workers, "email"
    else:
        return 0.0
    if workers < 1:
        raise ConfigError(f"{section}.workers = {workers}: must be at least 1 (the worker processes "
                          f"sharing {section}.rate)")
    if rate < 0:
        raise ConfigError(f"{section}.rate = {rate}: must not be negative (0 = unlimited)")
    return rate / workers


def retry_options(settings: Settings) -> dict[str, Any]:
    """The ``[worker]`` settings as :class:`ChannelWorker` options."""
    w = settings.worker
    for key, value, least in (("max_attempts", w.max_attempts, 1), ("retry_base", w.retry_base, 0),
                              ("retry_factor", w.retry_factor, 1), ("retry_max_delay", w.retry_max_delay, 0),
                              ("retry_budget", w.retry_budget, 0), ("sending_grace", w.sending_grace, 0)):
        if value < least:
            raise ConfigError(f"worker.{key} = {value}: must be at least {least}")
    return dict(max_attempts=w.max_attempts, retry_base=w.retry_base, retry_factor=w.retry_factor,
                retry_cap=w.retry_max_delay, retry_budget=w.retry_budget,
                sending_grace=timedelta(seconds=w.sending_grace))


@dataclass
class Hub:
    settings: Settings
    data_dir: Path
    store: SqliteStore
    broker: Broker
    identity: HubIdentity
    ingest: Ingest
    members: Members
    router: Router
    metrics: Metrics
    executor: ThreadPoolExecutor
    created_keys: Path | None = None
    workers: dict[Channel, ChannelWorker | VoiceWorker] = field(default_factory=dict)
    providers: dict[Channel, Any] = field(default_factory=dict)
    # The simulation environment: its own worker per channel, on its own queue and simulators.
    simulation_workers: dict[Channel, ChannelWorker | VoiceWorker] = field(default_factory=dict)
    simulators: dict[Channel, Any] = field(default_factory=dict)
    tracker: Tracker | None = None
    push: PushStage | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _audits: set[asyncio.Task[None]] = field(default_factory=set)
    _consumers: list[Consumer] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings, data_dir: Path | None = None, *,
                    roles: frozenset[str] = ALL_ROLES) -> Hub:
        """Start the hub with the stages in ``roles``: "api" (HTTP, ingest, expiry sweeps)
        "router", "worker" (every channel, or "worker:sms" etc. for one) and "tracker".
        `cap-hub serve` runs them all in one process. Workers use the providers the settings
        choose (the simulators by default), opened here and closed by ``stop``."""
        unknown = roles - KNOWN_ROLES
        if unknown:
            raise ConfigError(f"unknown roles {sorted(unknown)}")
        prices = Prices.from_settings(settings.cost)  # a bad price stops the hub before it opens anything
        data = Path(data_dir or settings.data_dir)
        identity, created = load_identity(settings, data)  # before anything needs closing
        store = open_store(data)
        await store.open()
        broker = make_broker(settings)
        try:
            await broker.start()
            await declare_topology(broker, settings)
        except BaseException:
            await store.close()
            raise
        executor = ThreadPoolExecutor(max(1, settings.ingest.threads), thread_name_prefix="cap")
        ingest = Ingest(store, broker, identity, settings, executor=executor)
        members = Members(store, store, executor=executor)
        # With channel workers in this process, a large plan's hand-over leaves them half the time.
        shared = "worker" in roles or any(r in WORKER_ROLES for r in roles)
        router = Router(store, broker, executor=executor, simulation=settings.simulation.enabled,
                        leave_share=ROUTER_LEAVE_SHARE if shared and "router" in roles else 0.0)
        hub = cls(settings, data, store, broker, identity, ingest, members, router, Metrics(), executor,
                  created)
        if "router" in roles:
            # What the broker may have lost is handed to it again: everything owed, with the
            # embedded broker (it kept nothing); what waited too long, with RabbitMQ.
            grace = timedelta(0) if isinstance(broker, MemoryBroker) else REPUBLISH_AFTER
            await router.republish(published_before=datetime.now(UTC) - grace)
            hub._consumers.append(await broker.consume(ROUTE_QUEUE, ROUTE_TOPICS, router.handle))
        if "tracker" in roles:
            hub.tracker = Tracker(store, broker, prices=prices,
                                  settings=settings.campaigns)
            hub._consumers.append(await broker.consume(EVENTS_QUEUE, EVENTS_TOPICS, hub.tracker.handle))
            hub._tasks.append(asyncio.create_task(hub.tracker.sweep_periodically()))
        channels = list(Channel) if "worker" in roles else \
            [WORKER_ROLES[r] for r in sorted(roles) if r in WORKER_ROLES]
        try:
            for channel in channels:
                if channel is Channel.VOICE:  # calls have a worker of their own (hub.voice)
                    hub.providers[channel], hub.workers[channel] = await hub._start_voice(simulation=False)
                    continue
                provider = make_provider(settings, channel)
                if provider is not None:
                    await provider.open()
                    hub.providers[channel] = provider
                if isinstance(provider, SmppSmsProvider | SimulatorSmsProvider):
                    hub._tasks.append(asyncio.create_task(track_receipts(store, broker, provider.receipts)))
                worker = ChannelWorker(channel, store, broker, provider,
                                       TokenBucket(channel_rate(settings, channel)),
                                       countersign=ingest.countersign,
                                       sms_prefix=settings.sms.prefix, sms_max_parts=settings.sms.max_parts,
                                       sms_policy=settings.sms.policy, sender=settings.email.sender,
                                       sole=isinstance(broker, MemoryBroker), prices=prices,
                                       **retry_options(settings))
                hub.workers[channel] = worker
                hub._consumers.append(await broker.consume(worker.queue, (worker.queue,), worker.handle))
            for channel in channels:
                await hub._start_simulation_worker(channel)
        except BaseException:
            await hub.stop()
            raise
        if "push" in roles:
            try:
                hub.push = build_stage(settings, store, broker, ingest.countersign, executor=executor,
                                       count=lambda outcome: hub.metrics.pushes.labels(outcome).inc())
                await hub.push.start(broker, published_before=datetime.now(UTC) - (
                    timedelta(0) if isinstance(broker, MemoryBroker) else REPUBLISH_AFTER))
            except BaseException:
                await hub.stop()
                raise
        if "api" in roles:
            hub._tasks.append(asyncio.create_task(hub._expire_periodically()))
        return hub

    async def _start_voice(self, *, simulation: bool) -> tuple[Any, VoiceWorker]:
        """The voice provider and its worker, consuming its queue (``simulate.voice`` for a
        simulation one)."""
        voice = await start_voice(self.settings, self.data_dir, self.store, self.broker,
                                  simulation=simulation, sole=isinstance(self.broker, MemoryBroker),
                                  queue=SIMULATION_QUEUES[Channel.VOICE] if simulation else None)
        self._consumers.append(await self.broker.consume(voice.worker.queue, (voice.worker.queue,),
                                                         voice.worker.handle))
        self._tasks.append(asyncio.create_task(voice.worker.sweep_audio_periodically()))
        return voice.provider, voice.worker

    async def _start_simulation_worker(self, channel: Channel) -> None:
        """The simulation environment's worker of a channel: the same worker, rate limit and
        retries as the real one, on ``simulate.<channel>`` with a simulator provider, so that a
        simulation campaign's batches never meet a real provider."""
        settings, store, broker = self.settings, self.store, self.broker
        if channel is Channel.VOICE:
            provider, voice_worker = await self._start_voice(simulation=True)
            self.simulators[channel], self.simulation_workers[channel] = provider, voice_worker
            return
        provider = simulation_provider(settings, channel)
        if provider is not None:
            await provider.open()
            self.simulators[channel] = provider
        if isinstance(provider, SimulatorSmsProvider):
            self._tasks.append(asyncio.create_task(track_receipts(store, broker, provider.receipts)))
        worker = ChannelWorker(channel, store, broker, provider, TokenBucket(channel_rate(settings, channel)),
                               countersign=self.ingest.countersign, sms_prefix=settings.sms.prefix,
                               sms_max_parts=settings.sms.max_parts, sms_policy=settings.sms.policy,
                               sender=settings.email.sender, sole=isinstance(broker, MemoryBroker),
                               queue=SIMULATION_QUEUES[channel], prices=Prices.from_settings(settings.cost),
                               **retry_options(settings))
        self.simulation_workers[channel] = worker
        self._consumers.append(await broker.consume(worker.queue, (worker.queue,), worker.handle))

    def audit_soon(self, actor: str, action: str, target: str, outcome: str, detail: str = "{}") -> None:
        """Write an audit entry without making the caller wait for its commit: it joins the
        store's next group commit. ``stop`` waits for every one still queued."""
        task = asyncio.create_task(
            self.store.audit(actor, action, target, outcome, detail, at=datetime.now(UTC)))
        self._audits.add(task)
        task.add_done_callback(self._audit_done)

    def _audit_done(self, task: asyncio.Task[None]) -> None:
        self._audits.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not write an audit entry: %s", task.exception())

    async def audits_written(self) -> None:
        """Wait until every audit entry queued so far is committed."""
        if self._audits:
            await asyncio.gather(*self._audits, return_exceptions=True)

    async def stop(self) -> None:
        for consumer in self._consumers:
            await consumer.cancel()
        if self.push is not None:
            await self.push.stop()
        await self.audits_written()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for channel, provider in [*self.providers.items(), *self.simulators.items()]:
            try:
                await provider.close()
            except Exception:  # the others still close
                log.exception("could not close the %s provider", channel.value)
        await self.broker.close()
        await self.store.close()
        self.ingest.close()
        self.executor.shutdown(wait=True)

    async def expire(self) -> list[int]:
        """Mark alerts whose expiry has passed, and tell the pipeline."""
        ids = await self.store.expire_alerts(datetime.now(UTC))
        for alert_id in ids:
            await self.broker.publish("alert.expired", json.dumps({"id": alert_id}).encode())
        return ids

    async def _expire_periodically(self) -> None:
        while True:
            try:
                await self.expire()
            except Exception:  # keep sweeping; the next sweep catches up
                log.exception("expiry sweep failed")
            await asyncio.sleep(self.settings.ingest.expiry_interval)
