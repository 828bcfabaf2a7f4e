"""What every route module shares: the hub in the app, the caller of a request, problems."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

from aiohttp import web

from hub.services.auth import authenticate, bearer
from hub.services.ingest import Caller
from hub.wiring import Hub

HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)

# A refusal a service raises, and the problem it answers: (exception types, status, title).
Refusal = tuple[type[Exception] | tuple[type[Exception], ...], int, str]


async def caller_of(request: web.Request) -> Caller | None:
    """The account and entity of the request's bearer token, or None."""
    return await authenticate(request.app[HUB].store, bearer(request.headers.get("Authorization")))


def problem(status: int, title: str, detail: str) -> web.Response:
    """An RFC 9457 problem document."""
    return web.json_response({"title": title, "status": status, "detail": detail}, status=status,
                             content_type="application/problem+json")


async def refused_as_problems(answer: Awaitable[web.StreamResponse],
                              refusals: Sequence[Refusal]) -> web.StreamResponse:
    """``answer`` awaited; a refusal it raises becomes the problem of the first entry whose
    types match, with the refusal's text as the detail. Anything else propagates."""
    try:
        return await answer
    except Exception as exc:
        for types, status, title in refusals:
            if isinstance(exc, types):
                return problem(status, title, str(exc))
        raise
