"""The per-entity ledger over REST: ``GET /entities/{id}/ledger``. An account sees its own
entity's ledger only; another entity's answers 404, as if it did not exist."""

from __future__ import annotations

from aiohttp import web

from hub.api.common import HUB, caller_of, problem
from hub.services.ledger import ledger_of


def add_routes(app: web.Application) -> None:
    app.router.add_get("/entities/{id}/ledger", get_ledger)


async def get_ledger(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    caller = await caller_of(request)
    if caller is None:
        return problem(401, "unauthenticated", "a valid bearer token is required")
    wanted = request.match_info["id"]
    if wanted != str(caller.entity.id):
        return problem(404, "not found", f"no entity {wanted}")
    found = await ledger_of(hub.store, caller.entity, hub.settings.ledger)
    hub.audit_soon(f"account:{caller.account.id}", "ledger.read", f"entity:{caller.entity.id}", "ok")
    return web.json_response(found.to_json())
