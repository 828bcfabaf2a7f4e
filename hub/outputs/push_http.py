"""HTTP POSTs to partners and WebSub hubs: one aiohttp session, bounded time, bounded reads.

Every failure the network or the peer can cause (refused, reset, DNS, TLS, timeout) becomes a
:class:`PostError` naming it; an answer of any status is returned, not raised: what counts as
delivered is the caller's rule. Redirects are not followed (a partner's callback answers
itself; following would resend signed content to a URL nobody registered).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp

from hub.errors import HubError

MAX_ANSWER = 64 * 1024  # bytes of an answer read (and dropped) so the connection can be reused


class PostError(HubError):
    """The POST got no HTTP answer; the message says why (never the body or a secret)."""


class HttpPoster:
    """``await post(url, body, headers)`` -> HTTP status. ``timeout`` bounds each POST from
    connecting to the end of the answer; ``limit`` the connections open at once."""

    def __init__(self, *, timeout: float, limit: int) -> None:
        self.timeout = timeout
        self._limit = max(1, limit)
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._limit)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": "cap-hub"})

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        if self._session is None:
            await self.open()
        assert self._session is not None
        try:
            async with self._session.post(url, data=body, headers=dict(headers),
                                          allow_redirects=False) as resp:
                await resp.content.read(MAX_ANSWER)
                return resp.status
        except TimeoutError as exc:
            raise PostError(f"no answer within {self.timeout:g} s") from exc
        except aiohttp.ClientError as exc:
            raise PostError(f"{type(exc).__name__}: {exc}") from exc
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise PostError(f"{type(exc).__name__}: {exc}") from exc
