"""Live progress, the SSE stream, the report and the preview, through the app on a real hub
(SQLite, embedded broker, simulator providers)."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.api.app import create_app
from hub.api.campaigns import STREAMS
from hub.config import EmailSettings, SmsSettings
from hub.domain import Channel, EntityType, Role
from hub.services import admin
from hub.services.members import ADMIN
from hub.wiring import Hub
from tests.api.conftest import MakeSender, Sender, settings_for, sse_events

TERRITORY = json.dumps({"type": "Polygon", "coordinates": [
    [[4.30, 50.80], [4.40, 50.80], [4.40, 50.90], [4.30, 50.90], [4.30, 50.80]]]})
UCS2 = "Restez à l’intérieur, fenêtres fermées."


def members(n: int) -> bytes:
    rows = [f"Lid {i};0477 {i // 10000 % 100:02d} {i // 100 % 100:02d} {i % 100:02d};lid{i}@example.be;"
            f"{'nl' if i % 3 else 'fr'}" for i in range(n)]
    return ("naam;gsm;e-mail;taal\n" + "\n".join(rows) + "\n").encode()


def two_languages(sender: Sender, instruction: str = "Blijf binnen.", **kw: Any) -> tuple[bytes, str]:
    data, ref = sender.alert(**kw)
    text = data.decode()
    info = text[text.index("<info>"):text.index("</info>") + len("</info>")]
    fr = info.replace("nl-BE", "fr-BE").replace("</headline>",
                                                f"</headline><instruction>{UCS2}</instruction>")
    nl = info.replace("</headline>", f"</headline><instruction>{instruction}</instruction>")
    return text.replace(info, nl + fr).encode(), ref


async def with_members(hub: Hub, sender: Sender, n: int) -> None:
    entity = await hub.store.entity_by_name(sender.name)
    assert entity is not None
    await hub.members.add_group(ADMIN, entity, "plp-a", "PLP A", territory=TERRITORY,
                                channels=[Channel.SMS, Channel.EMAIL])
    await hub.members.import_csv(ADMIN, "plp-a", members(n))


def settled(counts: dict[str, dict[str, int]], n: int) -> bool:
    """Every channel's ``n`` deliveries final; the simulators fail a few per cent at random."""
    return set(counts) == {"sms", "email"} and all(
        set(states) <= {"delivered", "failed"} and sum(states.values()) == n for states in counts.values())


async def get(client: TestClient, path: str, token: str | None, **headers: str) -> tuple[int, Any]:  # type: ignore[type-arg]
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with client.get(path, headers=headers) as resp:
        text = await resp.text()
        is_json = resp.content_type.endswith("json")
        return resp.status, json.loads(text) if is_json else text


async def campaign_of(client: TestClient, sender: Sender, ref: str, *,  # type: ignore[type-arg]
                      state: str | None = None) -> dict[str, Any]:
    identifier = ref.split(",")[1]
    for _ in range(500):
        _, body = await get(client, f"/campaigns?alert={identifier}", sender.token)
        if body["campaigns"] and (state is None or body["campaigns"][0]["state"] == state):
            return dict(body["campaigns"][0])
        await asyncio.sleep(0.02)
    raise AssertionError(f"no campaign of {identifier} in state {state}")


# --- a hub whose channels are slow, so that a campaign is seen while it runs ---------------


@pytest.fixture
async def slow_hub(tmp_path: Path) -> AsyncIterator[Hub]:
    base = settings_for(tmp_path)
    settings = dataclasses.replace(base, sms=SmsSettings(rate=4.0), email=EmailSettings(rate=4.0),
                                   campaigns=dataclasses.replace(base.campaigns, progress_interval=0.1))
    hub = await Hub.start(settings, tmp_path)
    yield hub
    await hub.stop()


@pytest.fixture
async def slow_client(slow_hub: Hub, aiohttp_client: Callable[..., Awaitable[TestClient]]) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_app(slow_hub))


@pytest.fixture
async def slow_sender(slow_hub: Hub, slow_client: TestClient,  # type: ignore[type-arg]
                      keypairs: dict[str, tuple[bytes, bytes]]) -> Sender:
    await admin.add_entity(slow_hub.store, "police", EntityType.GROUPS, ["police@example.be"],
                           certificates=[("test", keypairs["police"][1])])
    await admin.add_account(slow_hub.store, "police", "police-account", Role.COORDINATOR)
    token = await admin.new_account_token(slow_hub.store, "police-account")
    sender = Sender("police", "police@example.be", token, *keypairs["police"], slow_client)
    await with_members(slow_hub, sender, 8)
    return sender


# --- progress ---------------------------------------------------------------------------------


async def test_progress_per_channel_and_language_with_cost(hub: Hub, client: TestClient,  # type: ignore[type-arg]
                                                           make_sender: MakeSender) -> None:
    police = await make_sender("police")
    await with_members(hub, police, 6)
    data, ref = two_languages(police)
    assert (await police.post(police.signed(data)))[0] == 201
    campaign = await campaign_of(client, police, ref, state="done")
    assert {"id", "alert", "state", "counts", "cost_eur"} <= set(campaign)  # the harnesses' shape
    assert settled(campaign["counts"], 6)
    languages = campaign["languages"]
    assert {c: {lang: sum(states.values()) for lang, states in langs.items()}
            for c, langs in languages.items()} == {"sms": {"fr": 2, "nl": 4}, "email": {"fr": 2, "nl": 4}}
    for channel, states in campaign["counts"].items():
        for state, n in states.items():
            assert sum(by_state.get(state, 0) for by_state in languages[channel].values()) == n
    assert (campaign["total"], campaign["final"], campaign["owed"]) == (12, 12, 0)
    assert campaign["ended"] is True and campaign["etaSeconds"] == 0
    assert campaign["sentAt"] and campaign["endedAt"] and campaign["sentAt"] <= campaign["endedAt"]
    assert campaign["rate"] == pytest.approx(1.2)  # 12 final within the last 10 s
    # nl fits one GSM-7 part; the French instruction's ’ forces UCS-2 (still one part of 70)
    assert campaign["cost_eur"] == pytest.approx(6 * 0.055)
    status, one = await get(client, f"/campaigns/{campaign['id']}", police.token)
    assert status == 200 and one["counts"] == campaign["counts"]


async def test_sse_streams_progress_until_the_final_state(slow_hub: Hub, slow_client: TestClient,  # type: ignore[type-arg]
                                                          slow_sender: Sender) -> None:
    data, ref = two_languages(slow_sender)
    assert (await slow_sender.post(data=slow_sender.signed(data)))[0] == 201
    campaign = await campaign_of(slow_client, slow_sender, ref)
    started = time.monotonic()
    got = await sse_events(slow_client, f"/campaigns/{campaign['id']}/events", slow_sender.token)
    elapsed = time.monotonic() - started
    kinds = [k for k, _ in got]
    assert kinds[-1] == "end" and set(kinds[:-1]) == {"progress"} and len(kinds) >= 3
    assert any(not body["ended"] and body["owed"] > 0 for _, body in got)  # seen while running
    final = got[-1][1]
    assert final["state"] == "done" and final["ended"] and settled(final["counts"], 8)
    assert {"id", "alert", "state", "counts", "cost_eur"} <= set(final)
    # at most one update per progress_interval (0.1 s), plus the end
    assert len(got) <= elapsed / 0.1 + 2
    finals = [body["final"] for _, body in got]
    assert finals == sorted(finals)
    assert not slow_client.app[STREAMS]


async def test_an_sse_client_that_disconnects_leaves_nothing_behind(
        slow_hub: Hub, slow_client: TestClient, slow_sender: Sender) -> None:  # type: ignore[type-arg]
    data, ref = two_languages(slow_sender)
    assert (await slow_sender.post(slow_sender.signed(data)))[0] == 201
    campaign = await campaign_of(slow_client, slow_sender, ref)
    app = slow_client.app
    tasks_before = len(asyncio.all_tasks())
    resp = await slow_client.get(f"/campaigns/{campaign['id']}/events",
                                 headers={"Authorization": f"Bearer {slow_sender.token}"})
    first = await resp.content.readline()
    assert first.startswith(b"id: ")
    assert len(app[STREAMS]) == 1
    resp.close()  # the client goes away mid-campaign
    for _ in range(100):
        if not app[STREAMS]:
            break
        await asyncio.sleep(0.02)
    assert not app[STREAMS]
    done = await campaign_of(slow_client, slow_sender, ref, state="done")  # the campaign went on
    assert settled(done["counts"], 8)
    assert len(asyncio.all_tasks()) <= tasks_before


async def test_another_entity_gets_404_for_events_and_report(hub: Hub, client: TestClient,  # type: ignore[type-arg]
                                                             make_sender: MakeSender) -> None:
    police = await make_sender("police")
    await with_members(hub, police, 2)
    data, ref = police.alert()
    assert (await police.post(police.signed(data)))[0] == 201
    campaign = await campaign_of(client, police, ref, state="done")
    stranger = await make_sender("commune", type=EntityType.AREA)
    for path in ("events", "report", "report?format=csv", "report?format=html"):
        status, body = await get(client, f"/campaigns/{campaign['id']}/{path}", stranger.token)
        assert status == 404 and body["detail"] == f"no campaign {campaign['id']}"
        assert (await get(client, f"/campaigns/{campaign['id']}/{path}", None))[0] == 401
    assert not client.app[STREAMS]


# --- the report -------------------------------------------------------------------------------


async def test_report_as_json_csv_and_html(hub: Hub, client: TestClient, make_sender: MakeSender) -> None:  # type: ignore[type-arg]
    police = await make_sender("police")
    await with_members(hub, police, 6)
    data, ref = two_languages(police)
    assert (await police.post(police.signed(data)))[0] == 201
    campaign = await campaign_of(client, police, ref, state="done")
    path = f"/campaigns/{campaign['id']}/report"

    status, report = await get(client, path, police.token)
    assert status == 200 and report["state"] == "done" and report["alert"] == ref.split(",")[1]
    assert report["totals"]["planned"] == 12 and report["totals"]["sent"] == 12
    assert report["totals"]["delivered"] + report["totals"]["failed"] == 12
    lines = {(line["channel"], line["language"]): line for line in report["lines"]}
    assert set(lines) == {("sms", "nl"), ("sms", "fr"), ("email", "nl"), ("email", "fr")}
    sms_fr = lines[("sms", "fr")]
    assert (sms_fr["planned"], sms_fr["sent"], sms_fr["delivered"] + sms_fr["failed"]) == (2, 2, 2)
    assert sum(sms_fr["failedReasons"].values()) == sms_fr["failed"]
    assert sms_fr["parts"] == 2 and sms_fr["cost_eur"] == pytest.approx(0.11)
    assert sms_fr["firstSent"] and sms_fr["firstSent"] <= sms_fr["lastSent"]
    assert report["totals"]["cost_eur"] == pytest.approx(6 * 0.055)
    assert sum(n for points in report["timeline"]["series"].values() for _, n in points) == 12

    status, text = await get(client, path + "?format=csv", police.token)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert status == 200 and len(rows) == 12
    assert {r["address"] for r in rows if r["channel"] == "email"} == {f"lid{i}@example.be" for i in range(6)}
    assert {r["name"] for r in rows} == {f"Lid {i}" for i in range(6)}
    assert {r["state"] for r in rows} <= {"delivered", "failed"}
    assert sum(r["state"] == "delivered" for r in rows) == report["totals"]["delivered"]
    assert (await get(client, path, police.token, Accept="text/csv"))[1] == text

    status, page = await get(client, path + "?format=html", police.token)
    assert status == 200 and page.startswith("<!DOCTYPE html>") and "<svg" in page and "<polyline" in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert page.count("<table>") == 3  # the facts, then sms and email
    assert (await get(client, path, police.token, Accept="text/html"))[1].startswith("<!DOCTYPE html>")

    status, body = await get(client, path + "?format=pdf", police.token)
    assert status == 400 and "'pdf' is not one of json, csv, html" in body["detail"]
    await hub.audits_written()
    actions = [e.action for e in await hub.store.audit_entries(limit=20)]
    assert "campaign.export" in actions and "campaign.report" in actions


async def test_csv_without_personal_data_for_an_account_that_may_not_see_members(
        hub: Hub, client: TestClient, make_sender: MakeSender) -> None:  # type: ignore[type-arg]
    police = await make_sender("police")
    await with_members(hub, police, 3)
    data, ref = police.alert()
    assert (await police.post(police.signed(data)))[0] == 201
    campaign = await campaign_of(client, police, ref, state="done")
    await admin.add_account(hub.store, "police", "agent7", Role.MANDATED, ["groups=plp-a"])
    token = await admin.new_account_token(hub.store, "agent7")
    status, text = await get(client, f"/campaigns/{campaign['id']}/report?format=csv", token)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert status == 200 and len(rows) == 6
    assert "address" not in rows[0] and "name" not in rows[0] and "member" not in rows[0]
    assert "example.be" not in text and "+32" not in text and "Lid" not in text


# --- the preview ------------------------------------------------------------------------------


async def post_preview(client: TestClient, token: str, data: bytes,  # type: ignore[type-arg]
                       content_type: str = "application/cap+xml") -> tuple[int, Any]:
    async with client.post("/campaigns:preview", data=data, headers={
            "Authorization": f"Bearer {token}", "Content-Type": content_type}) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_preview_counts_parts_encoding_and_cost_before_sending(
        hub: Hub, client: TestClient, make_sender: MakeSender) -> None:  # type: ignore[type-arg]
    police = await make_sender("police")
    await with_members(hub, police, 6)
    data, _ = two_languages(police, instruction="Blijf binnen. " * 14)  # two GSM-7 parts
    status, preview = await post_preview(client, police.token, data)  # unsigned: nothing is accepted
    assert status == 200, preview
    assert preview["deliveries"] == {"sms": {"fr": 2, "nl": 4}, "email": {"fr": 2, "nl": 4}}
    assert preview["languages"] == {"fr": 4, "nl": 8} and preview["total"] == 12
    sms = {s["language"]: s for s in preview["sms"]}
    nl = sms["nl-BE"]
    assert (nl["encoding"], nl["parts"], nl["ucs2Characters"]) == ("gsm7", 2, [])
    assert sms["nl-BE"]["gsm7Rewrite"] is None
    fr = sms["fr-BE"]
    assert fr["encoding"] == "ucs2" and fr["ucs2Characters"] == ["ê", "’"]  # é and à are GSM-7
    assert fr["gsm7Rewrite"]["text"] == "BE-Alert: Rook. Restez à l'intérieur, fenetres fermées."
    assert fr["gsm7Rewrite"]["replacements"] == [["’", "'"], ["ê", "e"]]
    assert preview["smsParts"] == 4 * 2 + 2 * 1
    assert preview["cost_eur"] == {"sms": pytest.approx(10 * 0.055), "voice": 0.0, "email": 0.0,
                                   "total": pytest.approx(10 * 0.055)}
    assert preview["simulation"] is False and preview["billed"] is True
    exercise, _ = two_languages(police, status="Exercise")
    status, simulated = await post_preview(client, police.token, exercise)
    assert status == 200 and simulated["simulation"] is True and simulated["billed"] is False
    campaigns = (await get(client, "/campaigns", police.token))[1]
    assert campaigns == {"campaigns": []}  # nothing planned, stored or sent


async def test_preview_naming_a_group_that_does_not_exist_is_refused(
        hub: Hub, client: TestClient, make_sender: MakeSender) -> None:  # type: ignore[type-arg]
    police = await make_sender("police")
    await with_members(hub, police, 2)
    data, _ = police.alert(scope="Private", extra="<addresses>plp-a plp-nope</addresses>")
    status, body = await post_preview(client, police.token, data)
    assert status == 422
    assert body["problems"][0]["path"] == "/alert/addresses"
    assert "no group 'plp-nope' in this entity (its groups: plp-a)" in body["detail"]


async def test_preview_bad_input(hub: Hub, client: TestClient, make_sender: MakeSender) -> None:  # type: ignore[type-arg]
    police = await make_sender("police")
    data, _ = police.alert()
    status, body = await post_preview(client, police.token, data, content_type="text/plain")
    assert status == 415 and "is not CAP" in body["detail"]
    status, body = await post_preview(client, police.token, data, content_type="application/json")
    assert status == 422 and "the body is not JSON" in body["detail"]
    status, body = await post_preview(client, police.token, b"<alert>not cap</alert>")
    assert status == 400 and body["problems"]
    assert (await post_preview(client, "nope", data))[0] == 401
    other, _ = police.alert()
    stranger = await make_sender("commune", type=EntityType.AREA)
    status, body = await post_preview(client, stranger.token, other)
    assert status == 403 and "sender-not-registered" in body["detail"]


SKELETON: dict[str, Any] = {
    "event": "Brand", "category": "Fire", "urgency": "Immediate", "severity": "Severe",
    "certainty": "Observed", "kind": "alert", "expires_in": 60,
    "languages": {"nl": {"headline": "Brand in de {straat}", "instruction": "Sluit ramen en deuren."},
                  "fr": {"headline": "Incendie rue {straat}", "instruction": "Fermez portes et fenêtres."}},
    "channels": ["sms", "email"], "groups": ["plp-a"],
    "area": {"areaDesc": "{straat}", "polygons": ["50.83,4.33 50.83,4.38 50.87,4.38 50.87,4.33 50.83,4.33"]},
}


async def test_preview_of_a_template_with_its_values(hub: Hub, client: TestClient,  # type: ignore[type-arg]
                                                     make_sender: MakeSender) -> None:
    police = await make_sender("police")
    await with_members(hub, police, 6)
    auth = {"Authorization": f"Bearer {police.token}"}
    async with client.post("/templates", json={"name": "brand", "template": SKELETON}, headers=auth) as resp:
        assert resp.status == 201, await resp.text()

    async def preview(body: Any, token: str = police.token) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with client.post("/campaigns:preview", json=body, headers=headers) as r:
            return r.status, await r.json(content_type=None)

    status, found = await preview({"template": "brand", "values": {"straat": "Markt"}})
    assert status == 200, found
    assert found["deliveries"] == {"sms": {"fr": 2, "nl": 4}, "email": {"fr": 2, "nl": 4}}
    sms = {s["language"]: s for s in found["sms"]}
    assert sms["nl"]["text"] == "BE-Alert: Brand in de Markt. Sluit ramen en deuren."
    assert sms["nl"]["encoding"] == "gsm7"
    assert sms["fr"]["ucs2Characters"] == ["ê"] and sms["fr"]["gsm7Rewrite"]["parts"] == 1
    assert found["cost_eur"]["total"] == pytest.approx(6 * 0.055)
    assert (await get(client, "/campaigns", police.token))[1] == {"campaigns": []}  # nothing sent

    status, body = await preview({"template": "brand", "values": {}})
    assert status == 422 and "straat" in body["detail"]
    status, body = await preview({"template": "nope", "values": {}})
    assert status == 404 and "nope" in body["detail"]
    stranger = await make_sender("commune", type=EntityType.AREA)
    assert (await preview({"template": "brand", "values": {"straat": "Markt"}}, stranger.token))[0] == 404
    assert (await preview(["brand"]))[0] == 422


async def test_a_campaign_id_beyond_any_stored_id_is_404(client: TestClient,  # type: ignore[type-arg]
                                                         make_sender: MakeSender) -> None:
    police = await make_sender("police")
    for path in ("events", "report"):
        status, body = await get(client, f"/campaigns/99999999999999999999/{path}", police.token)
        assert status == 404 and body["detail"] == "no campaign 99999999999999999999"
