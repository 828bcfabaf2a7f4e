"""Templates over REST against the running app: CRUD, one-call sends through ingest, and
each bad input the issue lists."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from lxml import etree

from hub.cap.trust import TrustStore
from hub.cap.verify import SignaturePolicy, verify
from hub.domain import EntityType, Role
from hub.services import admin
from hub.services.members import ADMIN
from hub.wiring import Hub
from tests.api.conftest import MakeSender, Sender, campaign_done
from tests.api.test_post_cap import CAP, answer_of, hub_verifies, stored_count

TERRITORY = json.dumps({"type": "Polygon", "coordinates": [
    [[4.30, 50.80], [4.40, 50.80], [4.40, 50.90], [4.30, 50.90], [4.30, 50.80]]]})

FIRE: dict[str, Any] = {
    "event": "Brand", "category": "Fire", "urgency": "Immediate", "severity": "Severe",
    "certainty": "Observed", "kind": "alert", "expires_in": 60,
    "languages": {"nl": {"headline": "Brand in de {straat}", "instruction": "Sluit ramen & deuren."},
                  "fr": {"headline": "Incendie rue {straat}", "instruction": "Fermez portes et fenêtres."}},
    "channels": ["sms", "email"], "groups": ["plp-a"],
    "area": {"areaDesc": "{straat}", "polygons": ["50.83,4.33 50.83,4.38 50.87,4.38 50.87,4.33 50.83,4.33"]},
}


async def call(client: TestClient, method: str, path: str, token: str | None,  # type: ignore[type-arg]
               body: Any = None, accept: str = "application/json") -> tuple[int, Any, bytes]:
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body)
    if data is not None:
        headers["Content-Type"] = "application/json"
    async with client.request(method, path, data=data, headers=headers) as resp:
        raw = await resp.read()
        parsed = json.loads(raw) if resp.content_type.endswith("json") and raw else None
        return resp.status, parsed, raw


async def police_with_group(hub: Hub, make_sender: MakeSender, **kw: Any) -> Sender:
    police = await make_sender("police", **kw)
    entity = await hub.store.entity_by_name("police")
    assert entity is not None
    await hub.members.add_group(ADMIN, entity, "plp-a", "PLP A", territory=TERRITORY)
    await hub.members.import_csv(ADMIN, "plp-a", b"naam;gsm;e-mail;taal\nAn;0477 12 34 56;an@example.be;nl\n"
                                              b"Luc;0478 12 34 56;luc@example.be;fr\n")
    return police


async def test_crud(hub: Hub, client: TestClient, make_sender: MakeSender) -> None:  # type: ignore[type-arg]
    police = await police_with_group(hub, make_sender)
    status, made, _ = await call(client, "POST", "/templates", police.token,
                                 {"name": "brand", "template": FIRE})
    assert status == 201, made
    assert made["placeholders"] == ["straat"] and made["template"]["scope"] == "Private"
    assert (await call(client, "POST", "/templates", police.token,
                       {"name": "brand", "template": FIRE}))[0] == 409
    status, listed, _ = await call(client, "GET", "/templates", police.token)
    assert [t["name"] for t in listed["templates"]] == ["brand"]
    for key in (str(made["id"]), "brand"):
        status, one, _ = await call(client, "GET", f"/templates/{key}", police.token)
        assert status == 200 and one["id"] == made["id"]
    changed = dict(FIRE, severity="{ernst}")
    status, replaced, _ = await call(client, "PUT", f"/templates/{made['id']}", police.token,
                                     {"name": "brand-2", "template": changed})
    assert status == 200 and replaced["placeholders"] == ["ernst", "straat"] and replaced["name"] == "brand-2"
    assert (await call(client, "DELETE", "/templates/brand-2", police.token))[0] == 204
    assert (await call(client, "GET", f"/templates/{made['id']}", police.token))[0] == 404
    assert (await call(client, "GET", "/templates", None))[0] == 401


@pytest.mark.parametrize(("change", "needle"), [
    ({"languages": {"nl": {"headline": "Brand in {straat.naam}"}}}, "placeholder {straat.naam}"),
    ({"event": "Brand {"}, "event: Single '{'"),
    ({"colour": "red"}, "colour: unknown field"),
    ({"status": "Draft"}, "status: 'Draft' is not one of"),
    ({"channels": ["fax"]}, "channels: 'fax'"),
    ({"area": {"polygons": []}}, "area: required, with an areaDesc"),
])
async def test_a_bad_template_is_refused_naming_where(hub: Hub, client: TestClient,  # type: ignore[type-arg]
                                                      make_sender: MakeSender, change: dict[str, Any],
                                                      needle: str) -> None:
    police = await make_sender("police")
    status, body, _ = await call(client, "POST", "/templates", police.token,
                                 {"name": "brand", "template": dict(FIRE, **change)})
    assert status == 422 and needle in body["detail"], body


async def test_send_takes_one_call_and_goes_out_like_a_posted_alert(
        hub: Hub, client: TestClient, make_sender: MakeSender) -> None:  # type: ignore[type-arg]
    police = await police_with_group(hub, make_sender)
    await call(client, "POST", "/templates", police.token, {"name": "brand", "template": FIRE})
    status, _, raw = await call(client, "POST", "/templates/brand:send", police.token,
                                {"values": {"straat": "Kerkstraat <12>"}}, accept="application/cap+xml")
    assert status == 201, raw
    assert answer_of(raw)[0] == "Ack" and hub_verifies(hub, raw)  # the same signed Ack as POST /cap
    alerts = await hub.store.list_alerts(limit=10)
    assert len(alerts) == 1
    stored = alerts[0]
    assert stored.sender == police.sender and stored.identifier.startswith("tpl-")
    root = etree.fromstring(stored.received)
    assert root.findtext(f"{CAP}addresses") == "plp-a" and root.findtext(f"{CAP}code") == "template:brand"
    assert [i.findtext(f"{CAP}headline") for i in root.iter(f"{CAP}info")] == [
        "Brand in de Kerkstraat <12>", "Incendie rue Kerkstraat <12>"]
    # signed by the hub on behalf of the account
    trust = TrustStore.from_pem({police.sender: [hub.identity.cert_pem]})
    assert verify(stored.received, trust=trust, policy=SignaturePolicy(required=True), sender=police.sender,
                  now=stored.received_at).valid
    campaign = await campaign_done(hub, stored.id)
    states = await hub.store.delivery_states(campaign.id)
    assert sum(n for (channel, _), n in states.items() if channel == "sms") == 2
    assert sum(n for (channel, _), n in states.items() if channel == "email") == 2
    # JSON answer, as POST /cap gives it
    status, body, _ = await call(client, "POST", "/templates/brand:send", police.token,
                                 {"values": {"straat": "Markt"}})
    assert status == 201 and body["status"] == "accepted" and body["answer"]["msgType"] == "Ack"


async def test_send_with_a_placeholder_missing(hub: Hub, client: TestClient,  # type: ignore[type-arg]
                                               make_sender: MakeSender) -> None:
    police = await police_with_group(hub, make_sender)
    await call(client, "POST", "/templates", police.token, {"name": "brand", "template": FIRE})
    status, body, _ = await call(client, "POST", "/templates/brand:send", police.token, {"values": {}})
    assert status == 422 and "placeholder 'straat' has no value" in body["detail"]
    assert await stored_count(hub) == 0


async def test_send_with_an_unknown_placeholder(hub: Hub, client: TestClient,  # type: ignore[type-arg]
                                                make_sender: MakeSender) -> None:
    police = await police_with_group(hub, make_sender)
    await call(client, "POST", "/templates", police.token, {"name": "brand", "template": FIRE})
    status, body, _ = await call(client, "POST", "/templates/brand:send", police.token,
                                 {"values": {"straat": "Markt", "huisnummer": "3"}})
    assert status == 422 and "placeholder 'huisnummer' is not in this template" in body["detail"]
    assert await stored_count(hub) == 0


async def test_send_whose_result_is_not_valid_cap(hub: Hub, client: TestClient,  # type: ignore[type-arg]
                                                  make_sender: MakeSender) -> None:
    police = await police_with_group(hub, make_sender)
    bad = copy.deepcopy(FIRE)
    bad["urgency"] = "{dringend}"
    await call(client, "POST", "/templates", police.token, {"name": "brand", "template": bad})
    published: list[object] = []

    async def collect(message: object) -> None:
        published.append(message)

    consumer = await hub.broker.consume("test-watch", ("alert.*",), collect)
    status, _, raw = await call(client, "POST", "/templates/brand:send", police.token,
                                {"values": {"straat": "Markt", "dringend": "Soonish"}},
                                accept="application/cap+xml")
    await asyncio.sleep(0.05)
    await consumer.cancel()
    assert status == 400
    assert answer_of(raw)[0] == "Error" and hub_verifies(hub, raw)
    assert "/alert/info[1]/urgency" in raw.decode() and "Soonish" in raw.decode()  # names what and where
    assert await stored_count(hub) == 0 and published == []  # nothing stored, nothing sent
    assert await hub.store.campaigns(limit=10) == []


async def test_a_template_of_another_entity(hub: Hub, client: TestClient,  # type: ignore[type-arg]
                                            make_sender: MakeSender) -> None:
    police = await police_with_group(hub, make_sender)
    commune = await make_sender("commune", type=EntityType.AREA)
    _, made, _ = await call(client, "POST", "/templates", police.token, {"name": "brand", "template": FIRE})
    for key in (str(made["id"]), "brand"):
        assert (await call(client, "GET", f"/templates/{key}", commune.token))[0] == 404
        assert (await call(client, "PUT", f"/templates/{key}", commune.token,
                           {"name": "mine", "template": FIRE}))[0] == 404
        assert (await call(client, "DELETE", f"/templates/{key}", commune.token))[0] == 404
        status, body, _ = await call(client, "POST", f"/templates/{key}:send", commune.token,
                                     {"values": {"straat": "Markt"}})
        assert status == 404 and "no template" in body["detail"]
    assert (await call(client, "GET", "/templates", commune.token))[1] == {"templates": []}
    assert await stored_count(hub) == 0
    assert (await call(client, "GET", f"/templates/{made['id']}", police.token))[0] == 200


async def test_send_checks_the_accounts_grants_as_ingest_does(
        hub: Hub, client: TestClient, make_sender: MakeSender) -> None:  # type: ignore[type-arg]
    police = await police_with_group(hub, make_sender, role=Role.MANDATED, grants=("kinds=news",))
    await admin.add_account(hub.store, "police", "police-coordinator", Role.COORDINATOR, ())
    coordinator = await admin.new_account_token(hub.store, "police-coordinator")
    await call(client, "POST", "/templates", coordinator, {"name": "brand", "template": FIRE})
    status, _, raw = await call(client, "POST", "/templates/brand:send", police.token,
                                {"values": {"straat": "Markt"}}, accept="application/cap+xml")
    assert status == 403 and answer_of(raw)[0] == "Error" and b"kind-not-granted" in raw
    assert await stored_count(hub) == 0


async def test_send_whose_area_breaks_a_cap_rule(hub: Hub, client: TestClient,  # type: ignore[type-arg]
                                                 make_sender: MakeSender) -> None:
    police = await police_with_group(hub, make_sender)
    bad = copy.deepcopy(FIRE)
    bad["area"]["polygons"] = ["{veelhoek}"]
    await call(client, "POST", "/templates", police.token, {"name": "brand", "template": bad})
    status, body, _ = await call(client, "POST", "/templates/brand:send", police.token,
                                 {"values": {"straat": "Markt",
                                             "veelhoek": "50.83,4.33 50.83,4.38 50.87,4.38"}})
    assert status == 400 and body["status"] == "refused" and body["answer"]["msgType"] == "Error"
    assert any("polygon" in p["path"] for p in body["problems"]), body["problems"]
    assert await stored_count(hub) == 0 and await hub.store.campaigns(limit=10) == []


async def test_only_coordinators_write_templates(hub: Hub, client: TestClient,  # type: ignore[type-arg]
                                                 make_sender: MakeSender) -> None:
    """A mandated person reads the entity's templates but may not add, replace or delete one."""
    police = await police_with_group(hub, make_sender)
    status, made, _ = await call(client, "POST", "/templates", police.token,
                                 {"name": "brand", "template": FIRE})
    assert status == 201
    other = await make_sender("commune", type=EntityType.AREA)
    await admin.add_account(hub.store, "police", "police-agent", Role.MANDATED, ())
    token = await admin.new_account_token(hub.store, "police-agent")
    status, listed, _ = await call(client, "GET", "/templates", token)
    assert status == 200 and [t["name"] for t in listed["templates"]] == ["brand"]
    for method, path, body in (("POST", "/templates", {"name": "x", "template": FIRE}),
                               ("PUT", f"/templates/{made['id']}", {"name": "brand", "template": FIRE}),
                               ("DELETE", f"/templates/{made['id']}", None)):
        status, problem, _ = await call(client, method, path, token, body)
        assert status == 403 and "coordinators" in problem["detail"], (method, problem)
    status, listed, _ = await call(client, "GET", "/templates", other.token)  # another entity's
    assert listed["templates"] == []


@pytest.mark.parametrize("key", ["%C2%B2", "99999999999999999999"])
async def test_a_key_that_is_no_stored_id_is_404(hub: Hub, client: TestClient,  # type: ignore[type-arg]
                                                 make_sender: MakeSender, key: str) -> None:
    police = await police_with_group(hub, make_sender)
    assert (await call(client, "GET", f"/templates/{key}", police.token))[0] == 404
    assert (await call(client, "DELETE", f"/templates/{key}", police.token))[0] == 404
