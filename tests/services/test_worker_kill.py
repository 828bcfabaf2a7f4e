"""A channel worker killed with SIGKILL mid-batch and restarted, against real peers.

The hub's API, router and tracker run in the test process on RabbitMQ (the session's own
virtual host, a queue prefix per test); the worker is a real ``python -m hub worker CHANNEL``
process on the same data directory. It is killed (SIGKILL) while it works through one batch of
deliveries, paced by the rate limit, and started again: RabbitMQ hands the unacked batch to the
new process, which must send only what the dead one had not. The peers' own records decide:
every recipient exactly once (the SMSC's JSON submit lines; the SMTP sink's envelopes).

The kill lands between two sends (half a send interval after the SMSC/sink saw one). A kill
during a send (the few milliseconds between a chunk's write and the commit of its answer)
leaves that chunk in doubt, and it is sent again after ``sending_grace``: see
hub/services/worker.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from hub.config import AmqpSettings, EmailSettings, Settings, SignatureSettings, SmsSettings
from hub.domain import EntityType, Role
from hub.services import admin
from hub.services.members import ADMIN
from hub.wiring import Hub
from tests.broker.conftest import Rabbit, rabbit
from tests.outputs.test_email_smtp import Sink, free_port
from tests.peers.smsc_peer import PeerUnavailable
from tests.peers.smsc_timed import TimedSmsc
from tests.services.test_router import TERRITORY, cap, post
from tests.services.test_worker_faults import SMS_ONLY, members_csv, msisdn

__all__ = ["rabbit"]

KEYS = dict[str, tuple[bytes, bytes]]
ROOT = Path(__file__).resolve().parents[2]
N = 30  # recipients, in one batch
RATE = 10.0  # per second: a send every 100 ms, so the kill lands between two
KILL_AFTER = 10  # sends seen by the peer
GRACE = 2.0  # [worker] sending_grace: a dead worker's claims are taken over after it


class Worker:
    """``python -m hub worker CHANNEL`` with settings from the environment; stopped by its PID."""

    def __init__(self, channel: str, data: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "hub", "worker", channel, "--data", str(data)],
                                     cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def started() -> Iterator[list[Worker]]:
    workers: list[Worker] = []
    yield workers
    for w in workers:
        w.stop()
        if w.proc.stderr is not None:
            w.proc.stderr.close()


def common_env(rabbit: Rabbit, prefix: str, data: Path) -> dict[str, str]:
    return {"CAPHUB_DATA_DIR": str(data), "CAPHUB_AMQP_URL": rabbit.url, "CAPHUB_AMQP_PREFIX": prefix,
            "CAPHUB_WORKER_SENDING_GRACE": str(GRACE), "CAPHUB_LOG_LEVEL": "warning"}


async def start_hub(rabbit: Rabbit, prefix: str, data: Path, keypairs: KEYS, members: bytes, killed: str,
                    **sections: object) -> Hub:
    """Every stage but the ``killed`` channel's worker, in this process."""
    settings = Settings(data_dir=str(data), signature=SignatureSettings(),
                        amqp=AmqpSettings(url=rabbit.url, prefix=prefix), **sections)  # type: ignore[arg-type]
    others = {f"worker:{c}" for c in ("sms", "email", "voice") if c != killed}
    hub = await Hub.start(settings, data, roles=frozenset({"api", "router", "tracker", *others}))
    entity, _ = await admin.add_entity(hub.store, "PZ", EntityType.GROUPS, ["pz@example.be"],
                                       certificates=[("t", keypairs["police"][1])])
    await admin.add_account(hub.store, "PZ", "dispatch", Role.COORDINATOR)
    await hub.members.add_group(ADMIN, entity, "plp-a", "PLP A", territory=TERRITORY)
    await hub.members.import_csv(ADMIN, "plp-a", members)
    return hub


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def kill_mid_batch_and_restart(hub: Hub, keypairs: KEYS, channel: str, data: Path, env: dict[str, str],
                                     started: list[Worker], seen: Callable[[], int], ident: str) -> int:
    """Post, kill the worker after KILL_AFTER sends, restart it; the campaign id once nothing
    is left to send and a sending_grace has passed (when a wrong resend would have come)."""
    worker = Worker(channel, data, env)
    started.append(worker)
    alert_id = await post(hub, keypairs, cap(ident, params=SMS_ONLY if channel == "sms" else ""))
    await until(lambda: seen() >= KILL_AFTER, 30, f"{KILL_AFTER} sends")
    await asyncio.sleep(0.5 / RATE)  # between two sends
    worker.kill()
    sent_before = seen()
    assert KILL_AFTER <= sent_before < N, f"not mid-batch: {sent_before} of {N} sent before the kill"
    started.append(Worker(channel, data, env))
    campaign = await hub.store.campaign_for_alert(alert_id)
    assert campaign is not None
    for _ in range(int(25 / 0.05)):
        unsent = await hub.store._read(
            "SELECT COUNT(*) FROM deliveries WHERE campaign_id = ? "
            "AND state IN ('pending', 'queued', 'sending')", (campaign.id,))
        if seen() >= N and unsent[0][0] == 0:
            await asyncio.sleep(GRACE + 1.0)
            return campaign.id
        await asyncio.sleep(0.05)
    states = await hub.store._read("SELECT state, COUNT(*) FROM deliveries GROUP BY state", ())
    started[-1].stop()
    err = started[-1].proc.stderr.read().decode()[-3000:] if started[-1].proc.stderr else ""
    raise AssertionError(f"the campaign never finished: {[tuple(r) for r in states]}; worker said: {err}")


async def test_sms_worker_killed_mid_batch_and_restarted_sends_each_recipient_once(
        rabbit: Rabbit, tmp_path: Path, keypairs: KEYS, started: list[Worker]) -> None:
    try:
        # Receipts well after the kill: the dead worker's submits must not look final by then.
        smsc = TimedSmsc("--receipts", "delivered", "--receipt-delay", "4000")
    except PeerUnavailable as exc:
        pytest.fail(str(exc))
    try:
        prefix = f"k{uuid.uuid4().hex[:8]}."
        sms = SmsSettings(provider="smpp", host="127.0.0.1", port=smsc.port, system_id="caphub",
                          password="secret", binds=2, rate=RATE)
        env = {**common_env(rabbit, prefix, tmp_path), "CAPHUB_SMS_PROVIDER": "smpp",
               "CAPHUB_SMS_HOST": "127.0.0.1", "CAPHUB_SMS_PORT": str(smsc.port),
               "CAPHUB_SMS_SYSTEM_ID": "caphub", "CAPHUB_SMS_PASSWORD": "secret", "CAPHUB_SMS_BINDS": "2",
               "CAPHUB_SMS_RATE": str(RATE)}
        hub = await start_hub(rabbit, prefix, tmp_path, keypairs, members_csv(N), "sms", sms=sms)
        try:
            campaign_id = await kill_mid_batch_and_restart(
                hub, keypairs, "sms", tmp_path, env, started,
                lambda: len(smsc.submits(accepted_only=True)), "K-SMS")
            states = await hub.store._read("SELECT state, COUNT(*) FROM deliveries WHERE campaign_id = ? "
                                           "AND channel = 'sms' GROUP BY state", (campaign_id,))
        finally:
            await hub.stop()
        binds = smsc.of("bind")
        per_destination = Counter(s["destination"] for s in smsc.submits(accepted_only=True))
    finally:
        smsc.stop()
    assert len({b["conn"] for b in binds}) >= 4, "the restarted worker did not bind again"
    twice = sorted(d for d, c in per_destination.items() if c > 1)
    missing = sorted({msisdn(i) for i in range(N)} - set(per_destination))
    assert not twice and not missing, f"sent twice: {twice}; never sent: {missing}"
    # The dead worker's submits had their receipts sent on its closed bind (node-smpp keeps
    # none for later): those stay submitted.
    got = {r[0]: r[1] for r in states}
    assert set(got) <= {"delivered", "submitted"} and sum(got.values()) == N, got


async def test_email_worker_killed_mid_batch_and_restarted_sends_each_recipient_once(
        rabbit: Rabbit, tmp_path: Path, keypairs: KEYS, started: list[Worker]) -> None:
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        prefix = f"k{uuid.uuid4().hex[:8]}."
        email = EmailSettings(provider="smtp", host="127.0.0.1", port=controller.port, pool_size=1,
                              rate=RATE, sender="no-reply@be-alert.example")
        env = {**common_env(rabbit, prefix, tmp_path), "CAPHUB_EMAIL_PROVIDER": "smtp",
               "CAPHUB_EMAIL_HOST": "127.0.0.1", "CAPHUB_EMAIL_PORT": str(controller.port),
               "CAPHUB_EMAIL_POOL_SIZE": "1", "CAPHUB_EMAIL_RATE": str(RATE),
               "CAPHUB_EMAIL_SENDER": "no-reply@be-alert.example"}
        hub = await start_hub(rabbit, prefix, tmp_path, keypairs, members_csv(N, sms=False, email=True),
                              "email", email=email)
        try:
            campaign_id = await kill_mid_batch_and_restart(
                hub, keypairs, "email", tmp_path, env, started,
                lambda: sum(len(r) for _, r, _ in handler.received), "K-MAIL")
            states = await hub.store._read("SELECT state, COUNT(*) FROM deliveries WHERE campaign_id = ? "
                                           "AND channel = 'email' GROUP BY state", (campaign_id,))
        finally:
            await hub.stop()
    finally:
        controller.stop()
    per_recipient = Counter(r for _, rcpts, _ in handler.received for r in rcpts)
    expected = {f"user{i:06d}@example.org" for i in range(N)}
    twice = sorted(a for a, c in per_recipient.items() if c > 1)
    assert not twice and set(per_recipient) == expected, (
        f"sent twice: {len(twice)}; never sent: {len(expected - set(per_recipient))}")
    assert {r[0]: r[1] for r in states} == {"delivered": N}
