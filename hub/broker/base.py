"""The broker interface: publish with confirm, consume with ack, delayed retry, dead letter.

Two implementations: ``hub.broker.memory`` (embedded, in-process: the default when no AMQP
URL is configured) and, with the routing work, RabbitMQ through aio-pika. Bodies are bytes
(CAP XML or JSON), never pickles. The store, not the broker, is the source of truth for what
is still to do: after a crash the hub re-enqueues what is pending.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from hub.errors import HubError


@dataclass(frozen=True, slots=True)
class Message:
    topic: str  # routing key, e.g. "alert.accepted"
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    attempt: int = 1  # 1 on first delivery, +1 on each retry


Handler = Callable[[Message], Awaitable[None]]


class Retry(HubError):
    """Raised by a handler: try this message again after ``delay`` seconds."""

    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.delay = delay


class Reject(HubError):
    """Raised by a handler: this message can never be handled; send it to the dead letters."""


class Consumer(Protocol):
    async def cancel(self) -> None: ...


class Broker(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def healthy(self) -> bool: ...

    async def declare(self, queue: str, topics: tuple[str, ...]) -> None:
        """Make ``queue`` exist and receive ``topics`` from now on, consumed or not."""

    async def publish(self, topic: str, body: bytes, *, headers: Mapping[str, str] | None = None) -> None:
        """Returns once the broker has taken the message for good (publisher confirm)."""

    async def publish_many(self, topic: str, bodies: Iterable[bytes], *,
                           headers: Mapping[str, str] | None = None) -> None:
        """Publish every body under ``topic``; returns once all are confirmed. On failure
        raises ``BrokerError``: some may have been taken already, so republishing may
        duplicate (consumers must be idempotent anyway)."""

    async def consume(self, queue: str, topics: tuple[str, ...], handler: Handler, *,
                      prefetch: int = 32, max_attempts: int = 10) -> Consumer:
        """Deliver messages whose topic matches one of ``topics`` (AMQP topic patterns:
        ``*`` one word, ``#`` any number) to ``handler`` through the durable ``queue``.
        Returning acks the message; ``Retry`` redelivers it later; ``Reject``, any other
        exception, or ``max_attempts`` reached, dead-letters it."""
