"""POST /cap against the running app: what a dispatch system sees, and what is stored."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from hub.cap import devkeys
from hub.cap.sign import sign
from hub.cap.trust import TrustStore
from hub.cap.verify import SignaturePolicy, verify
from hub.domain import EntityType, Role
from hub.services import admin
from hub.wiring import Hub
from tests.api.conftest import MakeSender
from tests.cap.test_parse import BILLION_LAUGHS, EXTERNAL_DTD, EXTERNAL_ENTITY, QUADRATIC, XINCLUDE

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"


def answer_of(body: bytes) -> tuple[str, str]:
    root = etree.fromstring(body)
    return root.findtext(f"{CAP}msgType") or "", root.findtext(f"{CAP}note") or ""


def hub_verifies(hub: Hub, body: bytes) -> bool:
    trust = TrustStore.from_pem({hub.identity.sender: [hub.identity.cert_pem]})
    return verify(body, trust=trust, policy=SignaturePolicy(required=True),
                  sender=hub.identity.sender, now=datetime.now(UTC)).valid


async def stored_count(hub: Hub) -> int:
    return len(await hub.store.list_alerts(limit=500))


async def test_signed_alert_is_acked_stored_and_published(hub: Hub, make_sender: MakeSender) -> None:
    police = await make_sender("police")
    seen: list[bytes] = []
    await hub.broker.declare("t", ("alert.*",))

    async def collect(m: object) -> None:
        seen.append(m.body)  # type: ignore[attr-defined]

    await hub.broker.consume("t", ("alert.*",), collect)
    data, ref = police.alert()
    status, body, headers = await police.post(police.signed(data))
    assert status == 201, body
    msg_type, note = answer_of(body)
    assert msg_type == "Ack" and ref.split(",")[1] in body.decode()
    assert hub_verifies(hub, body)
    alert = await hub.store.alert(int(headers["Location"].rsplit("/", 1)[1]))
    assert alert is not None and alert.received == police.signed(data)
    assert alert.signed == b""  # the hub signs its own copy when it first emits it
    signed = await hub.ingest.countersign(alert)
    assert hub_verifies(hub, signed)
    again = await hub.store.alert(alert.id)
    assert again is not None and again.signed == signed
    await asyncio.sleep(0.05)
    assert [json.loads(b)["identifier"] for b in seen] == [ref.split(",")[1]]


async def test_json_answer(make_sender: MakeSender) -> None:
    police = await make_sender("police")
    data, _ = police.alert()
    status, body, _ = await police.post(police.signed(data), accept="application/json")
    answer = json.loads(body)
    assert status == 201 and answer["status"] == "accepted"
    assert answer["answer"]["msgType"] == "Ack" and answer["alert"]["state"] == "active"


BAD_DOCUMENTS = {
    "not-xml": b"this is not XML",
    "truncated": b'<?xml version="1.0"?><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x',
    "billion-laughs": BILLION_LAUGHS,
    "quadratic": QUADRATIC,
    "external-entity": EXTERNAL_ENTITY,
    "xinclude": XINCLUDE,
    "external-dtd": EXTERNAL_DTD,
}


@pytest.mark.parametrize("name", sorted(BAD_DOCUMENTS))
async def test_hostile_documents_get_a_cap_error(hub: Hub, make_sender: MakeSender, name: str) -> None:
    police = await make_sender("police")
    status, body, _ = await police.post(BAD_DOCUMENTS[name])
    assert status == 400
    msg_type, note = answer_of(body)
    assert msg_type == "Error" and note
    assert hub_verifies(hub, body)
    assert await stored_count(hub) == 0


MUTATIONS = {
    "cap-1.1": ("emergency:cap:1.2", "emergency:cap:1.1", "cap-version"),
    "cap-1.0": ("urn:oasis:names:tc:emergency:cap:1.2", "http://www.incident.com/cap/1.0", "cap-version"),
    "wrong-namespace": ("urn:oasis:names:tc:emergency:cap:1.2", "urn:example:not-cap", "cap-root"),
    "wrong-root": ("<alert xmlns", "<alarm xmlns", "cap-root"),
    "missing-status": ("<status>Actual</status>", "", "xsd-missing-element"),
    "out-of-order": ("<status>Actual</status><msgType>Alert</msgType>",
                     "<msgType>Alert</msgType><status>Actual</status>", "xsd-unexpected-element"),
    "bad-enum": ("<severity>Severe</severity>", "<severity>Awful</severity>", "xsd-enumeration"),
    "open-polygon": ("4.33 50.83,4.33</polygon>", "4.33</polygon>", "polygon-closed"),
    "circle-without-radius": ("</polygon>", "</polygon><circle>50.85,4.35</circle>", "circle-syntax"),
    "identifier-space": ("<identifier>", "<identifier>has space ", "identifier-chars"),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
async def test_invalid_cap_gets_an_error_naming_the_rule(
    hub: Hub, make_sender: MakeSender, name: str
) -> None:
    police = await make_sender("police")
    old, new, code = MUTATIONS[name]
    data, _ = police.alert()
    assert old.encode() in data
    data = data.replace(old.encode(), new.encode(), 1)
    if name == "wrong-root":
        data = data.replace(b"</alert>", b"</alarm>")
    status, body, _ = await police.post(police.signed(data))
    assert status == 400
    assert answer_of(body)[0] == "Error" and code in answer_of(body)[1]
    assert await stored_count(hub) == 0


async def test_sent_with_z_and_update_with_empty_references(hub: Hub, make_sender: MakeSender) -> None:
    police = await make_sender("police")
    data, _ = police.alert()
    zulu = data.replace(b"+01:00</sent>", b"Z</sent>")
    status, body, _ = await police.post(police.signed(zulu))
    assert status == 400 and "xsd-pattern" in answer_of(body)[1]
    update, _ = police.alert(msg_type="Update", extra="<references> </references>")
    status, body, _ = await police.post(police.signed(update))
    assert status == 400 and "references-required" in answer_of(body)[1]


async def test_signature_failures(hub: Hub, make_sender: MakeSender,
                                  keypairs: dict[str, tuple[bytes, bytes]]) -> None:
    police = await make_sender("police")
    await make_sender("commune", type=EntityType.AREA)
    data, _ = police.alert(headline="Rook boven de stad")
    tampered = police.signed(data).replace(b"Rook boven", b"Rook b0ven")
    status, body, _ = await police.post(tampered)
    assert status == 400 and "digest" in answer_of(body)[1].lower()
    status, body, _ = await police.post(data)  # an unsigned Actual alert
    assert status == 400 and "signature-missing" in answer_of(body)[1]
    status, body, _ = await police.post(sign(data, *devkeys.new_identity("unregistered")))
    assert status == 403 and "signature-untrusted-key" in answer_of(body)[1]
    status, body, _ = await police.post(sign(data, *keypairs["commune"]))
    assert status == 403 and "signature-untrusted-key" in answer_of(body)[1]  # another entity's cert
    placeholder = data.replace(b"</alert>", b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"/></alert>')
    status, body, _ = await police.post(placeholder)
    assert status == 400 and "signature-malformed" in answer_of(body)[1]
    old_key, old_cert = devkeys.new_identity("old", days=1, not_before=datetime.now(UTC) - timedelta(days=10))
    await admin.add_certificate(hub.store, "police", "old.pem", old_cert)
    status, body, _ = await police.post(sign(data, old_key, old_cert))
    assert status == 403 and "signature-expired" in answer_of(body)[1]
    assert await stored_count(hub) == 0


async def test_exercise_may_come_unsigned(make_sender: MakeSender) -> None:
    police = await make_sender("police")
    data, _ = police.alert(status="Exercise")
    assert (await police.post(data))[0] == 201


async def test_media_type_token_and_rights(hub: Hub, make_sender: MakeSender) -> None:
    police = await make_sender("police")
    commune = await make_sender("commune", type=EntityType.AREA)
    data, _ = police.alert()
    signed = police.signed(data)
    status, body, _ = await police.post(signed, content_type="text/plain")
    assert status == 415 and answer_of(body)[0] == "Error"
    status, _, headers = await police.post(signed, token=None)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert (await police.post(signed, token="caphub_not-a-token"))[0] == 401
    status, body, _ = await police.post(signed, token=commune.token)  # a token of another entity
    assert status == 403 and "sender-not-registered" in answer_of(body)[1]
    await admin.revoke_token(hub.store, police.token)
    assert (await police.post(signed))[0] == 401
    assert await stored_count(hub) == 0
    await hub.audits_written()
    entries = await hub.store.audit_entries(limit=20)
    assert any(e.outcome == "refused:unauthenticated" for e in entries)
    assert all(police.token not in e.detail for e in entries)


KIND = "<parameter><valueName>messageKind</valueName><value>prevention</value></parameter><area>"


async def test_grants_and_territory(hub: Hub, make_sender: MakeSender) -> None:
    territory = json.dumps({"type": "Polygon", "coordinates": [
        [[4.34, 50.84], [4.37, 50.84], [4.37, 50.86], [4.34, 50.86], [4.34, 50.84]]]})
    police = await make_sender("police", territory=territory, role=Role.MANDATED,
                               grants=("kinds=prevention", "groups=plp-a"))
    data, _ = police.alert()  # an alert, but only prevention is granted
    status, body, _ = await police.post(police.signed(data))
    assert status == 403 and "kind-not-granted" in answer_of(body)[1]
    data, _ = police.alert()
    assert (await police.post(police.signed(data.replace(b"<area>", KIND.encode(), 1))))[0] == 201
    far = ("<area><areaDesc>Oostende</areaDesc><polygon>51.2,2.9 51.2,2.95 51.25,2.95 51.2,2.9"
           "</polygon></area>")
    data, _ = police.alert(area=far)
    status, body, _ = await police.post(police.signed(data.replace(b"<area>", KIND.encode(), 1)))
    assert status == 403 and "area-outside-territory" in answer_of(body)[1]
    data, _ = police.alert(scope="Private", extra="<addresses>plp-b</addresses>")
    status, body, _ = await police.post(police.signed(data.replace(b"<area>", KIND.encode(), 1)))
    assert status == 403 and "group-not-granted" in answer_of(body)[1]


async def test_duplicates(hub: Hub, make_sender: MakeSender) -> None:
    police = await make_sender("police")
    data, _ = police.alert(identifier="SAME-1")
    signed = police.signed(data)
    first = await police.post(signed)
    again = await police.post(signed)
    assert first[0] == 201 and again[0] == 200 and again[1] == first[1]
    status, body, _ = await police.post(police.signed(data.replace(b"Rook", b"Brand")))
    assert status == 409 and "duplicate-key" in answer_of(body)[1]
    assert await stored_count(hub) == 1


async def test_update_and_cancel_lifecycle(hub: Hub, make_sender: MakeSender) -> None:
    police = await make_sender("police")
    commune = await make_sender("commune", type=EntityType.AREA)
    data, ref = police.alert()
    _, _, headers = await police.post(police.signed(data))
    first_id = int(headers["Location"].rsplit("/", 1)[1])
    update, update_ref = police.alert(msg_type="Update", references=ref)
    status, _, headers = await police.post(police.signed(update))
    assert status == 201
    update_id = int(headers["Location"].rsplit("/", 1)[1])
    first = await hub.store.alert(first_id)
    assert first is not None and first.state.value == "updated" and first.superseded_by == update_id
    unknown, _ = police.alert(msg_type="Update",
                              references=f"{police.sender},NOPE,2026-01-01T00:00:00+01:00")
    status, body, _ = await police.post(police.signed(unknown))
    assert status == 422 and "reference-unknown" in answer_of(body)[1]
    foreign, _ = commune.alert(msg_type="Cancel", references=update_ref)
    status, body, _ = await commune.post(commune.signed(foreign))
    assert status == 422 and "reference-foreign" in answer_of(body)[1]
    cancel, _ = police.alert(msg_type="Cancel", references=update_ref)
    assert (await police.post(police.signed(cancel)))[0] == 201
    updated = await hub.store.alert(update_id)
    assert updated is not None and updated.state.value == "cancelled"


async def test_expired_on_arrival(make_sender: MakeSender) -> None:
    police = await make_sender("police")
    data, _ = police.alert(sent_ago=timedelta(hours=2), expires_in=timedelta(hours=1))
    status, body, _ = await police.post(police.signed(data))
    assert status == 422 and "expired-on-arrival" in answer_of(body)[1]


async def test_body_over_the_limit_sent_slowly(hub: Hub, make_sender: MakeSender) -> None:
    police = await make_sender("police")
    limit = hub.settings.cap.max_bytes

    async def slowly() -> AsyncIterator[bytes]:
        chunk = b"<" + b"x" * (256 * 1024)
        for _ in range(limit // len(chunk) + 2):
            yield chunk
            await asyncio.sleep(0.001)

    headers = {"Content-Type": "application/cap+xml", "Authorization": f"Bearer {police.token}"}
    async with police.client.post("/cap", data=slowly(), headers=headers) as resp:
        assert resp.status == 413
        assert answer_of(await resp.read())[0] == "Error"
    assert await stored_count(hub) == 0


async def test_concurrent_posts_are_all_stored(hub: Hub, make_sender: MakeSender) -> None:
    police = await make_sender("police")
    docs = [police.signed(police.alert()[0]) for _ in range(200)]
    results = await asyncio.gather(*(police.post(d) for d in docs))
    assert [r[0] for r in results] == [201] * 200
    assert await stored_count(hub) == 200
