"""The channel workers on real providers chosen by settings, end to end through ``Hub.start``:
SMS over SMPP to the node-smpp SMSC simulator (tests/peers), outcomes from its delivery
receipts; e-mail over SMTP to aiosmtpd. Asserts on what the peers decoded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from hub.config import EmailSettings, Settings, SignatureSettings, SmsSettings
from hub.domain import CampaignState, Channel, EntityType, Role
from hub.outputs.email_smtp import SmtpProvider
from hub.outputs.smpp import Receipt
from hub.outputs.sms_smpp import SmppSmsProvider
from hub.outputs.sms_text import SMS_PRICE_EUR
from hub.services import admin
from hub.services.members import ADMIN
from hub.services.receipts import record_receipts
from hub.wiring import Hub
from tests.outputs.test_email_smtp import Sink, free_port
from tests.peers.smsc_peer import PeerUnavailable, Smsc
from tests.services.test_router import MEMBERS, TERRITORY, cap, post

KEYS = dict[str, tuple[bytes, bytes]]
UCS2_INSTRUCTION = "Restez à l’intérieur, fermez portes et fenêtres."
LONG_INSTRUCTION = "Blijf binnen en sluit ramen en deuren. " * 6


@pytest.fixture
def smsc() -> Iterator[Smsc]:
    try:
        peer = Smsc("--receipts", "delivered")
    except PeerUnavailable as exc:
        pytest.fail(str(exc))
    yield peer
    peer.stop()


@pytest.fixture
def sink() -> Iterator[Sink]:
    handler = Sink(refuse={"luc@example.be": "550 5.1.1 no such user"})
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


async def start(tmp_path: Path, keypairs: KEYS, **sections: object) -> Hub:
    """Every stage in one process on the embedded broker, PZ's two groups with two members."""
    settings = Settings(data_dir=str(tmp_path), signature=SignatureSettings(), **sections)  # type: ignore[arg-type]
    hub = await Hub.start(settings, tmp_path)
    entity, _ = await admin.add_entity(hub.store, "PZ", EntityType.GROUPS, ["pz@example.be"],
                                       certificates=[("t", keypairs["police"][1])])
    await admin.add_account(hub.store, "PZ", "dispatch", Role.COORDINATOR)
    await hub.members.add_group(ADMIN, entity, "plp-a", "PLP A", territory=TERRITORY)
    await hub.members.import_csv(ADMIN, "plp-a", MEMBERS)
    return hub


@pytest.fixture
async def hubs() -> AsyncIterator[list[Hub]]:
    started: list[Hub] = []
    yield started
    for hub in started:
        await hub.stop()


async def done(hub: Hub, alert_id: int) -> int:
    for _ in range(500):
        campaign = await hub.store.campaign_for_alert(alert_id)
        if campaign is not None and campaign.state is CampaignState.DONE:
            return campaign.id
        await asyncio.sleep(0.02)
    raise AssertionError(f"the campaign of alert {alert_id} never finished")


async def deliveries(hub: Hub, campaign_id: int,
                     channel: str) -> dict[str, tuple[str, str | None, int, float]]:
    found = await hub.store._read(
        "SELECT address, state, reason, parts, cost_eur FROM deliveries "
        "WHERE campaign_id = ? AND channel = ?", (campaign_id, channel))
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in found}


def smpp(peer: Smsc) -> SmsSettings:
    return SmsSettings(provider="smpp", host="127.0.0.1", port=peer.port, system_id="caphub",
                       password="secret", system_type="CAP", binds=2, source_addr="1789")


async def test_sms_over_smpp_delivered_by_receipts(tmp_path: Path, keypairs: KEYS, smsc: Smsc,
                                                   hubs: list[Hub]) -> None:
    hub = await start(tmp_path, keypairs, sms=smpp(smsc))
    hubs.append(hub)
    assert isinstance(hub.providers[Channel.SMS], SmppSmsProvider)
    alert_id = await post(hub, keypairs, cap("P-1", params=f"<instruction>{UCS2_INSTRUCTION}</instruction>"))
    campaign_id = await done(hub, alert_id)
    sms = await deliveries(hub, campaign_id, "sms")
    assert {s for s, *_ in sms.values()} == {"delivered"}
    assert all(parts == 1 for _, _, parts, _ in sms.values())
    submits = smsc.submits()
    assert sorted(s["destination"] for s in submits) == ["32477123456", "32478123456"]
    expected = f"BE-Alert: Rook. {UCS2_INSTRUCTION}"
    assert {(s["data_coding"], s["text"], s["source"], s["registered_delivery"]) for s in submits} == {
        (8, expected, "1789", 1)}
    # A receipt that came while its chunk was in hand ended the delivery with the submit and
    # indexed nothing; the others were indexed and their receipts found them: none waits.
    index = await hub.store._read("SELECT COUNT(*), SUM(state = 'delivered') FROM delivery_messages", ())
    assert index[0][0] == (index[0][1] or 0) <= 2


async def test_multipart_sms_counts_parts_and_cost(tmp_path: Path, keypairs: KEYS, smsc: Smsc,
                                                   hubs: list[Hub]) -> None:
    hub = await start(tmp_path, keypairs, sms=smpp(smsc))
    hubs.append(hub)
    alert_id = await post(hub, keypairs, cap("P-2", params=f"<instruction>{LONG_INSTRUCTION}</instruction>"))
    campaign_id = await done(hub, alert_id)
    sms = await deliveries(hub, campaign_id, "sms")
    assert {(s, parts) for s, _, parts, _ in sms.values()} == {("delivered", 2)}
    submits = smsc.submits()
    assert len(submits) == 4 and all(s["data_coding"] == 0 and s["esm_class"] & 0x40 for s in submits)
    by_dest: dict[str, list[str]] = {}
    for s in sorted(submits, key=lambda s: s["udh"]["seq"]):
        assert s["udh"]["total"] == 2
        by_dest.setdefault(s["destination"], []).append(s["text"])
    assert {"".join(t) for t in by_dest.values()} == {f"BE-Alert: Rook. {LONG_INSTRUCTION.strip()}"}
    cost = sum(Decimal(str(c)) for *_, c in sms.values())
    assert cost == SMS_PRICE_EUR * 4  # 2 parts × 2 numbers


async def test_receipts_after_a_restart_find_their_delivery(tmp_path: Path, keypairs: KEYS,
                                                            hubs: list[Hub]) -> None:
    """A receipt not correlated in memory (tag None) is matched through the store's index,
    in the other reading of its id (hex in the receipt, decimal in the resp); the delivery
    is final only once every part has its receipt; an unknown id is ignored."""
    hub = await start(tmp_path, keypairs)
    hubs.append(hub)
    alert_id = await post(hub, keypairs, cap("P-3"))
    campaign_id = await done(hub, alert_id)  # the simulators' outcomes
    [delivery_id, *_] = [r[0] for r in await hub.store._read(
        "SELECT id FROM deliveries WHERE campaign_id = ? AND channel = 'sms'", (campaign_id,))]
    await hub.store.add_message_ids([(delivery_id, "255", 1, 2), (delivery_id, "256", 2, 2)])
    first = [Receipt("ff", "DELIVRD"), Receipt("zz9", "DELIVRD")]  # part 1 (in hex), an unknown id
    assert await record_receipts(hub.store, hub.broker, first) == []
    [row] = await record_receipts(hub.store, hub.broker, [Receipt("100", "UNDELIV", error="001")])
    assert row[0] == delivery_id and row[1].value == "failed" and row[2] == "UNDELIV err:001" and row[3] == 2


async def test_email_over_smtp_with_one_refused_recipient(tmp_path: Path, keypairs: KEYS, sink: Sink,
                                                          hubs: list[Hub]) -> None:
    email = EmailSettings(provider="smtp", host="127.0.0.1", port=sink.port, pool_size=2,
                          sender="no-reply@be-alert.example")
    hub = await start(tmp_path, keypairs, email=email)
    hubs.append(hub)
    assert isinstance(hub.providers[Channel.EMAIL], SmtpProvider)
    alert_id = await post(hub, keypairs, cap("P-4"))
    campaign_id = await done(hub, alert_id)
    mails = await deliveries(hub, campaign_id, "email")
    assert mails["an@example.be"][:2] == ("delivered", None)
    assert mails["luc@example.be"][:2] == ("failed", "550 5.1.1 no such user")
    assert {(frm, tuple(tos)) for frm, tos, _ in sink.received} == {
        ("no-reply@be-alert.example", ("an@example.be",))}


async def test_receipts_find_submit_ids_the_smsc_wrote_in_upper_case_hex(tmp_path: Path, keypairs: KEYS,
                                                                        hubs: list[Hub]) -> None:
    """The SMSC answers submit_sm with upper-case hex ids ("EE6B2800") and puts the decimal
    reading in its receipts: each SMS is delivered by its receipt, and the index holds one
    row per part (its id in canonical form), not one more per receipt."""
    try:
        # Receipts a while after the submit: stored by their ids, not with the submits.
        peer = Smsc("--receipts", "delivered", "--receipt-id", "dec", "--receipt-delay", "300")
    except PeerUnavailable as exc:
        pytest.fail(str(exc))
    try:
        hub = await start(tmp_path, keypairs, sms=smpp(peer))
        hubs.append(hub)
        alert_id = await post(hub, keypairs, cap("P-5"))
        campaign_id = await done(hub, alert_id)
        sms = await deliveries(hub, campaign_id, "sms")
        assert {s for s, *_ in sms.values()} == {"delivered"}
        index = await hub.store._read("SELECT message_id, state FROM delivery_messages", ())
        assert len(index) == 2 and {r[1] for r in index} == {"delivered"}
        assert all(r[0] == r[0].lower() and len(r[0]) == 8 for r in index)  # hex, canonical
        # After a restart (nothing in memory), a receipt still finds its part through the index.
        delivery_id = (await hub.store._read("SELECT id FROM deliveries WHERE channel = 'sms'", ()))[0][0]
        await hub.store.add_message_ids([(delivery_id, "ffffffff", 1, 1)])
        [row] = await record_receipts(hub.store, hub.broker, [Receipt("4294967295", "UNDELIV")])
        assert row[0] == delivery_id
    finally:
        peer.stop()
