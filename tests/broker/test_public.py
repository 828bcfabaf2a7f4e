"""The cap.public exchange's start against a peer that never speaks AMQP: it must fail with a
clear error, not hang the push stage's start."""

from __future__ import annotations

import asyncio
import time

import pytest

from hub.broker.public import PublicExchange
from hub.errors import BrokerError


async def test_a_silent_peer_fails_the_start_within_the_timeout() -> None:
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepted, and never a byte of AMQP

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    exchange = PublicExchange(f"amqp://guest:guest@127.0.0.1:{port}/", "cap.public", publish_timeout=0.5)
    start = time.monotonic()
    try:
        with pytest.raises(BrokerError, match="cap.public"):
            await exchange.start()
        assert time.monotonic() - start < 5
    finally:
        await exchange.close()
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
