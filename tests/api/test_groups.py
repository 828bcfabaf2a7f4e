"""Groups and members over the REST API: CRUD, import/export, and that no route shows one
entity's groups or members to another."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from hub.domain import EntityType, Role
from hub.services.members import ADMIN
from hub.wiring import Hub
from tests.api.conftest import MakeSender, Sender

TERRITORY = {"type": "Polygon", "coordinates": [
    [[4.34, 50.84], [4.37, 50.84], [4.37, 50.86], [4.34, 50.86], [4.34, 50.84]]]}
CSV = (b"naam;gsm;e-mail;taal\n"
       b"An Peeters;0477 12 34 56;an@example.be;nl\n"
       b"Luc Dubois;+32 478/12.34.56;luc@example.be;fr\n")


async def call(sender: Sender, method: str, path: str, body: Any = None, *, data: bytes | None = None,
               token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token or sender.token}"}
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    if data is not None:
        kwargs["data"] = data
        headers["Content-Type"] = "text/csv"
    async with sender.client.request(method, path, **kwargs) as resp:
        raw = await resp.read()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw


async def with_group(make_sender: MakeSender, gid: str = "plp-a", **kw: Any) -> Sender:
    police = await make_sender("police", **kw)
    status, group = await call(police, "POST", "/groups", {"id": gid, "name": "PLP Centrum",
                                                           "territory": TERRITORY, "languages": ["nl", "fr"]})
    assert status == 201, group
    return police


async def test_group_crud(make_sender: MakeSender) -> None:
    police = await with_group(make_sender)
    status, groups = await call(police, "GET", "/groups")
    assert status == 200 and [g["id"] for g in groups["groups"]] == ["plp-a"]
    status, group = await call(police, "PATCH", "/groups/plp-a", {"name": "PLP Centrum-Noord"})
    assert status == 200 and group["name"] == "PLP Centrum-Noord"
    assert group["territory"] == TERRITORY
    status, _ = await call(police, "POST", "/groups", {"id": "plp-a", "name": "again"})
    assert status == 409
    status, problem = await call(police, "POST", "/groups", {"id": "bad id", "name": "x"})
    assert status == 422 and "one word" in problem["detail"]
    point = {"type": "Point", "coordinates": [4, 50]}
    status, problem = await call(police, "POST", "/groups", {"id": "plp-z", "name": "x", "territory": point})
    assert status == 422 and "territory" in problem["detail"]


async def test_member_crud_search_and_erase(hub: Hub, make_sender: MakeSender) -> None:
    police = await with_group(make_sender)
    status, member = await call(police, "POST", "/groups/plp-a/members", {
        "name": "An Peeters", "language": "nl", "phones": ["0477 12 34 56"], "emails": ["An@Example.BE"]})
    assert status == 201, member
    assert member["phones"] == [{"number": "+32477123456", "kind": "mobile"}]
    assert member["emails"] == ["An@example.be"] and member["groups"] == ["plp-a"]
    status, problem = await call(police, "POST", "/groups/plp-a/members", {
        "name": "X", "language": "xx", "phones": ["12"], "emails": ["nodomain"]})
    assert status == 422 and "phones[0]" in problem["detail"] and "language" in problem["detail"]
    status, page = await call(police, "GET", "/groups/plp-a/members?search=peeters")
    assert status == 200 and [m["id"] for m in page["members"]] == [member["id"]]
    status, changed = await call(police, "PUT", f"/members/{member['id']}", {
        "name": "An Peeters", "language": "fr", "phones": ["0477 12 34 56"]})
    assert status == 200 and changed["language"] == "fr" and changed["emails"] == []
    assert (await call(police, "DELETE", f"/members/{member['id']}"))[0] == 204
    assert (await call(police, "GET", f"/members/{member['id']}"))[0] == 404
    await hub.audits_written()
    actions = [e.action for e in await hub.store.audit_entries(limit=50)]
    assert "member.erase" in actions


async def test_import_dry_run_strict_and_export(hub: Hub, make_sender: MakeSender) -> None:
    police = await with_group(make_sender)
    status, report = await call(police, "POST", "/groups/plp-a/members:import?dry_run=1", data=CSV)
    assert status == 200 and report["applied"] is False and report["counts"]["create"] == 2
    bad = CSV + b"Jan;0123;jan@;xx\n"
    status, report = await call(police, "POST", "/groups/plp-a/members:import?strict=1", data=bad)
    assert status == 200 and report["applied"] is False
    assert [r["row"] for r in report["rows"] if r["action"] == "refuse"] == [4]
    status, page = await call(police, "GET", "/groups/plp-a/members")
    assert page["members"] == []
    status, report = await call(police, "POST", "/groups/plp-a/members:import", data=bad)
    assert status == 200 and report["applied"] is True and report["counts"]["create"] == 2
    status, report = await call(police, "POST", "/groups/plp-a/members:import", data=b"\x00\x01binary")
    assert status == 422 and report["fileErrors"]
    async with police.client.get("/groups/plp-a/members:export",
                                 headers={"Authorization": f"Bearer {police.token}"}) as resp:
        assert resp.status == 200 and resp.content_type == "text/csv"
        exported = await resp.read()
    assert b"Peeters" in exported and b"Dubois" in exported
    await hub.audits_written()
    entries = await hub.store.audit_entries(limit=50)
    export = [e for e in entries if e.action == "members.export"]
    assert export and json.loads(export[0].detail)["rows"] == 2
    assert all("Peeters" not in e.detail and "0477" not in e.detail for e in entries)


async def test_grants_limit_what_an_account_sees_and_changes(hub: Hub, make_sender: MakeSender) -> None:
    police = await with_group(make_sender)
    await call(police, "POST", "/groups", {"id": "plp-b", "name": "PLP Zuid"})
    from hub.services import admin

    await admin.add_account(hub.store, "police", "agent", Role.MANDATED, ["groups=plp-a"])
    agent = await admin.new_account_token(hub.store, "agent")
    status, groups = await call(police, "GET", "/groups", token=agent)
    assert [g["id"] for g in groups["groups"]] == ["plp-a"]
    assert (await call(police, "GET", "/groups/plp-b", token=agent))[0] == 404
    status, _ = await call(police, "POST", "/groups/plp-a/members", {"name": "A", "emails": ["a@b.be"]},
                           token=agent)
    assert status == 403  # a mandated person does not manage members unless granted
    assert (await call(police, "POST", "/groups", {"id": "plp-c", "name": "C"}, token=agent))[0] == 403


async def test_a_foreign_token_sees_nothing_on_any_route(client: TestClient, make_sender: MakeSender) -> None:  # type: ignore[type-arg]
    police = await with_group(make_sender)
    status, member = await call(police, "POST", "/groups/plp-a/members", {
        "name": "An Peeters", "language": "nl", "phones": ["0477 12 34 56"]})
    commune = await make_sender("commune", type=EntityType.AREA)
    mid = member["id"]
    routes = [
        ("GET", "/groups/plp-a", None, None), ("PATCH", "/groups/plp-a", {"name": "x"}, None),
        ("DELETE", "/groups/plp-a", None, None),
        ("GET", "/groups/plp-a/members", None, None),
        ("POST", "/groups/plp-a/members", {"name": "B", "emails": ["b@c.be"]}, None),
        ("POST", "/groups/plp-a/members:import", None, CSV),
        ("GET", "/groups/plp-a/members:export", None, None),
        ("DELETE", f"/groups/plp-a/members/{mid}", None, None),
        ("GET", f"/members/{mid}", None, None),
        ("PUT", f"/members/{mid}", {"name": "B", "emails": ["b@c.be"]}, None),
        ("DELETE", f"/members/{mid}", None, None),
    ]
    served = {(r.method, r.resource.canonical) for r in client.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith(("/groups", "/members"))
              and r.method != "HEAD"}
    walked = {(m, p.replace("plp-a", "{gid}").replace(str(mid), "{id}")) for m, p, _, _ in routes}
    assert served - walked == {("GET", "/groups"), ("POST", "/groups")}  # those act on one's own entity
    for method, path, body, data in routes:
        status, answer = await call(commune, method, path, body, data=data)
        assert status == 404, (method, path, status)
        assert "Peeters" not in json.dumps(answer, default=str)
    status, groups = await call(commune, "GET", "/groups")
    assert groups == {"groups": []}
    assert (await call(police, "GET", f"/members/{mid}"))[0] == 200  # nothing was changed
    for method, path, _, _ in routes:
        async with police.client.request(method, path) as resp:
            assert resp.status == 401


async def test_deleting_a_group_deletes_members_in_no_other_group(hub: Hub, make_sender: MakeSender) -> None:
    police = await with_group(make_sender)
    await call(police, "POST", "/groups", {"id": "plp-b", "name": "PLP Zuid"})
    _, only_a = await call(police, "POST", "/groups/plp-a/members", {"name": "A", "emails": ["a@x.be"]})
    _, both = await call(police, "POST", "/groups/plp-a/members", {"name": "B", "emails": ["b@x.be"]})
    await hub.members.import_csv(ADMIN, "plp-b", b"name;email\nB;b@x.be\n")
    assert (await call(police, "DELETE", "/groups/plp-a"))[0] == 204
    assert (await call(police, "GET", "/groups/plp-a"))[0] == 404
    assert (await call(police, "GET", f"/members/{only_a['id']}"))[0] == 404
    status, member = await call(police, "GET", f"/members/{both['id']}")
    assert status == 200 and member["groups"] == ["plp-b"]
