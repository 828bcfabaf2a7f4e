"""REST routes for PLP groups and their members. Every route needs a token; what an account
may see and change is decided in ``hub.services.members``; another entity's groups and
members answer 404, as if they did not exist."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hub.api.common import HUB, Refusal, caller_of, problem, refused_as_problems
from hub.domain import Channel, Group, Language, Member, MemberData, Phone
from hub.members import parse_email, parse_phone
from hub.services.members import Actor, Forbidden, Invalid, NotVisible
from hub.store.base import Conflict

MAX_PAGE = 500
MAX_IMPORT_BYTES = 64 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/groups", _guard(list_groups))
    r.add_post("/groups", _guard(create_group))
    r.add_get("/groups/{gid}", _guard(get_group))
    r.add_patch("/groups/{gid}", _guard(update_group))
    r.add_delete("/groups/{gid}", _guard(delete_group))
    r.add_get("/groups/{gid}/members", _guard(list_members))
    r.add_post("/groups/{gid}/members", _guard(create_member))
    r.add_post("/groups/{gid}/members:import", _guard(import_members))
    r.add_get("/groups/{gid}/members:export", _guard(export_members))
    r.add_delete("/groups/{gid}/members/{id}", _guard(remove_member))
    r.add_get("/members/{id}", _guard(get_member))
    r.add_put("/members/{id}", _guard(replace_member))
    r.add_delete("/members/{id}", _guard(erase_member))


_REFUSALS: list[Refusal] = [(NotVisible, 404, "not found"), (Forbidden, 403, "forbidden"),
                            (Invalid, 422, "invalid"), (Conflict, 409, "conflict")]


def _guard(handler: Callable[[web.Request, Actor], Awaitable[web.StreamResponse]]) -> Handler:
    """Authenticate, then turn the service's refusals into HTTP answers."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        caller = await caller_of(request)
        if caller is None:
            return problem(401, "unauthenticated", "a valid bearer token is required")
        return await refused_as_problems(handler(request, Actor(caller.entity, caller.account)), _REFUSALS)

    return guarded


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Invalid(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    return body


def _int(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError as exc:
        raise NotVisible(f"no {name} {request.match_info[name]!r}") from exc


# --- groups -------------------------------------------------------------------------------


def group_json(group: Group) -> dict[str, Any]:
    return {
        "id": group.gid, "name": group.name, "kind": group.kind, "audience": list(group.audience),
        "territory": json.loads(group.territory) if group.territory else None,
        "languages": [lang.value for lang in group.languages],
        "channels": {kind.value: [c.value for c in chans] for kind, chans in group.channels},
        "href": f"/groups/{group.gid}",
    }


async def list_groups(request: web.Request, actor: Actor) -> web.Response:
    hub = request.app[HUB]
    return web.json_response({"groups": [group_json(g) for g in await hub.members.groups(actor)]})


async def create_group(request: web.Request, actor: Actor) -> web.Response:
    hub = request.app[HUB]
    body = await _json_body(request)
    assert actor.entity is not None
    try:
        group = await hub.members.add_group(
            actor, actor.entity, str(body["id"]), str(body["name"]), kind=str(body.get("kind", "residents")),
            audience=[str(a) for a in body.get("audience", [])],
            territory=json.dumps(body["territory"]) if body.get("territory") else None,
            languages=[Language(v) for v in body.get("languages", [])],
            channels=[Channel(v) for v in body.get("channels", [])])
    except KeyError as exc:
        raise Invalid(f"missing field {exc}") from exc
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    return web.json_response(group_json(group), status=201, headers={"Location": f"/groups/{group.gid}"})


async def get_group(request: web.Request, actor: Actor) -> web.Response:
    group = await request.app[HUB].members.group(actor, request.match_info["gid"])
    return web.json_response(group_json(group))


async def update_group(request: web.Request, actor: Actor) -> web.Response:
    body = await _json_body(request)
    try:
        group = await request.app[HUB].members.update_group(
            actor, request.match_info["gid"], name=body.get("name"),
            audience=body.get("audience"),
            territory=json.dumps(body["territory"]) if body.get("territory") else None,
            languages=[Language(v) for v in body["languages"]] if "languages" in body else None)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    return web.json_response(group_json(group))


async def delete_group(request: web.Request, actor: Actor) -> web.Response:
    await request.app[HUB].members.delete_group(actor, request.match_info["gid"])
    return web.Response(status=204)


# --- members ------------------------------------------------------------------------------


def member_json(member: Member) -> dict[str, Any]:
    d = member.data
    return {
        "id": member.id, "externalId": d.external_id, "name": d.name, "language": d.language.value,
        "phones": [{"number": p.number, "kind": p.kind.value} for p in d.phones],
        "emails": list(d.emails), "address": d.address,
        "location": {"lat": d.lat, "lon": d.lon} if d.lat is not None and d.lon is not None else None,
        "channels": [c.value for c in d.channels], "groups": list(member.groups),
        "href": f"/members/{member.id}",
    }


def member_data(body: dict[str, Any]) -> MemberData:
    """A member from a JSON body, checked field by field like an import row."""
    problems: list[str] = []
    phones: list[Phone] = []
    for n, text in enumerate(body.get("phones", [])):
        parsed = parse_phone(str(text["number"] if isinstance(text, dict) else text))
        (phones.append(parsed) if isinstance(parsed, Phone) else problems.append(f"phones[{n}]: {parsed}"))
    emails: list[str] = []
    for n, text in enumerate(body.get("emails", [])):
        address, reason = parse_email(str(text))
        (emails.append(address) if address else problems.append(f"emails[{n}]: {reason}"))
    name = str(body.get("name", "")).strip()
    if not name:
        problems.append("name: missing")
    try:
        language = Language(str(body.get("language", "nl")).lower())
    except ValueError:
        problems.append(f"language: {body.get('language')!r} is not one of nl, fr, de, en")
        language = Language.NL
    if not phones and not emails:
        problems.append("a member needs at least one phone number or e-mail address")
    location = body.get("location") or {}
    try:
        channels = tuple(Channel(c) for c in body.get("channels", []))
        lat = float(location["lat"]) if "lat" in location else None
        lon = float(location["lon"]) if "lon" in location else None
    except (ValueError, TypeError) as exc:
        problems.append(f"channels or location: {exc}")
        channels, lat, lon = (), None, None
    if problems:
        raise Invalid("; ".join(problems))
    external = body.get("externalId")
    return MemberData(name=name, language=language, phones=tuple(phones), emails=tuple(emails),
                      external_id=str(external) if external else None, address=body.get("address"),
                      lat=lat, lon=lon, channels=channels)


async def list_members(request: web.Request, actor: Actor) -> web.Response:
    q = request.query
    try:
        limit = min(int(q.get("limit", "100")), MAX_PAGE)
        after = int(q["after"]) if "after" in q else None
    except ValueError as exc:
        raise Invalid(f"limit and after are numbers: {exc}") from exc
    members = await request.app[HUB].members.members(actor, request.match_info["gid"], search=q.get("search"),
                                                     limit=limit, after_id=after)
    body: dict[str, Any] = {"members": [member_json(m) for m in members], "next": None}
    if len(members) == limit:
        body["next"] = str(request.rel_url.update_query({"after": str(members[-1].id), "limit": str(limit)}))
    return web.json_response(body)


async def create_member(request: web.Request, actor: Actor) -> web.Response:
    member = await request.app[HUB].members.add_member(actor, request.match_info["gid"],
                                                       member_data(await _json_body(request)))
    return web.json_response(member_json(member), status=201, headers={"Location": f"/members/{member.id}"})


async def get_member(request: web.Request, actor: Actor) -> web.Response:
    return web.json_response(member_json(await request.app[HUB].members.member(actor, _int(request, "id"))))


async def replace_member(request: web.Request, actor: Actor) -> web.Response:
    data = member_data(await _json_body(request))
    member = await request.app[HUB].members.update_member(actor, _int(request, "id"), data)
    return web.json_response(member_json(member))


async def remove_member(request: web.Request, actor: Actor) -> web.Response:
    await request.app[HUB].members.remove_member(actor, request.match_info["gid"], _int(request, "id"))
    return web.Response(status=204)


async def erase_member(request: web.Request, actor: Actor) -> web.Response:
    await request.app[HUB].members.erase_member(actor, _int(request, "id"))
    return web.Response(status=204)


async def import_members(request: web.Request, actor: Actor) -> web.Response:
    if request.content_length is not None and request.content_length > MAX_IMPORT_BYTES:
        raise Invalid(f"the file is over {MAX_IMPORT_BYTES // (1024 * 1024)} MB")
    data = await request.content.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise Invalid(f"the file is over {MAX_IMPORT_BYTES // (1024 * 1024)} MB")
    flag = {"1", "true", "yes"}
    outcome = await request.app[HUB].members.import_csv(
        actor, request.match_info["gid"], data, dry_run=request.query.get("dry_run", "").lower() in flag,
        strict=request.query.get("strict", "").lower() in flag)
    body = outcome.summary()
    body["rows"] = [
        {"row": r.row, "action": r.action.value, "reasons": list(r.reasons), "warnings": list(r.warnings),
         "member": r.member_id, "matchedOn": r.matched_on, "duplicateOf": r.duplicate_of}
        for r in (outcome.plan.report if outcome.plan else [])
    ]
    status = 200 if outcome.file.ok else 422
    return web.json_response(body, status=status)


async def export_members(request: web.Request, actor: Actor) -> web.Response:
    data, _ = await request.app[HUB].members.export_csv(actor, request.match_info["gid"])
    gid = request.match_info["gid"]
    return web.Response(body=data, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{gid}-members.csv"'})
