"""HTTP POSTs to partners and WebSub hubs: one aiohttp session, bounded time, bounded reads.

Every failure the network or the peer can cause (refused, reset, DNS, TLS, timeout) becomes a
:class:`PostError` naming it; an answer of any status is returned, not raised: what counts as
delivered is the caller's rule. Redirects are not followed (a partner's callback answers
itself; following would resend signed content to a URL nobody registered). Unless
``allow_private``, a POST goes only to public addresses: a literal IP address is checked before
the request, and a host name's addresses as it is resolved for the connection (so a name that
resolved to a public address at registration cannot later lead inside: DNS rebinding).
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from hub.errors import HubError
from hub.partners import address_refusal

MAX_ANSWER = 64 * 1024  # bytes of an answer read (and dropped) so the connection can be reused


class PostError(HubError):
    """The POST got no HTTP answer; the message says why (never the body or a secret)."""


class PublicResolver(AbstractResolver):
    """The system's resolver, keeping only public addresses; none left is a connection
    error that says why."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [r for r in found if address_refusal(r["host"]) is None]
        if not public:
            reasons = "; ".join(sorted({address_refusal(r["host"]) or "" for r in found}))
            # the (errno, text) form: aiohttp shows an OSError's strerror in its own message
            raise OSError(errno.EACCES, f"{host} resolves to no public address ({reasons}); "
                          "[push] allow_private lets callbacks reach such addresses")
        return public

    async def close(self) -> None:
        await self._inner.close()


class HttpPoster:
    """``await post(url, body, headers)`` -> HTTP status. ``timeout`` bounds each POST from
    connecting to the end of the answer; ``limit`` the connections open at once;
    ``allow_private``: loopback and private addresses may be reached (see the module)."""

    def __init__(self, *, timeout: float, limit: int, allow_private: bool = False) -> None:
        self.timeout = timeout
        self._limit = max(1, limit)
        self._allow_private = allow_private
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limit, resolver=None if self._allow_private else PublicResolver())
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
        if not self._allow_private:
            why = address_refusal((urlsplit(url).hostname or "").strip("[]"))
            if why is not None:  # an address in the URL itself: aiohttp does not resolve it
                raise PostError(f"{why}; [push] allow_private lets callbacks reach such addresses")
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
