"""Campaigns over REST: what each accepted alert owes, how far it got, what it would cost.

``GET /campaigns?alert=IDENTIFIER`` and ``GET /campaigns/{id}`` answer
``{"id", "alert", "state", "counts": {"sms": {"delivered": n, ...}, ...}, "cost_eur", ...}``
(the shape interoperability harnesses read) with the live progress beside it: counts per
channel and language, final and owed deliveries, the rate over the last 10 s, the estimated
time to completion, when sending ended and when the campaign did. ``GET
/campaigns/{id}/events`` streams the same object as Server-Sent Events (at most one update per
``[campaigns] progress_interval``), ending with the final state; ``GET
/campaigns/{id}/report`` is the report (:mod:`hub.api.campaign_report`); ``POST
/campaigns:preview`` plans a CAP message without sending it. An account sees its own
entity's campaigns only: another entity's get 404, as if the campaign did not exist.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from hub.api.campaign_report import get_report, own_campaign
from hub.api.common import HUB, caller_of, problem
from hub.campaigns.progress import ENDED_STATES, RATE_WINDOW, progress
from hub.cap import profiles
from hub.cap.parse import parse
from hub.domain import Campaign, StoredAlert
from hub.services.ingest import Caller
from hub.services.preview import PreviewRefused, preview_alert
from hub.services.templates import NoTemplate, TemplateError, Templates, build_cap, check_values
from hub.wiring import Hub

MAX_PAGE = 100
KEEP_ALIVE = 15.0  # seconds between SSE comments while nothing changes (proxies close idle streams)
CAP_TYPES = frozenset({"application/cap+xml", "application/xml", "text/xml"})
MAX_JSON = 256 * 1024  # a template preview's body
# The SSE streams open now: a stream whose client went away must leave this set (tested).
STREAMS: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("campaign_streams", set)
# The last progress read of each followed campaign: (when, JSON text, ended), shared by streams.
SNAPSHOTS: web.AppKey[dict[int, tuple[float, str, bool]]] = web.AppKey("campaign_snapshots", dict)
SNAPSHOT_KEPT = 60.0  # seconds a snapshot nobody asked for again is kept


def add_routes(app: web.Application) -> None:
    app[STREAMS] = set()
    app[SNAPSHOTS] = {}
    app.router.add_get("/campaigns", list_campaigns)
    app.router.add_post("/campaigns:preview", post_preview)
    app.router.add_get("/campaigns/{id}", get_campaign)
    app.router.add_get("/campaigns/{id}/events", campaign_events)
    app.router.add_get("/campaigns/{id}/report", get_report)


async def campaign_json(hub: Hub, campaign: Campaign, alert: StoredAlert | None) -> dict[str, Any]:
    now = datetime.now(UTC)
    tallies = await hub.store.campaign_tally(campaign.id, since=now - timedelta(seconds=RATE_WINDOW))
    sent_at, ended_at = await hub.store.campaign_times(campaign.id)
    p = progress(tallies)
    return {
        "id": campaign.id,
        "alert": alert.identifier if alert else None,
        "alertId": campaign.alert_id,
        "alertHref": f"/alerts/{campaign.alert_id}",
        "state": campaign.state.value,
        "kind": campaign.kind.value,
        "simulation": campaign.simulation,
        "plan": json.loads(campaign.plan),
        "counts": p.counts,
        # As the channels were priced: SMS per part, calls per started minute, e-mail free.
        "cost_eur": p.cost_eur,
        **p.to_json(campaign.state, sent_at=sent_at, ended_at=ended_at),
        "createdAt": campaign.created_at.isoformat(),
        "href": f"/campaigns/{campaign.id}",
        "eventsHref": f"/campaigns/{campaign.id}/events",
        "reportHref": f"/campaigns/{campaign.id}/report",
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
    found = await own_campaign(request)
    if isinstance(found, web.Response):
        return found
    _, campaign = found
    return web.json_response(await campaign_json(hub, campaign, await hub.store.alert(campaign.alert_id)))


async def campaign_events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: a ``progress`` event each time the campaign's JSON changes (at
    most one per ``progress_interval``), then an ``end`` event with the final state, and the
    stream closes. A client that goes away ends its stream at the next look (no task, no
    query is left behind); the campaign itself goes on."""
    hub = request.app[HUB]
    found = await own_campaign(request)
    if isinstance(found, web.Response):
        return found
    _, campaign = found
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    streams = request.app[STREAMS]
    task = asyncio.current_task()
    assert task is not None
    streams.add(task)
    try:
        await _stream(hub, request, response, campaign)
    except (ConnectionResetError, ConnectionError):
        pass  # the client went away: nothing more to tell it
    finally:
        streams.discard(task)
    return response


async def _stream(hub: Hub, request: web.Request, response: web.StreamResponse, campaign: Campaign) -> None:
    interval = max(0.05, hub.settings.campaigns.progress_interval)
    alert = await hub.store.alert(campaign.alert_id)
    last, quiet_since, number = "", time.monotonic(), 0
    while True:
        if request.transport is None or request.transport.is_closing():
            return
        snapshot = await _snapshot(hub, request.app, campaign.id, alert, interval)
        if snapshot is None:
            return
        text, ended = snapshot
        if ended:
            number += 1
            await response.write(f"id: {number}\nevent: end\ndata: {text}\n\n".encode())
            return
        if text != last:
            number += 1
            await response.write(f"id: {number}\nevent: progress\ndata: {text}\n\n".encode())
            last, quiet_since = text, time.monotonic()
        elif time.monotonic() - quiet_since > KEEP_ALIVE:
            await response.write(b": keep-alive\n\n")
            quiet_since = time.monotonic()
        await asyncio.sleep(interval)


async def _snapshot(hub: Hub, app: web.Application, campaign_id: int, alert: StoredAlert | None,
                    max_age: float) -> tuple[str, bool] | None:
    """The campaign's JSON text and whether it ended, read at most once per ``max_age``
    seconds whatever the number of streams following it (a read groups all its deliveries)."""
    snapshots = app[SNAPSHOTS]
    now = time.monotonic()
    cached = snapshots.get(campaign_id)
    if cached is not None and now - cached[0] < max_age:
        return cached[1], cached[2]
    current = await hub.store.campaign(campaign_id)
    if current is None:
        return None
    text = json.dumps(await campaign_json(hub, current, alert), separators=(",", ":"))
    ended = current.state in ENDED_STATES
    for old in [k for k, v in snapshots.items() if now - v[0] > SNAPSHOT_KEPT]:
        del snapshots[old]
    snapshots[campaign_id] = (time.monotonic(), text, ended)
    return text, ended


async def post_preview(request: web.Request) -> web.Response:
    """A CAP message planned as if it were posted, against the entity's groups and members
    now: nothing is stored or sent. The body is the CAP message (not signed: nothing is
    accepted), or ``{"template": NAME, "values": {...}}`` for the Alert a template send would
    build."""
    hub = request.app[HUB]
    caller = await caller_of(request)
    if caller is None:
        return problem(401, "unauthenticated", "a valid bearer token is required")
    if request.content_type == "application/json":
        try:
            data = await _template_cap(request, hub, caller)
        except NoTemplate as exc:
            return problem(404, "not found", str(exc))
        except TemplateError as exc:
            return problem(422, "invalid", str(exc))
    elif request.content_type in CAP_TYPES:
        data = await request.content.read(hub.settings.cap.max_bytes + 1)
        if len(data) > hub.settings.cap.max_bytes:
            return problem(413, "too large", f"the message is larger than {hub.settings.cap.max_bytes} bytes")
    else:
        return problem(415, "unsupported media type", f"content type {request.content_type!r} is not CAP: "
                       "send application/cap+xml, or a template and its values as application/json")
    name = caller.entity.profile or hub.settings.cap.profile
    result = parse(data, max_bytes=hub.settings.cap.max_bytes,
                   profile=profiles.get_profile(name) if name else None, now=datetime.now(UTC))
    if not result.ok or result.alert is None:
        return _refused(400, "not valid CAP 1.2", [p.to_json() for p in result.errors])
    try:
        found = await preview_alert(hub.store, result.alert, caller.account, caller.entity,
                                    settings=hub.settings, executor=hub.executor)
    except PreviewRefused as exc:
        return _refused(exc.status, "cannot preview", [p.to_json() for p in exc.problems])
    return web.json_response(found)


async def _template_cap(request: web.Request, hub: Hub, caller: Caller) -> bytes:
    """The unsigned CAP a send of the body's template with its values would build."""
    raw = await request.content.read(MAX_JSON + 1)
    if len(raw) > MAX_JSON:
        raise TemplateError(f"the body is over {MAX_JSON} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TemplateError(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("template"), str | int):
        raise TemplateError('the body must be {"template": NAME, "values": {...}}')
    values = body.get("values", {})
    if not isinstance(values, dict):
        raise TemplateError("values: a JSON object of placeholder values")
    template = await Templates(hub.store, hub.ingest, _no_signing).find(caller.entity, str(body["template"]))
    skeleton = json.loads(template.body)
    return build_cap(template, skeleton, check_values(skeleton, values), sender=caller.entity.senders[0],
                     now=datetime.now(UTC))


async def _no_signing(data: bytes) -> bytes:
    return data  # a preview is never posted


def _refused(status: int, title: str, problems: list[dict[str, Any]]) -> web.Response:
    detail = "; ".join(f"{p.get('path')}: {p.get('code')}: {p.get('message')}" for p in problems)
    return web.json_response({"title": title, "status": status, "detail": detail, "problems": problems},
                             status=status, content_type="application/problem+json")
