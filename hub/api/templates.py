"""Templates over REST: CRUD of an entity's ready scenarios and ``POST /templates/{id}:send``.

``{id}`` is the template's id or its name. Another entity's template answers 404, as if it
did not exist. A send answers exactly as ``POST /cap`` does (a signed CAP Ack or Error, or
the same as JSON with ``Accept: application/json``), except that values that do not fit the
template's placeholders are refused before any CAP exists, with a JSON problem (422).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hub.api.common import HUB, Refusal, caller_of, problem, refused_as_problems
from hub.rights import may_manage_templates
from hub.services.ingest import Caller
from hub.services.templates import NoTemplate, TemplateError, Templates, template_json
from hub.store.base import Conflict
from hub.wiring import Hub

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 256 * 1024


def add_routes(app: web.Application) -> None:
    r = app.router
    # :send before {id}: the path of one is also a match for the other's pattern
    r.add_post("/templates/{id}:send", _guard(send_template))
    r.add_get("/templates", _guard(list_templates))
    r.add_post("/templates", _guard(create_template, writes=True))
    r.add_get("/templates/{id}", _guard(get_template))
    r.add_put("/templates/{id}", _guard(replace_template, writes=True))
    r.add_delete("/templates/{id}", _guard(delete_template, writes=True))


def _service(hub: Hub) -> Templates:
    async def sign(data: bytes) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(hub.executor, hub.identity.sign, data)

    return Templates(hub.store, hub.ingest, sign)


_REFUSALS: list[Refusal] = [(NoTemplate, 404, "not found"), (TemplateError, 422, "invalid"),
                            (Conflict, 409, "conflict")]


def _guard(handler: Callable[[web.Request, Hub, Caller], Awaitable[web.StreamResponse]], *,
           writes: bool = False) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        caller = await caller_of(request)
        if caller is None:
            return problem(401, "unauthenticated", "a valid bearer token is required")
        if writes and not may_manage_templates(caller.account):
            return problem(403, "forbidden",
                           "only an entity's coordinators and co-coordinators write its templates")
        return await refused_as_problems(handler(request, request.app[HUB], caller), _REFUSALS)

    return guarded


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise TemplateError(f"the body is over {MAX_BODY} bytes")
    try:
        body = json.loads(await request.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TemplateError(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise TemplateError("the body must be a JSON object")
    return body


def _name_and_template(body: dict[str, Any]) -> tuple[str, Any]:
    name = body.get("name")
    if not isinstance(name, str):
        raise TemplateError("name: required, a string")
    if "template" not in body:
        raise TemplateError("template: required, the CAP skeleton as an object")
    return name, body["template"]


async def list_templates(request: web.Request, hub: Hub, caller: Caller) -> web.Response:
    found = await hub.store.templates(caller.entity.id)
    return web.json_response({"templates": [template_json(t) for t in found]})


async def create_template(request: web.Request, hub: Hub, caller: Caller) -> web.Response:
    name, body = _name_and_template(await _json_body(request))
    template = await _service(hub).add(caller.entity, name, body)
    hub.audit_soon(f"account:{caller.account.id}", "template.add", f"template:{template.id}", "ok")
    return web.json_response(template_json(template), status=201,
                             headers={"Location": f"/templates/{template.id}"})


async def get_template(request: web.Request, hub: Hub, caller: Caller) -> web.Response:
    template = await _service(hub).find(caller.entity, request.match_info["id"])
    return web.json_response(template_json(template))


async def replace_template(request: web.Request, hub: Hub, caller: Caller) -> web.Response:
    name, body = _name_and_template(await _json_body(request))
    template = await _service(hub).replace(caller.entity, request.match_info["id"], name, body)
    hub.audit_soon(f"account:{caller.account.id}", "template.replace", f"template:{template.id}", "ok")
    return web.json_response(template_json(template))


async def delete_template(request: web.Request, hub: Hub, caller: Caller) -> web.Response:
    key = request.match_info["id"]
    await _service(hub).remove(caller.entity, key)
    hub.audit_soon(f"account:{caller.account.id}", "template.remove", f"template:{key}", "ok")
    return web.Response(status=204)


async def send_template(request: web.Request, hub: Hub, caller: Caller) -> web.Response:
    # the very counting and answer of POST /cap (app imports this module)
    from hub.api.app import _answer, _counted

    body = await _json_body(request)
    values = body.get("values", {})
    if not isinstance(values, dict):
        raise TemplateError("values: an object of placeholder name: value")
    outcome = await _counted(hub, _service(hub).send(caller, request.match_info["id"], values))
    hub.audit_soon(f"account:{caller.account.id}", "template.send", f"template:{request.match_info['id']}",
                   "ok" if outcome.status < 300 else f"refused:{outcome.reason}",
                   json.dumps({"status": outcome.status,
                               "alert": outcome.stored.id if outcome.stored else None,
                               "codes": sorted({str(p.code) for p in outcome.problems})}))
    return _answer(request, outcome)
