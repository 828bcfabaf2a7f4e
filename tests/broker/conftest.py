"""Broker fixtures: the same contract suite runs on the embedded broker and on RabbitMQ.

RabbitMQ comes from ``CAPHUB_AMQP_URL`` (default ``amqp://guest:guest@127.0.0.1:5672/``).
Each test session gets a virtual host of its own (``caphub-test-<random>``, made and
removed with ``rabbitmqctl``), and each test a queue-name prefix of its own inside it, so
runs never collide. RabbitMQ unreachable: the AMQP tests are skipped, or fail when
``CAPHUB_REQUIRE_AMQP=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import pytest

from hub.broker.amqp import AmqpBroker
from hub.broker.base import Message
from hub.broker.memory import MemoryBroker
from hub.broker.topology import REASON_HEADER

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
# Quick reconnection, so the connection-loss tests stay short.
URL_OPTIONS = "reconnect_interval=0.2"


@dataclass(frozen=True)
class Rabbit:
    url: str  # to the test session's virtual host, with URL_OPTIONS
    host: str
    port: int
    vhost: str | None  # None: no rabbitmqctl here; isolation by prefix only

    def ctl(self, *args: str) -> None:
        subprocess.run(["rabbitmqctl", "--quiet", *args], check=True, capture_output=True, timeout=30)

    def close_connections(self, why: str = "test") -> None:
        """What an operator or a broker restart does: the server closes every connection."""
        if self.vhost is None:
            pytest.skip("rabbitmqctl is not available here")
        self.ctl("close_all_connections", "--vhost", self.vhost, why)

    def url_via(self, host: str, port: int) -> str:
        parts = urlsplit(self.url)
        creds = parts.netloc.rpartition("@")[0]
        return urlunsplit(parts._replace(netloc=f"{creds}@{host}:{port}"))


def _unavailable(reason: str) -> None:
    if os.environ.get("CAPHUB_REQUIRE_AMQP") == "1":
        pytest.fail(f"CAPHUB_REQUIRE_AMQP=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def rabbit() -> Iterator[Rabbit]:
    base = os.environ.get("CAPHUB_AMQP_URL", DEFAULT_URL)
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        _unavailable(f"RabbitMQ is not reachable at {host}:{port} (CAPHUB_AMQP_URL): {exc}")
    if shutil.which("rabbitmqctl") is None:
        # Isolation then rests on the per-test prefixes, in the URL's own virtual host.
        yield Rabbit(_with_options(base), host, port, None)
        return
    vhost = f"caphub-test-{uuid.uuid4().hex[:10]}"
    made = Rabbit(_with_options(urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))),
                  host, port, vhost)
    try:
        made.ctl("add_vhost", vhost)
        made.ctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
    except (OSError, subprocess.SubprocessError) as exc:
        _unavailable(f"cannot make a test virtual host with rabbitmqctl: {exc}")
    try:
        yield made
    finally:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            made.ctl("delete_vhost", vhost)


def _with_options(url: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{URL_OPTIONS}"


class Harness:
    """One broker under test, plus what the contract needs to look inside it."""

    def __init__(self, broker: MemoryBroker | AmqpBroker, rabbit: Rabbit | None) -> None:
        self.broker = broker
        self.rabbit = rabbit
        self._drained: dict[str, list[tuple[Message, str]]] = {}

    @property
    def kind(self) -> str:
        return "amqp" if isinstance(self.broker, AmqpBroker) else "memory"

    async def dead_letters(self, queue: str) -> list[tuple[Message, str]]:
        """Dead letters of ``queue`` so far, as (message, reason); drains them on RabbitMQ."""
        if isinstance(self.broker, MemoryBroker):
            return [(m, reason) for q, m, reason in self.broker.dead_letters if q == queue]
        assert self.rabbit is not None
        found = self._drained.setdefault(queue, [])
        connection = await aio_pika.connect(self.rabbit.url)
        async with connection:
            channel = await connection.channel()
            dead = await channel.declare_queue(self.broker.topology.dead_queue(queue), passive=True)
            while (got := await dead.get(no_ack=True, fail=False)) is not None:
                headers: dict[str, Any] = dict(got.headers or {})
                found.append((Message(str(headers.get("x-caphub-topic", got.routing_key)), got.body,
                                      {}, int(headers.get("x-caphub-attempt", 1))),
                              str(headers.get(REASON_HEADER, ""))))
        return list(found)


@pytest.fixture(params=["memory", "amqp"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "memory":
        h = Harness(MemoryBroker(), None)
    else:
        rabbit: Rabbit = request.getfixturevalue("rabbit")
        h = Harness(amqp_broker(rabbit), rabbit)
    await h.broker.start()
    try:
        yield h
    finally:
        await h.broker.close()


def amqp_broker(rabbit: Rabbit, url: str | None = None, prefix: str | None = None) -> AmqpBroker:
    """A broker with its own names inside the session's virtual host."""
    return AmqpBroker(url or rabbit.url, prefix=prefix or f"t{uuid.uuid4().hex[:8]}.", publish_timeout=5)


class TcpProxy:
    """A TCP relay on 127.0.0.1 that can cut every link it carries, like a dropped network."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.close()

    def cut(self) -> None:
        """Drop every link now (RST, no AMQP close); new links are accepted again."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def proxy(rabbit: Rabbit) -> AsyncIterator[TcpProxy]:
    p = TcpProxy(rabbit.host, rabbit.port)
    await p.start()
    try:
        yield p
    finally:
        await p.close()
