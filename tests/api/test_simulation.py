"""The simulation environment as partners and coordinators see it: feeds and campaign JSON
mark it, and an Actual alert of a simulation entity never shows in the public feeds."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp.test_utils import TestClient

from hub.api.app import create_app
from hub.config import SimulationSettings
from hub.domain import EntityType, Role
from hub.services import admin
from hub.wiring import Hub
from tests.api.conftest import MakeSender, Sender, settings_for


async def feed(client: TestClient, path: str) -> str:  # type: ignore[type-arg]
    async with client.get(path) as resp:
        assert resp.status == 200
        return await resp.text()


async def simulation_sender(hub: Hub, client: TestClient,  # type: ignore[type-arg]
                            keypairs: dict[str, tuple[bytes, bytes]]) -> Sender:
    key_pem, cert_pem = keypairs["stranger"]
    await admin.add_entity(hub.store, "oefen", EntityType.GROUPS, ["oefen@example.be"],
                           certificates=[("t", cert_pem)], simulation=True)
    await admin.add_account(hub.store, "oefen", "oefen-account", Role.COORDINATOR)
    token = await admin.new_account_token(hub.store, "oefen-account")
    return Sender("oefen", "oefen@example.be", token, key_pem, cert_pem, client)


async def test_feeds_keep_a_simulation_entitys_alerts_out_of_the_public_feed(
        hub: Hub, client: TestClient, make_sender: MakeSender,  # type: ignore[type-arg]
        keypairs: dict[str, tuple[bytes, bytes]]) -> None:
    police = await make_sender("police")
    oefen = await simulation_sender(hub, client, keypairs)
    assert (await police.post(police.signed(police.alert(headline="Echte brand")[0])))[0] == 201
    assert (await oefen.post(oefen.signed(oefen.alert(headline="Oefenbrand")[0])))[0] == 201
    public = await feed(client, "/feeds/alerts.atom")
    assert "Echte brand" in public and "Oefenbrand" not in public
    assert "Oefenbrand" not in await feed(client, "/feeds/alerts.rss")
    test = await feed(client, "/feeds/test.atom")
    assert "<title>[SIMULATION] Oefenbrand</title>" in test and "Echte brand" not in test
    # nor is it public on the REST API: its entity reads it, nobody else without a token
    async with client.get("/alerts") as resp:
        assert [a["sender"] for a in (await resp.json())["alerts"]] == ["police@example.be"]
    async with client.get("/alerts", headers={"Authorization": f"Bearer {oefen.token}"}) as resp:
        mine = [a for a in (await resp.json())["alerts"] if a["sender"] == "oefen@example.be"]
    assert len(mine) == 1 and mine[0]["simulation"] is True
    async with client.get(mine[0]["href"]) as resp:
        assert resp.status == 401
    # its campaign is a simulation, and says so
    for _ in range(100):
        async with client.get("/campaigns", headers={"Authorization": f"Bearer {oefen.token}"}) as resp:
            campaigns = (await resp.json())["campaigns"]
        if campaigns:
            break
        await asyncio.sleep(0.02)
    assert campaigns and campaigns[0]["simulation"] is True


async def test_an_entity_taken_live_keeps_its_exercise_alerts_out_of_the_public_feed(
        hub: Hub, client: TestClient, keypairs: dict[str, tuple[bytes, bytes]]) -> None:  # type: ignore[type-arg]
    oefen = await simulation_sender(hub, client, keypairs)
    assert (await oefen.post(oefen.signed(oefen.alert(headline="Oefenbrand")[0])))[0] == 201
    assert "Oefenbrand" in await feed(client, "/feeds/test.atom")
    entity, changed = await admin.set_simulation(hub.store, "oefen", False)
    assert changed and not entity.simulation
    assert (await oefen.post(oefen.signed(oefen.alert(headline="Echte brand")[0])))[0] == 201
    public, test = await feed(client, "/feeds/alerts.atom"), await feed(client, "/feeds/test.atom")
    assert "Echte brand" in public and "Oefenbrand" not in public  # the exercise stays one
    assert "<title>[SIMULATION] Oefenbrand</title>" in test and "Echte brand" not in test
    by_alert: dict[str, bool] = {}
    for _ in range(100):
        async with client.get("/campaigns", headers={"Authorization": f"Bearer {oefen.token}"}) as resp:
            by_alert = {c["alert"]: c["simulation"] for c in (await resp.json())["campaigns"]}
        if len(by_alert) == 2:
            break
        await asyncio.sleep(0.02)
    assert sorted(by_alert.values()) == [False, True]


async def test_a_hub_in_simulation_marks_every_feed(
        tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient]],  # type: ignore[type-arg]
        keypairs: dict[str, tuple[bytes, bytes]]) -> None:
    settings = dataclasses.replace(settings_for(tmp_path), simulation=SimulationSettings(enabled=True))
    hub = await Hub.start(settings, tmp_path)
    try:
        client = await aiohttp_client(create_app(hub))
        key_pem, cert_pem = keypairs["police"]
        await admin.add_entity(hub.store, "police", EntityType.GROUPS, ["police@example.be"],
                               certificates=[("t", cert_pem)])
        await admin.add_account(hub.store, "police", "acc", Role.COORDINATOR)
        police = Sender("police", "police@example.be", await admin.new_account_token(hub.store, "acc"),
                        key_pem, cert_pem, client)
        assert (await police.post(police.signed(police.alert(headline="Brand")[0])))[0] == 201
        public = await feed(client, "/feeds/alerts.atom")
        assert "<title>SIMULATION - cap-hub: active public alerts</title>" in public
        assert "<title>[SIMULATION] Brand</title>" in public
    finally:
        await hub.stop()
