"""The hub's HTTP API (aiohttp): CAP ingest, reading alerts back, health and metrics.

Handlers translate between HTTP and the services: no CAP rule and no SQL lives here.
Errors a caller can cause are answered, never raised: a CAP Error for ``POST /cap``, a JSON
problem elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from hub.api import campaigns, feeds, groups, ledger, subscriptions, templates
from hub.api.common import HUB, caller_of, problem
from hub.api.metrics import CONTENT_TYPE_LATEST
from hub.api.openapi import spec
from hub.cap.ack import build_error
from hub.cap.problems import Code, Problem, error
from hub.cap.serialize import to_json, to_xml
from hub.domain import StoredAlert
from hub.services.ingest import Outcome
from hub.wiring import Hub

CAP_TYPES = frozenset({"application/cap+xml", "application/xml", "text/xml"})
CAP_CONTENT_TYPE = "application/cap+xml"
MAX_PAGE = 500


def create_app(hub: Hub) -> web.Application:
    # The body limit is ours to enforce (with a CAP Error), so aiohttp's own is set above it.
    app = web.Application(client_max_size=hub.settings.cap.max_bytes + 1024 * 1024)
    app[HUB] = hub
    app.router.add_post("/cap", post_cap)
    app.router.add_get("/alerts", list_alerts)
    # The URL the feeds link (first: "/alerts/{id}" would take "7.cap" as an id).
    app.router.add_get("/alerts/{id}.cap", get_alert)
    app.router.add_get("/alerts/{id}", get_alert)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    groups.add_routes(app)
    campaigns.add_routes(app)
    feeds.add_routes(app)
    subscriptions.add_routes(app)
    templates.add_routes(app)
    ledger.add_routes(app)
    return app


# --- POST /cap ------------------------------------------------------------------------------


async def post_cap(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    return _answer(request, await _counted(hub, _post_cap(request, hub)))


async def _counted(hub: Hub, posting: Awaitable[Outcome]) -> Outcome:
    """``posting`` awaited and counted in the ingest metrics (POST /cap and a template's send)."""
    started = time.perf_counter()
    hub.metrics.received.inc()
    try:
        outcome = await posting
    finally:
        hub.metrics.latency.observe(time.perf_counter() - started)
    if outcome.status < 300:
        hub.metrics.accepted.labels(outcome.reason).inc()
    else:
        hub.metrics.refused.labels(outcome.reason).inc()
    return outcome


async def _post_cap(request: web.Request, hub: Hub) -> Outcome:
    media = request.content_type
    if media not in CAP_TYPES:
        return await _early(hub, 415, "media-type", error(
            "/", "media-type", f"content type {media!r} is not CAP: send application/cap+xml"))
    caller = await caller_of(request)
    if caller is None:
        hub.audit_soon("anonymous", "cap.post", "-", "refused:unauthenticated")
        return await _early(hub, 401, "unauthenticated", error(
            "/", "unauthenticated", "a valid bearer token is required (Authorization: Bearer ...)"))
    limit = hub.settings.cap.max_bytes
    if request.content_length is not None and request.content_length > limit:
        return await _early(hub, 413, "too-large", _too_large(request.content_length, limit))
    try:
        async with asyncio.timeout(hub.settings.http.body_timeout):
            data = await request.content.read(limit + 1)
            while len(data) <= limit and not request.content.at_eof():
                chunk = await request.content.read(limit + 1 - len(data))
                if not chunk:
                    break
                data += chunk
    except TimeoutError:
        return await _early(hub, 408, "slow-body", error(
            "/", "slow-body", f"the body did not arrive within {hub.settings.http.body_timeout:g} s"))
    if len(data) > limit:
        return await _early(hub, 413, "too-large", _too_large(len(data), limit))
    outcome = await hub.ingest.post(data, caller)
    # Accounts by id: their names may be people's names, which the audit must not hold.
    hub.audit_soon(f"account:{caller.account.id}", "cap.post", _target(outcome),
                   "ok" if outcome.status < 300 else f"refused:{outcome.reason}",
                   json.dumps({"status": outcome.status,
                               "codes": sorted({str(p.code) for p in outcome.problems})}))
    return outcome


def _too_large(size: int, limit: int) -> Problem:
    return error("/", Code.XML_TOO_LARGE, f"the body is {size:,} bytes, over the limit of {limit:,} bytes")


def _target(outcome: Outcome) -> str:
    refs = outcome.answer.references
    return refs or "-"


async def _early(hub: Hub, status: int, reason: str, problem: Problem) -> Outcome:
    answer = build_error(None, sender=hub.identity.sender, identifier=f"cap-hub-error-{time.time_ns()}",
                         sent=_now(), problems=[problem], summary="message refused")
    signed = await asyncio.get_running_loop().run_in_executor(
        hub.executor, hub.identity.sign, to_xml(answer))
    return Outcome(status, reason, answer, signed, (problem,))


def _wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "xml" not in accept.split("application/json")[0]


def _answer(request: web.Request, outcome: Outcome) -> web.Response:
    headers: dict[str, str] = {}
    if outcome.stored is not None:
        headers["Location"] = f"/alerts/{outcome.stored.id}"
    if outcome.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="cap-hub"'
    if _wants_json(request):
        body = {
            "status": "accepted" if outcome.status < 300 else "refused",
            "reason": outcome.reason,
            "alert": _alert_json(outcome.stored) if outcome.stored else None,
            "answer": to_json(outcome.answer),
            "problems": [p.to_json() for p in outcome.problems],
        }
        return web.json_response(body, status=outcome.status, headers=headers)
    return web.Response(body=outcome.answer_xml, status=outcome.status, headers=headers,
                        content_type=CAP_CONTENT_TYPE, charset="utf-8")


# --- reading back ---------------------------------------------------------------------------


def _public(alert: StoredAlert, hub: Hub) -> bool:
    """Readable without a token: Public and Actual, and not an exercise of a simulation
    entity (in a hub that is itself a simulation environment, everything is one)."""
    return alert.scope == "Public" and alert.status == "Actual" and (
        not alert.simulation or hub.settings.simulation.enabled)


async def get_alert(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    try:
        alert_id = int(request.match_info["id"])
    except ValueError:
        return problem(404, "not found", "alert ids are numbers")
    alert = await hub.store.alert(alert_id)
    if alert is None:
        return problem(404, "not found", f"no alert {alert_id}")
    if not _public(alert, hub):
        caller = await caller_of(request)
        if caller is None:
            return problem(401, "unauthenticated", "this alert is not public: a bearer token is required")
        if caller.entity.id != alert.entity_id:
            return problem(404, "not found", f"no alert {alert_id}")
    which = request.query.get("as", "signed")
    if which not in ("signed", "received"):
        return problem(400, "bad parameter", "as= takes 'signed' or 'received'")
    body = alert.received if which == "received" else await hub.ingest.countersign(alert)
    etag = f'"{alert.digest[:32]}-{which}"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(body=body, content_type=CAP_CONTENT_TYPE,
                        headers={"ETag": etag, "X-Alert-State": alert.state.value})


def _alert_json(alert: StoredAlert) -> dict[str, Any]:
    return {
        "id": alert.id, "sender": alert.sender, "identifier": alert.identifier, "sent": alert.sent,
        "status": alert.status, "msgType": alert.msg_type, "scope": alert.scope,
        "state": alert.state.value, "references": alert.references,
        "expires": alert.expires.isoformat() if alert.expires else None,
        "receivedAt": alert.received_at.isoformat(), "supersededBy": alert.superseded_by,
        "simulation": alert.simulation, "href": f"/alerts/{alert.id}",
    }


async def list_alerts(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    q = request.query
    try:
        limit = min(int(q.get("limit", "100")), MAX_PAGE)
        before = int(q["before"]) if "before" in q else None
        since = datetime.fromisoformat(q["since"]) if "since" in q else None
    except ValueError as exc:
        return problem(400, "bad parameter", f"limit and before are numbers, since a date-time: {exc}")
    if since is not None and since.tzinfo is None:
        return problem(400, "bad parameter", "since needs a time zone offset")
    caller = await caller_of(request)
    rows = await hub.store.list_alerts(status=q.get("status"), since=since, sender=q.get("sender"),
                                       public_only=caller is None, limit=limit, before_id=before)
    visible = [a for a in rows if _public(a, hub) or (caller is not None and a.entity_id == caller.entity.id)]
    body: dict[str, Any] = {"alerts": [_alert_json(a) for a in visible], "next": None}
    if len(rows) == limit and rows:
        nxt = request.rel_url.update_query({"before": str(rows[-1].id), "limit": str(limit)})
        body["next"] = str(nxt)
    return web.json_response(body)


# --- operations -----------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    store_ok, broker_ok = await hub.store.healthy(), await hub.broker.healthy()
    body = {"store": "ok" if store_ok else "down", "broker": "ok" if broker_ok else "down"}
    return web.json_response(body, status=200 if store_ok and broker_ok else 503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[HUB].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(spec())


def _now() -> datetime:
    return datetime.now(UTC)

