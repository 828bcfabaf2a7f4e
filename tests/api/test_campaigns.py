"""GET /campaigns: what an accepted alert owes, in the shape harnesses read."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.domain import EntityType
from hub.services.members import ADMIN
from hub.wiring import Hub
from tests.api.conftest import MakeSender

TERRITORY = json.dumps({"type": "Polygon", "coordinates": [
    [[4.30, 50.80], [4.40, 50.80], [4.40, 50.90], [4.30, 50.90], [4.30, 50.80]]]})


async def get(client: TestClient, path: str, token: str | None) -> tuple[int, Any]:  # type: ignore[type-arg]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with client.get(path, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_campaign_of_an_alert(hub: Hub, client: TestClient, make_sender: MakeSender) -> None:  # type: ignore[type-arg]
    police = await make_sender("police")
    entity = await hub.store.entity_by_name("police")
    assert entity is not None
    await hub.members.add_group(ADMIN, entity, "plp-a", "PLP A", territory=TERRITORY)
    await hub.members.import_csv(ADMIN, "plp-a", b"naam;gsm;e-mail\nAn;0477 12 34 56;an@example.be\n")
    data, ref = police.alert()
    assert (await police.post(police.signed(data)))[0] == 201
    identifier = ref.split(",")[1]
    for _ in range(100):
        status, body = await get(client, f"/campaigns?alert={identifier}", police.token)
        if body["campaigns"] and body["campaigns"][0]["state"] == "done":  # sent by the simulators
            break
        await asyncio.sleep(0.02)
    campaign = body["campaigns"][0]
    assert {"id", "alert", "state", "counts", "cost_eur"} <= set(campaign)
    assert campaign["alert"] == identifier and campaign["state"] == "done"
    for channel in ("sms", "email"):
        assert set(campaign["counts"][channel]) <= {"delivered", "failed"}
        assert sum(campaign["counts"][channel].values()) == 1
    parts = round(campaign["cost_eur"] / 0.055)  # SMS per part, e-mail free
    assert parts >= 1 and campaign["cost_eur"] == pytest.approx(parts * 0.055)
    status, one = await get(client, f"/campaigns/{campaign['id']}", police.token)
    assert status == 200 and one["id"] == campaign["id"]
    commune = await make_sender("commune", type=EntityType.AREA)
    assert (await get(client, f"/campaigns/{campaign['id']}", commune.token))[0] == 404
    assert (await get(client, f"/campaigns?alert={identifier}", commune.token))[1] == {"campaigns": []}
    assert (await get(client, "/campaigns", None))[0] == 401
