"""Faults of the peers, through the whole hub (``Hub.start`` with the real providers):
an SMSC that throttles, drops its connections, sends receipts before the resp; an SMTP
server that answers 451 once; a Cancel arriving mid-campaign. Asserts on what the peers saw."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from hub.config import EmailSettings, Settings, SignatureSettings, SmsSettings
from hub.domain import CampaignState, EntityType, Role
from hub.services import admin
from hub.services.members import ADMIN
from hub.wiring import Hub
from tests.outputs.test_email_smtp import Sink, free_port
from tests.peers.smsc_peer import PeerUnavailable
from tests.peers.smsc_timed import TimedSmsc
from tests.services.test_router import TERRITORY, cap, post
from tests.services.test_worker_peers import deliveries, done, hubs, smpp

__all__ = ["hubs"]

KEYS = dict[str, tuple[bytes, bytes]]


def members_csv(n: int, *, sms: bool = True, email: bool = False) -> bytes:
    rows = [b"naam;gsm;telefoon;e-mail;taal"]
    for i in range(n):
        gsm = f"0470{i:06d}" if sms else ""
        mail = f"user{i:06d}@example.org" if email else ""
        rows.append(f"M{i};{gsm};;{mail};nl".encode())
    return b"\n".join(rows) + b"\n"


SMS_ONLY = "<parameter><valueName>channels</valueName><value>sms</value></parameter>"  # no voice calls


def msisdn(i: int) -> str:
    return f"32470{i:06d}"


async def start(tmp_path: Path, keypairs: KEYS, members: bytes, **sections: object) -> Hub:
    settings = Settings(data_dir=str(tmp_path), signature=SignatureSettings(), **sections)  # type: ignore[arg-type]
    hub = await Hub.start(settings, tmp_path)
    entity, _ = await admin.add_entity(hub.store, "PZ", EntityType.GROUPS, ["pz@example.be"],
                                       certificates=[("t", keypairs["police"][1])])
    await admin.add_account(hub.store, "PZ", "dispatch", Role.COORDINATOR)
    await hub.members.add_group(ADMIN, entity, "plp-a", "PLP A", territory=TERRITORY)
    await hub.members.import_csv(ADMIN, "plp-a", members)
    return hub


def peer(*args: str) -> TimedSmsc:
    try:
        return TimedSmsc("--receipts", "delivered", *args)
    except PeerUnavailable as exc:
        pytest.fail(str(exc))


@pytest.fixture
def peers() -> Iterator[list[TimedSmsc]]:
    started: list[TimedSmsc] = []
    yield started
    for p in started:
        p.stop()


async def settled(smsc: TimedSmsc, quiet: float = 0.5, timeout: float = 10.0) -> None:
    """Until the SMSC printed nothing new for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        now = len(smsc.events)
        if now == seen:
            return
        seen = now
        await asyncio.sleep(quiet)


Outcomes = dict[str, tuple[str, str | None, int, float]]


async def sms_campaign(tmp_path: Path, keypairs: KEYS, hubs: list[Hub], smsc: TimedSmsc, n: int,
                       ident: str, **sms: object) -> tuple[Hub, Outcomes]:
    settings = smpp(smsc)
    settings = SmsSettings(**{**settings.__dict__, "rate": 0.0, **sms})  # type: ignore[arg-type]
    hub = await start(tmp_path, keypairs, members_csv(n), sms=settings)
    hubs.append(hub)
    campaign_id = await done(hub, await post(hub, keypairs, cap(ident, params=SMS_ONLY)))
    await settled(smsc)
    return hub, await deliveries(hub, campaign_id, "sms")


def accepted_per_destination(smsc: TimedSmsc) -> Counter[str]:
    return Counter(s["destination"] for s in smsc.submits(accepted_only=True))


async def test_throttled_every_10th_submit_each_delivery_submitted_once(
        tmp_path: Path, keypairs: KEYS, hubs: list[Hub], peers: list[TimedSmsc]) -> None:
    smsc = peer("--throttle-every", "10")
    peers.append(smsc)
    n = 100
    _, sms = await sms_campaign(tmp_path, keypairs, hubs, smsc, n, "F-1")
    throttled = [s for s in smsc.submits() if s["status"] == 0x58]
    assert throttled, "the SMSC throttled nothing"
    assert accepted_per_destination(smsc) == Counter({msisdn(i): 1 for i in range(n)})
    assert Counter(s for s, *_ in sms.values()) == Counter({"delivered": n})


async def test_connection_dropped_after_100_submits_each_delivery_submitted_once(
        tmp_path: Path, keypairs: KEYS, hubs: list[Hub], peers: list[TimedSmsc]) -> None:
    smsc = peer("--drop-after", "100")
    peers.append(smsc)
    n = 300
    _, sms = await sms_campaign(tmp_path, keypairs, hubs, smsc, n, "F-2")
    assert smsc.of("drop"), "the SMSC dropped no connection"
    per_destination = accepted_per_destination(smsc)
    twice = {d: c for d, c in per_destination.items() if c != 1}
    assert not twice, f"submitted more than once: {sorted(twice.items())[:10]}"
    assert set(per_destination) == {msisdn(i) for i in range(n)}
    assert Counter(s for s, *_ in sms.values()) == Counter({"delivered": n})


async def test_receipts_before_the_submit_resp_end_delivered(
        tmp_path: Path, keypairs: KEYS, hubs: list[Hub], peers: list[TimedSmsc]) -> None:
    smsc = peer("--receipt-early")
    peers.append(smsc)
    n = 50
    _, sms = await sms_campaign(tmp_path, keypairs, hubs, smsc, n, "F-3")
    assert accepted_per_destination(smsc) == Counter({msisdn(i): 1 for i in range(n)})
    assert Counter(s for s, *_ in sms.values()) == Counter({"delivered": n})


async def test_smtp_451_on_the_first_data_then_delivered_after_the_retry(
        tmp_path: Path, keypairs: KEYS, hubs: list[Hub]) -> None:
    """The worker's retry base (2 s) is not in the settings, so the retry waits the default."""
    handler = Sink(data_replies=["451 4.3.0 try again later"])
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        handler.port = controller.port
        email = EmailSettings(provider="smtp", host="127.0.0.1", port=handler.port, pool_size=1, rate=0.0,
                              sender="no-reply@be-alert.example")
        n = 20
        hub = await start(tmp_path, keypairs, members_csv(n, sms=False, email=True), email=email)
        hubs.append(hub)
        campaign_id = await done(hub, await post(hub, keypairs, cap("F-4")))
        mails = await deliveries(hub, campaign_id, "email")
        expected = {f"user{i:06d}@example.org": "delivered" for i in range(n)}
        assert {a: s for a, (s, *_) in mails.items()} == expected
        got = Counter(r for _, rcpts, _ in handler.received for r in rcpts)
        assert got == Counter({f"user{i:06d}@example.org": 1 for i in range(n)})
        attempts = await hub.store._read("SELECT MAX(attempts) FROM deliveries WHERE campaign_id = ?",
                                         (campaign_id,))
        assert attempts[0][0] == 2
    finally:
        controller.stop()


async def test_cancel_mid_campaign_stops_sending_within_a_second(
        tmp_path: Path, keypairs: KEYS, hubs: list[Hub], peers: list[TimedSmsc]) -> None:
    smsc = peer()
    peers.append(smsc)
    n = 300  # six seconds at 50/s
    settings = SmsSettings(**{**smpp(smsc).__dict__, "rate": 50.0})  # type: ignore[arg-type]
    hub = await start(tmp_path, keypairs, members_csv(n), sms=settings)
    hubs.append(hub)
    alert_id = await post(hub, keypairs, cap("F-5", params=SMS_ONLY))
    for _ in range(200):
        campaign = await hub.store.campaign_for_alert(alert_id)
        if campaign is not None:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(2.0)  # mid-campaign: about 100 of 300 sent at 50/s
    stored = await hub.store.alert(alert_id)
    assert stored is not None
    ref = f"{stored.sender},{stored.identifier},{stored.sent}"
    await post(hub, keypairs, cap("F-5C", msg_type="Cancel", references=ref))  # asserts the 201
    cancelled_at = time.time()
    await asyncio.sleep(max(0.0, n / 50 - 2.0) + 1.0)  # until the campaign would have ended
    await settled(smsc)
    times = [s["t"] for s in smsc.submits()]
    before = sum(t <= cancelled_at for t in times)
    late = sum(t > cancelled_at + 1.0 for t in times)
    campaign = await hub.store.campaign_for_alert(alert_id)
    assert campaign is not None
    assert late == 0, (f"{late} submits more than 1 s after the Cancel's 201 ({before} before it, "
                       f"{len(times)} in all, campaign {campaign.state.value})")
    assert 0 < before < n, f"not mid-campaign: {before} of {n} submitted before the Cancel"
    assert campaign.state is CampaignState.CANCELLED
