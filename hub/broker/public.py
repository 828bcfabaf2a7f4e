"""The AMQP fan-out exchange ``cap.public``: every public change as hub-signed CAP, for partners
with RabbitMQ access who bind queues of their own to it.

A durable ``fanout`` exchange (``<prefix>cap.public``), declared when the push stage starts on
RabbitMQ. Each message is one hub-signed CAP document (``content_type`` application/cap+xml,
persistent), with headers ``x-cap-event`` (new, update, cancel) and ``x-cap-alert`` (the hub's
alert id, as in ``/alerts/{id}.cap``). Publishing is confirmed; a partner's queue gets every
message published after it was bound, at least once (a retried event may repeat one: the CAP
``identifier``/``sender``/``sent`` tell repeats apart). A partner's account needs only
``configure`` and ``write`` on its own queues and ``read`` on this exchange.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aio_pika
import aio_pika.abc
import aio_pika.exceptions

from hub.errors import BrokerError

_FAILURES: tuple[type[BaseException], ...] = (*aio_pika.exceptions.CONNECTION_EXCEPTIONS, TimeoutError)
_PUBLISH_FAILURES: tuple[type[BaseException], ...] = (aio_pika.exceptions.DeliveryError, *_FAILURES)


class PublicExchange:
    def __init__(self, url: str, name: str, *, prefix: str = "", publish_timeout: float = 15.0) -> None:
        self._url = url
        self.name = f"{prefix}{name}"
        self._timeout = publish_timeout
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def start(self) -> None:
        """Connect and declare the exchange. Raises ``BrokerError`` when RabbitMQ refuses, or
        does not answer within the publish timeout (a peer that accepts the connection and then
        says nothing would otherwise hold the push stage's start for ever)."""
        try:
            # connect_robust's own timeout: cancelling it from outside leaves its reconnect
            # loop running
            self._connection = await aio_pika.connect_robust(self._url, timeout=self._timeout)
            async with asyncio.timeout(self._timeout):
                channel = await self._connection.channel(publisher_confirms=True)
                self._exchange = await channel.declare_exchange(self.name, aio_pika.ExchangeType.FANOUT,
                                                                durable=True)
        except _FAILURES as exc:
            await self.close()
            raise BrokerError(f"cannot declare the exchange {self.name!r}: {exc!r}") from exc

    async def publish(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Returns once RabbitMQ has confirmed it; ``BrokerError`` otherwise."""
        if self._exchange is None:
            raise BrokerError(f"the exchange {self.name!r} is not declared")
        message = aio_pika.Message(body, headers=dict(headers), content_type="application/cap+xml",
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        try:
            async with asyncio.timeout(self._timeout):
                await self._exchange.publish(message, routing_key="")
        except _PUBLISH_FAILURES as exc:
            raise BrokerError(f"could not publish to {self.name!r}: {exc!r}") from exc

    async def close(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            try:
                await connection.close()
            except _FAILURES:
                pass
