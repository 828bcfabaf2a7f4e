"""Partner push subscriptions over REST: coordinators only, per entity, each bad field named."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.domain import Role
from hub.wiring import Hub
from tests.api.conftest import MakeSender, Sender

SECRET = "shared-secret-for-the-hmac"
GOOD = {"name": "RTBF", "url": "https://rtbf.example.be/cap", "secret": SECRET,
        "filters": {"lang": "fr", "severity": "Severe,Extreme"}}


def auth(sender: Sender) -> dict[str, str]:
    return {"Authorization": f"Bearer {sender.token}"}


async def call(client: TestClient, method: str, path: str, sender: Sender | None,  # type: ignore[type-arg]
               body: Any = None) -> tuple[int, Any]:
    headers = auth(sender) if sender else {}
    async with client.request(method, path, json=body, headers=headers) as resp:
        data = await resp.json() if resp.content_type.endswith("json") else None
        return resp.status, data


async def test_register_list_read_and_remove(hub: Hub, client: TestClient,  # type: ignore[type-arg]
                                             make_sender: MakeSender) -> None:
    police = await make_sender("police")
    status, made = await call(client, "POST", "/subscriptions", police, GOOD)
    assert status == 201, made
    assert made["name"] == "RTBF" and "secret" not in made and SECRET not in str(made)
    assert "lang=fr" in made["filters"]
    status, listed = await call(client, "GET", "/subscriptions", police)
    assert status == 200 and [s["id"] for s in listed["subscriptions"]] == [made["id"]]
    assert listed["subscriptions"][0]["deliveries"] == {"delivered": 0, "pending": 0, "failed": 0}
    status, one = await call(client, "GET", f"/subscriptions/{made['id']}", police)
    assert status == 200 and one["url"] == GOOD["url"]
    stored = await hub.store.subscription(made["id"])
    assert stored is not None and stored.secret == SECRET and stored.entity_id is not None
    assert (await call(client, "DELETE", f"/subscriptions/{made['id']}", police))[0] == 204
    assert (await call(client, "GET", f"/subscriptions/{made['id']}", police))[0] == 404
    await hub.audits_written()
    actions = [e.action for e in await hub.store.audit_entries()]
    assert "subscription.add" in actions and "subscription.remove" in actions


async def test_another_entitys_subscriptions_do_not_exist(client: TestClient,  # type: ignore[type-arg]
                                                          make_sender: MakeSender) -> None:
    police, commune = await make_sender("police"), await make_sender("commune")
    _, made = await call(client, "POST", "/subscriptions", police, GOOD)
    assert (await call(client, "GET", f"/subscriptions/{made['id']}", commune))[0] == 404
    assert (await call(client, "DELETE", f"/subscriptions/{made['id']}", commune))[0] == 404
    assert (await call(client, "GET", "/subscriptions", commune))[1] == {"subscriptions": []}


async def test_a_token_and_the_coordinator_role_are_needed(client: TestClient,  # type: ignore[type-arg]
                                                           make_sender: MakeSender) -> None:
    assert (await call(client, "GET", "/subscriptions", None))[0] == 401
    mandated = await make_sender("police", role=Role.MANDATED)
    status, problem = await call(client, "POST", "/subscriptions", mandated, GOOD)
    assert status == 403 and "coordinators" in problem["detail"]


@pytest.mark.parametrize(("change", "field"), [
    ({"url": "gopher://x.example.be/"}, "url"),
    ({"url": 42}, "url"),
    ({"secret": "short"}, "secret"),
    ({"name": ""}, "name"),
    ({"filters": {"severity": "Awful"}}, "severity"),
    ({"filters": {"bbox": "1,2,3"}}, "bbox"),
    ({"filters": {"colour": "red"}}, "colour"),
    ({"filters": ["lang"]}, "filters"),
])
async def test_each_bad_field_is_422_naming_it(client: TestClient, make_sender: MakeSender,  # type: ignore[type-arg]
                                               change: dict[str, Any], field: str) -> None:
    police = await make_sender("police")
    status, problem = await call(client, "POST", "/subscriptions", police, {**GOOD, **change})
    assert status == 422
    assert problem["detail"].startswith(f"{field}: ")


async def test_not_json_and_a_taken_name(client: TestClient, make_sender: MakeSender) -> None:  # type: ignore[type-arg]
    police = await make_sender("police")
    async with client.post("/subscriptions", data=b"{nope", headers=auth(police)) as resp:
        assert resp.status == 422 and (await resp.json())["detail"].startswith("body: ")
    assert (await call(client, "POST", "/subscriptions", police, GOOD))[0] == 201
    status, problem = await call(client, "POST", "/subscriptions", police, GOOD)
    assert status == 409 and "RTBF" in problem["detail"]


@pytest.mark.parametrize("key", ["%C2%B2", "99999999999999999999"])
async def test_an_id_that_is_no_stored_id_is_404(client: TestClient, make_sender: MakeSender,  # type: ignore[type-arg]
                                                 key: str) -> None:
    police = await make_sender("police")
    assert (await call(client, "GET", f"/subscriptions/{key}", police))[0] == 404
    assert (await call(client, "DELETE", f"/subscriptions/{key}", police))[0] == 404
