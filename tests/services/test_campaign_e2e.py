"""A campaign end to end through the running hub: every stage in one process on real
RabbitMQ, SMS over SMPP to the node SMSC simulator (with delivery receipts), e-mail over SMTP
to aiosmtpd, the HTTP API on a real socket. Post an alert, watch its SSE stream until the
final state, then check that the report says exactly what the peers saw: every recipient a
peer accepted is delivered in the report, and only those."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.api.app import create_app
from hub.api.campaigns import STREAMS
from hub.cap.sign import sign
from hub.config import AmqpSettings, EmailSettings, Settings, SignatureSettings
from hub.domain import Channel, EntityType, Role
from hub.services import admin
from hub.services.members import ADMIN
from hub.wiring import Hub
from tests.api.conftest import sse_events
from tests.broker.conftest import Rabbit, rabbit
from tests.outputs.test_email_smtp import Sink
from tests.peers.smsc_peer import Smsc
from tests.services.test_router import TERRITORY, cap
from tests.services.test_worker_peers import sink, smpp, smsc

__all__ = ["rabbit", "sink", "smsc"]  # fixtures used by name

KEYS = dict[str, tuple[bytes, bytes]]
MEMBERS = 12
REJECTED = "32479000003"  # the SMSC refuses this number for good (ESME_RINVDSTADR)
REFUSED = "lid5@example.be"  # the SMTP sink refuses this mailbox (550)


@pytest.fixture
def smsc_rejecting() -> Iterator[Smsc]:
    peer = Smsc("--receipts", "delivered", "--reject", f"{REJECTED}=0x0B")
    yield peer
    peer.stop()


@pytest.fixture
async def running(rabbit: Rabbit, smsc_rejecting: Smsc, sink: Sink, tmp_path: Path, keypairs: KEYS,
                  aiohttp_client: Callable[..., Awaitable[TestClient]],  # type: ignore[type-arg]
                  ) -> AsyncIterator[tuple[Hub, TestClient]]:  # type: ignore[type-arg]
    sink.refuse = {REFUSED: "550 5.1.1 no such user"}
    settings = Settings(data_dir=str(tmp_path), signature=SignatureSettings(),
                        amqp=AmqpSettings(url=rabbit.url, prefix=f"e{uuid.uuid4().hex[:8]}."),
                        sms=smpp(smsc_rejecting),
                        email=EmailSettings(provider="smtp", host="127.0.0.1", port=sink.port, pool_size=2))
    hub = await Hub.start(settings, tmp_path)
    try:
        entity, _ = await admin.add_entity(hub.store, "PZ", EntityType.GROUPS, ["pz@example.be"],
                                           certificates=[("t", keypairs["police"][1])])
        await admin.add_account(hub.store, "PZ", "dispatch", Role.COORDINATOR)
        await hub.members.add_group(ADMIN, entity, "plp-a", "PLP A", territory=TERRITORY,
                                    channels=[Channel.SMS, Channel.EMAIL])
        rows = [f"Lid {i};0479 00 00 {i:02d};lid{i}@example.be;{'fr' if i % 3 == 0 else 'nl'}"
                for i in range(MEMBERS)]
        await hub.members.import_csv(ADMIN, "plp-a", ("naam;gsm;e-mail;taal\n" + "\n".join(rows)).encode())
        yield hub, await aiohttp_client(create_app(hub))
    finally:
        await hub.stop()


async def test_post_watch_and_report_match_the_peers(running: tuple[Hub, TestClient], smsc_rejecting: Smsc,  # type: ignore[type-arg]
                                                     sink: Sink, keypairs: KEYS) -> None:
    hub, client = running
    token = await admin.new_account_token(hub.store, "dispatch")
    auth = {"Authorization": f"Bearer {token}"}
    async with client.post("/cap", data=sign(cap("E2E-1"), *keypairs["police"]),
                           headers={**auth, "Content-Type": "application/cap+xml"}) as resp:
        assert resp.status == 201, await resp.text()
    campaign: dict[str, Any] = {}
    for _ in range(500):
        async with client.get("/campaigns?alert=E2E-1", headers=auth) as resp:
            found = (await resp.json())["campaigns"]
        if found:
            campaign = found[0]
            break
    assert campaign, "the alert never became a campaign"

    events = await sse_events(client, f"/campaigns/{campaign['id']}/events", token)
    assert events[-1][0] == "end" and events[-1][1]["state"] == "done"
    assert not client.app[STREAMS]

    # What the peers saw: accepted submits per number, mails per recipient.
    accepted = {"+" + s["destination"] for s in smsc_rejecting.submits(accepted_only=True)}
    refused = {"+" + s["destination"] for s in smsc_rejecting.submits() if s["status"]}
    mailed = {to for _, tos, _ in sink.received for to in tos}
    assert len(accepted) == MEMBERS - 1 and refused == {"+" + REJECTED}
    assert len(mailed) == MEMBERS - 1 and REFUSED not in mailed

    async with client.get(f"/campaigns/{campaign['id']}/report", headers=auth) as resp:
        report = await resp.json()
    async with client.get(f"/campaigns/{campaign['id']}/report?format=csv", headers=auth) as resp:
        rows = list(csv.DictReader(io.StringIO(await resp.text())))
    delivered = {(r["channel"], r["address"]) for r in rows if r["state"] == "delivered"}
    assert delivered == {("sms", n) for n in accepted} | {("email", m) for m in mailed}
    failed = {(r["channel"], r["address"]): r["reason"] for r in rows if r["state"] == "failed"}
    assert set(failed) == {("sms", "+" + REJECTED), ("email", REFUSED)}
    assert failed[("email", REFUSED)].startswith("550")

    by_channel = {c["channel"]: c for c in report["channels"]}
    assert by_channel["sms"]["delivered"] == len(accepted) and by_channel["sms"]["failed"] == 1
    assert by_channel["email"]["delivered"] == len(mailed) and by_channel["email"]["failed"] == 1
    assert report["totals"]["planned"] == 2 * MEMBERS and report["totals"]["awaiting"] == 0
    parts = sum(int(r["parts"]) for r in rows if r["channel"] == "sms")
    assert report["totals"]["cost_eur"] == pytest.approx(parts * 0.055)
    final = events[-1][1]
    assert final["counts"] == {"sms": {"delivered": len(accepted), "failed": 1},
                               "email": {"delivered": len(mailed), "failed": 1}}
    assert final["cost_eur"] == pytest.approx(report["totals"]["cost_eur"])
