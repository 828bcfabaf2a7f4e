"""``GET /campaigns/{id}/report``: a campaign's report as JSON, CSV or a self-contained HTML
page, chosen by ``?format=json|csv|html`` or else by ``Accept`` (JSON by default).

The report is made from the deliveries when asked for: the one asked at the end of sending
is complete for what was sent, and later ones include every late outcome. The CSV has one
row per delivery, streamed a page at a time; it holds personal data (member, name, address)
only for an account allowed to see members (``may_see_personal_data``), and every export is
audited, without the data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from hub.api.common import HUB, caller_of, problem
from hub.campaigns import report as reports
from hub.campaigns.report_html import render
from hub.domain import Campaign
from hub.services import ledger
from hub.services.ingest import Caller
from hub.wiring import Hub

FORMATS = {"json": "application/json", "csv": "text/csv", "html": "text/html"}
CSV_PAGE = 5_000


def report_format(query: str | None, accept: str) -> str | None:
    """The format asked for: the query's, else the first of ``Accept`` we make; None for a
    query naming a format we do not make."""
    if query is not None:
        return query.lower() if query.lower() in FORMATS else None
    for item in accept.split(","):
        media = item.split(";")[0].strip().lower()
        for name, wanted in FORMATS.items():
            if media == wanted:
                return name
    return "json"


async def build_report(hub: Hub, campaign: Campaign) -> tuple[reports.Report, dict[str, Any]]:
    """The report's figures and the facts around them."""
    now = datetime.now(UTC)
    tallies = await hub.store.campaign_tally(campaign.id, since=now, detail=True)
    reasons = await hub.store.campaign_reasons(campaign.id)
    sent_at, ended_at = await hub.store.campaign_times(campaign.id)
    times = [at for t in tallies for at in (t.first_sent, t.last_update) if at is not None]
    bucket = reports.bucket_for(min(times, default=None), max(times, default=None))
    timeline = await hub.store.campaign_timeline(campaign.id, bucket_seconds=bucket)
    alert = await hub.store.alert(campaign.alert_id)
    meta = {
        "id": campaign.id, "alert": alert.identifier if alert else None, "alertId": campaign.alert_id,
        "state": campaign.state.value, "kind": campaign.kind.value, "simulation": campaign.simulation,
        "createdAt": campaign.created_at.isoformat(),
        "sentAt": sent_at.isoformat() if sent_at else None,
        "endedAt": ended_at.isoformat() if ended_at else None,
        "generatedAt": now.isoformat(),
        "plan": json.loads(campaign.plan),
    }
    entity = await hub.store.entity(campaign.entity_id) if campaign.entity_id is not None else None
    if entity is not None:
        # The money side, from the entity's ledger: what prepaid covered and any overdraft.
        meta["billing"] = await ledger.billing_of(hub.store, entity, hub.settings.ledger, campaign.id)
    return reports.build(tallies, reasons, timeline, bucket), meta


async def own_campaign(request: web.Request) -> tuple[Caller, Campaign] | web.Response:
    """The caller and the campaign of the path, or the 401/404 answer."""
    hub = request.app[HUB]
    caller = await caller_of(request)
    if caller is None:
        return problem(401, "unauthenticated", "a valid bearer token is required")
    try:
        campaign = await hub.store.campaign(int(request.match_info["id"]))
    except (ValueError, OverflowError):  # not a number, or none SQLite's INTEGER holds
        campaign = None
    if campaign is None or campaign.entity_id != caller.entity.id:
        return problem(404, "not found", f"no campaign {request.match_info['id']}")
    return caller, campaign


async def get_report(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    found = await own_campaign(request)
    if isinstance(found, web.Response):
        return found
    caller, campaign = found
    fmt = report_format(request.query.get("format"), request.headers.get("Accept", ""))
    if fmt is None:
        return problem(400, "unknown format",
                       f"format {request.query.get('format')!r} is not one of {', '.join(FORMATS)}")
    actor = f"account:{caller.account.id}"
    if fmt == "csv":
        return await _csv(request, hub, campaign, actor, reports.may_see_personal_data(caller.account))
    report, meta = await build_report(hub, campaign)
    hub.audit_soon(actor, "campaign.report", f"campaign:{campaign.id}", "ok", json.dumps({"format": fmt}))
    if fmt == "html":
        return web.Response(text=render(report, meta), content_type="text/html", charset="utf-8")
    return web.json_response({**meta, **reports.to_json(report)})


async def _csv(request: web.Request, hub: Hub, campaign: Campaign, actor: str,
               personal: bool) -> web.StreamResponse:
    response = web.StreamResponse(headers={
        "Content-Type": reports.CSV_MEDIA_TYPE,
        "Content-Disposition": f'attachment; filename="campaign-{campaign.id}.csv"'})
    await response.prepare(request)
    await response.write(reports.csv_header(personal).encode())
    after, rows = 0, 0
    while True:
        page = await hub.store.report_rows(campaign.id, after_id=after, limit=CSV_PAGE)
        if not page:
            break
        await response.write(reports.csv_lines(page, personal).encode())
        after, rows = page[-1].id, rows + len(page)
    await response.write_eof()
    hub.audit_soon(actor, "campaign.export", f"campaign:{campaign.id}", "ok",
                   json.dumps({"format": "csv", "rows": rows, "personal": personal}))
    return response
