"""The partners' HTTP client against a real receiver on 127.0.0.1: unless allowed, a POST
never reaches a loopback or private address, whether the URL names it or a name resolves to
it; allowed (a closed network, these tests), it does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from hub.outputs.push_http import HttpPoster, PostError


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[int, list[bytes]]]:
    got: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        got.append(await request.read())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield port, got
    await runner.cleanup()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_post_does_not_reach_a_loopback_receiver(receiver: tuple[int, list[bytes]],
                                                         host: str) -> None:
    port, got = receiver
    poster = HttpPoster(timeout=5, limit=2)
    try:
        with pytest.raises(PostError, match="loopback address.*allow_private"):
            await poster.post(f"http://{host}:{port}/hook", b"<alert/>", {})
    finally:
        await poster.close()
    assert got == []


async def test_allowed_it_does(receiver: tuple[int, list[bytes]]) -> None:
    port, got = receiver
    poster = HttpPoster(timeout=5, limit=2, allow_private=True)
    try:
        assert await poster.post(f"http://localhost:{port}/hook", b"<alert/>", {}) == 204
        assert await poster.post(f"http://127.0.0.1:{port}/hook", b"<alert/>", {}) == 204
    finally:
        await poster.close()
    assert got == [b"<alert/>", b"<alert/>"]
