"""REST routes for partner push subscriptions: an entity's coordinators register the callback
URLs of the partners it serves (``hub.partners`` says what each receives and how it is
signed). Another entity's subscriptions answer 404, as if they did not exist."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from hub.api.common import HUB, Refusal, caller_of, problem, refused_as_problems
from hub.outputs.feed import FilterError
from hub.partners import FILTER_PARAMS, SubscriptionError, may_manage
from hub.services import subscriptions as subs
from hub.services.ingest import Caller
from hub.store.base import Conflict

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application) -> None:
    app.router.add_get("/subscriptions", _guard(list_subscriptions))
    app.router.add_post("/subscriptions", _guard(create_subscription))
    app.router.add_get("/subscriptions/{id}", _guard(get_subscription))
    app.router.add_delete("/subscriptions/{id}", _guard(delete_subscription))


_REFUSALS: list[Refusal] = [(subs.NoSuchSubscription, 404, "not found"),
                            ((SubscriptionError, FilterError), 422, "invalid"), (Conflict, 409, "conflict")]


def _guard(handler: Callable[[web.Request, Caller], Awaitable[web.StreamResponse]]) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        caller = await caller_of(request)
        if caller is None:
            return problem(401, "unauthenticated", "a valid bearer token is required")
        if not may_manage(caller.account):
            return problem(403, "forbidden", "only an entity's coordinators manage partner subscriptions")
        return await refused_as_problems(handler(request, caller), _REFUSALS)

    return guarded


def _id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # int() and SQLite's INTEGER refuse others
        raise subs.NoSuchSubscription(f"no subscription {text!r}")
    return int(text)


async def list_subscriptions(request: web.Request, caller: Caller) -> web.Response:
    store = request.app[HUB].store
    stats = await store.subscription_stats()
    found = await store.subscriptions(entity_id=caller.entity.id)
    return web.json_response({"subscriptions": [subs.to_json(s, stats.get(s.id)) for s in found]})


async def create_subscription(request: web.Request, caller: Caller) -> web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SubscriptionError("body", f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise SubscriptionError("body", "a JSON object")
    for key in ("name", "url", "secret"):
        if not isinstance(body.get(key), str):
            raise SubscriptionError(key, "required, a string")
    filters = body.get("filters", {})
    if not isinstance(filters, dict) or not all(isinstance(v, str) for v in filters.values()):
        raise SubscriptionError("filters", f"an object of strings ({', '.join(FILTER_PARAMS)})")
    hub = request.app[HUB]
    sub = await subs.add(hub.store, body["name"], body["url"], body["secret"], filters,
                         entity_id=caller.entity.id, actor=f"account:{caller.account.id}",
                         allow_private=hub.settings.push.allow_private)
    return web.json_response(subs.to_json(sub), status=201, headers={"Location": f"/subscriptions/{sub.id}"})


async def get_subscription(request: web.Request, caller: Caller) -> web.Response:
    store = request.app[HUB].store
    sub = await subs.find(store, _id(request), entity_id=caller.entity.id)
    return web.json_response(subs.to_json(sub, (await store.subscription_stats()).get(sub.id)))


async def delete_subscription(request: web.Request, caller: Caller) -> web.Response:
    await subs.remove(request.app[HUB].store, _id(request), entity_id=caller.entity.id,
                      actor=f"account:{caller.account.id}")
    return web.Response(status=204)
