"""Reading back: alerts as CAP and as JSON, health, metrics, the OpenAPI document, restarts."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient

from hub.api.app import create_app
from hub.api.openapi import spec
from hub.wiring import Hub
from tests.api.conftest import MakeSender, settings_for


async def test_get_alert_public_private_and_as_received(client: TestClient, make_sender: MakeSender) -> None:  # type: ignore[type-arg]
    police = await make_sender("police")
    public, _ = police.alert()
    _, _, headers = await police.post(police.signed(public))
    href = headers["Location"]
    async with client.get(href) as resp:  # Public + Actual: no token needed
        assert resp.status == 200 and resp.content_type == "application/cap+xml"
        signed = await resp.read()
        etag = resp.headers["ETag"]
    assert b"SignatureValue" in signed and signed != police.signed(public)
    async with client.get(href, params={"as": "received"}) as resp:
        assert await resp.read() == police.signed(public)
    async with client.get(href, headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304
    private, _ = police.alert(scope="Restricted", extra="<restriction>police only</restriction>")
    _, _, headers = await police.post(police.signed(private))
    async with client.get(headers["Location"]) as resp:
        assert resp.status == 401
    async with client.get(headers["Location"], headers={"Authorization": f"Bearer {police.token}"}) as resp:
        assert resp.status == 200
    async with client.get("/alerts/99999") as resp:
        assert resp.status == 404


async def test_list_alerts_pages_and_filters(client: TestClient, make_sender: MakeSender) -> None:  # type: ignore[type-arg]
    police = await make_sender("police")
    for _ in range(5):
        await police.post(police.signed(police.alert()[0]))
    await police.post(police.signed(police.alert(status="Exercise")[0]))
    async with client.get("/alerts", params={"limit": "2"}) as resp:
        page = await resp.json()
    assert len(page["alerts"]) == 2 and page["next"]
    async with client.get(page["next"]) as resp:
        second = await resp.json()
    assert second["alerts"][0]["id"] < page["alerts"][-1]["id"]
    async with client.get("/alerts") as resp:  # anonymous: Public Actual only
        assert {a["status"] for a in (await resp.json())["alerts"]} == {"Actual"}
    async with client.get("/alerts", params={"status": "Exercise"},
                          headers={"Authorization": f"Bearer {police.token}"}) as resp:
        assert [a["status"] for a in (await resp.json())["alerts"]] == ["Exercise"]
    async with client.get("/alerts", params={"since": "yesterday"}) as resp:
        assert resp.status == 400


async def test_health_metrics_and_openapi(client: TestClient, make_sender: MakeSender) -> None:  # type: ignore[type-arg]
    police = await make_sender("police")
    await police.post(police.signed(police.alert()[0]))
    await police.post(b"junk")
    async with client.get("/health") as resp:
        assert resp.status == 200 and await resp.json() == {"store": "ok", "broker": "ok"}
    async with client.get("/metrics") as resp:
        text = await resp.text()
    assert 'caphub_alerts_accepted_total{reason="accepted"} 1.0' in text
    assert 'caphub_alerts_refused_total{reason="invalid"} 1.0' in text
    assert "caphub_ingest_seconds_bucket" in text
    async with client.get("/openapi.json") as resp:
        document = await resp.json()
    assert document == spec()


def test_openapi_describes_exactly_the_routes(hub: Hub) -> None:
    app = create_app(hub)
    served = {(r.method.lower(), r.resource.canonical) for r in app.router.routes()
              if r.method != "HEAD" and r.resource is not None}
    described = {(method, path) for path, ops in spec()["paths"].items() for method in ops}
    assert served == described


async def test_nothing_is_lost_across_a_restart(tmp_path: Path, aiohttp_client, keypairs) -> None:  # type: ignore[no-untyped-def]
    from hub.cap.sign import sign
    from hub.domain import EntityType, Role
    from hub.services import admin

    hub = await Hub.start(settings_for(tmp_path), tmp_path)
    await admin.add_entity(hub.store, "police", EntityType.GROUPS, ["police@example.be"],
                           certificates=[("test", keypairs["police"][1])])
    await admin.add_account(hub.store, "police", "acc", Role.COORDINATOR)
    token = await admin.new_account_token(hub.store, "acc")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/cap+xml"}
    from tests.api.conftest import Sender

    client = await aiohttp_client(create_app(hub))
    police = Sender("police", "police@example.be", token, *keypairs["police"], client)
    first = sign(police.alert()[0], *keypairs["police"])
    async with client.post("/cap", data=first, headers=headers) as resp:
        assert resp.status == 201
    await client.close()
    await hub.stop()

    again = await Hub.start(settings_for(tmp_path), tmp_path)
    assert again.identity.cert_pem == hub.identity.cert_pem  # the hub keeps its key
    client = await aiohttp_client(create_app(again))
    async with client.post("/cap", data=first, headers=headers) as resp:
        assert resp.status == 200  # the same message: remembered across the restart
    police.client = client
    second = sign(police.alert()[0], *keypairs["police"])
    async with client.post("/cap", data=second, headers=headers) as resp:
        assert resp.status == 201
    assert len(await again.store.list_alerts()) == 2
    await again.stop()
