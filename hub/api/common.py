"""What every route module shares: the hub in the app, the caller of a request, problems."""

from __future__ import annotations

from aiohttp import web

from hub.services.auth import authenticate, bearer
from hub.services.ingest import Caller
from hub.wiring import Hub

HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)


async def caller_of(request: web.Request) -> Caller | None:
    """The account and entity of the request's bearer token, or None."""
    return await authenticate(request.app[HUB].store, bearer(request.headers.get("Authorization")))


def problem(status: int, title: str, detail: str) -> web.Response:
    """An RFC 9457 problem document."""
    return web.json_response({"title": title, "status": status, "detail": detail}, status=status,
                             content_type="application/problem+json")
