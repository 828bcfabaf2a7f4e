"""GET /entities/{id}/ledger against the running app: an entity's own ledger only, and a
prepaid balance that runs out mid-campaign (sending goes on; the overdraft is recorded)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.domain import EntityType
from hub.services import admin, ledger
from hub.services.admin import ADMIN
from hub.wiring import Hub
from tests.api.conftest import MakeSender, campaign_done
from tests.api.test_templates import police_with_group


async def get(client: TestClient, path: str, token: str | None) -> tuple[int, Any]:  # type: ignore[type-arg]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with client.get(path, headers=headers) as resp:
        return resp.status, json.loads(await resp.read())


async def test_own_ledger_only(hub: Hub, client: TestClient, make_sender: MakeSender) -> None:  # type: ignore[type-arg]
    police = await make_sender("police")
    commune = await make_sender("commune", type=EntityType.AREA)
    entity = await hub.store.entity_by_name("police")
    assert entity is not None
    await ledger.activate(hub.store, entity, hub.settings.ledger, actor=ADMIN)
    await ledger.buy(hub.store, entity, "250", actor=ADMIN, note="order 17")
    status, body = await get(client, f"/entities/{entity.id}/ledger", police.token)
    assert status == 200
    assert body["activation"]["feeEur"] == 200.0 and body["subscription"]["perYearEur"] == 788.88
    assert body["subscription"]["totalEur"] == 788.88 and body["invoicedEur"] == 988.88
    assert body["prepaid"]["balanceEur"] == 250.0 and body["prepaid"]["packages"][0]["note"] == "order 17"
    assert body["warnings"] == [] and "never stops" in body["policy"]
    # another entity's token: as if the entity did not exist
    status, body = await get(client, f"/entities/{entity.id}/ledger", commune.token)
    assert status == 404 and "prepaid" not in body
    assert (await get(client, f"/entities/{entity.id}/ledger", None))[0] == 401
    assert (await get(client, "/entities/nope/ledger", police.token))[0] == 404


async def test_balance_running_out_mid_campaign(hub: Hub, client: TestClient,  # type: ignore[type-arg]
                                                make_sender: MakeSender) -> None:
    """Two SMS of one part (0.11 EUR) on a 0.06 EUR balance: the whole campaign is sent, the
    0.05 EUR it could not cover is its overdraft, and the ledger warns."""
    police = await police_with_group(hub, make_sender)
    entity = await hub.store.entity_by_name("police")
    assert entity is not None
    await ledger.activate(hub.store, entity, hub.settings.ledger, actor=ADMIN)
    await ledger.buy(hub.store, entity, "0.06", actor=ADMIN)
    data, _ = police.alert(extra="", headline="Rook")
    data = data.replace(b"<area>", b"<parameter><valueName>channels</valueName><value>sms</value>"
                                   b"</parameter><area>")
    assert (await police.post(police.signed(data)))[0] == 201
    alert = (await hub.store.list_alerts(limit=1))[0]
    campaign = await campaign_done(hub, alert.id)
    states = await hub.store.delivery_states(campaign.id)
    assert sum(states.values()) == 2 and ("sms", "queued") not in states  # nothing held back
    status, body = await get(client, f"/entities/{entity.id}/ledger", police.token)
    line = body["usage"][0]
    assert line["campaign"] == campaign.id and line["costEur"] == pytest.approx(0.11)
    assert line["prepaidEur"] == pytest.approx(0.06) and line["overdraftEur"] == pytest.approx(0.05)
    assert body["prepaid"]["balanceEur"] == pytest.approx(-0.05)
    assert body["warnings"] == [f"overdrawn: 0.05 EUR used beyond the prepaid packages (campaigns "
                                f"{campaign.id} ran on credit); buy a package"]
    billing = await ledger.billing_of(hub.store, entity, hub.settings.ledger, campaign.id)
    assert billing is not None and billing["overdraftEur"] == pytest.approx(0.05)
    assert billing["policy"] == ledger.POLICY
    assert await ledger.billing_of(hub.store, entity, hub.settings.ledger, campaign.id + 1) is None
    # the campaign's report says so too, in JSON and on the HTML page
    status, report = await get(client, f"/campaigns/{campaign.id}/report", police.token)
    assert status == 200 and report["billing"]["overdraftEur"] == pytest.approx(0.05)
    assert report["billing"]["policy"] == ledger.POLICY
    page = await client.get(f"/campaigns/{campaign.id}/report?format=html",
                            headers={"Authorization": f"Bearer {police.token}"})
    html = await page.text()
    assert "overdraft (EUR)" in html and "0.050" in html


async def test_two_activations_at_once_leave_one_and_say_so(hub: Hub) -> None:
    entity, _ = await admin.add_entity(hub.store, "race", EntityType.GROUPS, ["race@example.be"])
    results = await asyncio.gather(*(ledger.activate(hub.store, entity, hub.settings.ledger, actor=ADMIN)
                                     for _ in range(2)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], ledger.LedgerError)
    assert str(errors[0]) == "entity 'race' is already activated"
    assert [e.kind for e in await hub.store.ledger_entries(entity.id)] == ["activation"]
