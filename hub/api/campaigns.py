"""Campaigns over REST: what each accepted alert owes and how far it got.

``GET /campaigns?alert=IDENTIFIER`` and ``GET /campaigns/{id}`` answer
``{"id", "alert", "state", "counts": {"sms": {"queued": n, ...}, ...}, "cost_eur", ...}``:
the shape interoperability harnesses read. An account sees its own entity's campaigns only.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from hub.api.common import HUB, caller_of, problem
from hub.domain import Campaign, StoredAlert
from hub.wiring import Hub

MAX_PAGE = 100


def add_routes(app: web.Application) -> None:
    app.router.add_get("/campaigns", list_campaigns)
    app.router.add_get("/campaigns/{id}", get_campaign)


async def campaign_json(hub: Hub, campaign: Campaign, alert: StoredAlert | None) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {}
    for (channel, state), n in (await hub.store.delivery_states(campaign.id)).items():
        counts.setdefault(channel, {})[state] = n
    return {
        "id": campaign.id,
        "alert": alert.identifier if alert else None,
        "alertId": campaign.alert_id,
        "alertHref": f"/alerts/{campaign.alert_id}",
        "state": campaign.state.value,
        "kind": campaign.kind.value,
        "simulation": campaign.simulation,
        "plan": json.loads(campaign.plan),
        "counts": counts,
        # Counted as the channels send: SMS per part, e-mail free.
        "cost_eur": await hub.store.campaign_cost(campaign.id),
        "createdAt": campaign.created_at.isoformat(),
        "href": f"/campaigns/{campaign.id}",
    }


async def list_campaigns(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    caller = await caller_of(request)
    if caller is None:
        return problem(401, "unauthenticated", "a valid bearer token is required")
    identifier = request.query.get("alert")
    out = []
    if identifier is not None:
        alerts = await hub.store.list_alerts(identifier=identifier, limit=MAX_PAGE)
        for alert in alerts:
            if alert.entity_id != caller.entity.id:
                continue
            campaign = await hub.store.campaign_for_alert(alert.id)
            if campaign is not None:
                out.append(await campaign_json(hub, campaign, alert))
    else:
        for campaign in await hub.store.campaigns(entity_id=caller.entity.id, limit=MAX_PAGE):
            out.append(await campaign_json(hub, campaign, await hub.store.alert(campaign.alert_id)))
    return web.json_response({"campaigns": out})


async def get_campaign(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    caller = await caller_of(request)
    if caller is None:
        return problem(401, "unauthenticated", "a valid bearer token is required")
    try:
        campaign = await hub.store.campaign(int(request.match_info["id"]))
    except ValueError:
        campaign = None
    if campaign is None or campaign.entity_id != caller.entity.id:
        return problem(404, "not found", f"no campaign {request.match_info['id']}")
    return web.json_response(await campaign_json(hub, campaign, await hub.store.alert(campaign.alert_id)))
