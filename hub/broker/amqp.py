"""The RabbitMQ broker, through aio-pika: the Broker contract on durable queues.

* One robust connection (``connect_robust``): after a loss it reconnects, reopens its
  channels, re-declares the exchanges, queues and bindings declared through them, and
  restarts the consumers. Unacked deliveries of the lost connection are redelivered.
* Publishing is persistent and confirmed: ``publish`` returns once RabbitMQ has the message.
  A nack, an unroutable internal message, a lost connection or a timeout raise
  ``BrokerError`` (chained to the aio-pika/aiormq cause). A lost confirm does not mean a
  lost message: republishing may duplicate, so handlers must be idempotent.
* Consuming is manual-ack, one channel per consumer (its own prefetch). The topology, its
  retry ladder and headers are described in ``hub.broker.topology``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import aio_pika
import aio_pika.abc
import aio_pika.exceptions

from hub.broker.base import Handler, Message, Reject, Retry
from hub.broker.topology import (
    ATTEMPT_HEADER,
    INTERNAL_HEADERS,
    QUEUE_HEADER,
    REASON_HEADER,
    TOPIC_HEADER,
    Topology,
    retry_rung_ms,
)
from hub.errors import BrokerError

log = logging.getLogger(__name__)

# What aio-pika/aiormq raise when the link, the channel or the broker fails us.
_FAILURES: tuple[type[BaseException], ...] = (*aio_pika.exceptions.CONNECTION_EXCEPTIONS, TimeoutError)
_RETRY_FAILURES: tuple[type[BaseException], ...] = (BrokerError, *_FAILURES)


class AmqpConsumer:
    """One consumer on its own channel; ``cancel`` stops it and hands back what it held."""

    def __init__(self, channel: aio_pika.abc.AbstractRobustChannel,
                 queue: aio_pika.abc.AbstractRobustQueue) -> None:
        self._channel = channel
        self._queue = queue
        self._tag: str | None = None
        self.in_flight: set[asyncio.Task[Any]] = set()

    async def cancel(self) -> None:
        """Stop receiving; interrupt running handlers; their messages go back to the queue
        (unacked deliveries are requeued when the channel closes)."""
        try:
            if self._tag is not None and not self._channel.is_closed:
                await self._queue.cancel(self._tag)
        except _FAILURES as exc:
            log.debug("cancelling consumer %s: %r", self._tag, exc)
        current = asyncio.current_task()
        running = [t for t in self.in_flight if t is not current]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        try:
            await self._channel.close()
        except _FAILURES as exc:
            log.debug("closing consumer channel: %r", exc)


class AmqpBroker:
    """``AmqpBroker(url)``: the Broker contract on RabbitMQ.

    :param url: ``amqp://user:pass@host:5672/vhost``; aio-pika query parameters such as
        ``?reconnect_interval=1&heartbeat=30`` are honoured.
    :param exchange: name of the topic exchange for events (``<exchange>.dead`` beside it).
    :param prefix: prepended to every exchange and queue name.
    :param publish_timeout: seconds ``publish`` waits (for a reconnection and the confirm)
        before raising ``BrokerError``.
    """

    def __init__(self, url: str, *, exchange: str = "caphub", prefix: str = "",
                 publish_timeout: float = 15.0) -> None:
        self._url = url
        self.topology = Topology(exchange, prefix)
        self._publish_timeout = publish_timeout
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._channel: aio_pika.abc.AbstractRobustChannel | None = None
        self._events: aio_pika.abc.AbstractExchange | None = None
        self._dead: aio_pika.abc.AbstractExchange | None = None
        self._bound: dict[str, set[str]] = {}  # stage queue -> topic patterns bound
        self._retry_queues: set[str] = set()
        self._consumers: list[AmqpConsumer] = []

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and declare the exchanges. Raises ``BrokerError`` if RabbitMQ is unreachable."""
        try:
            self._connection = await aio_pika.connect_robust(self._url)
            self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
            self._events = await self._channel.declare_exchange(
                self.topology.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True)
            self._dead = await self._channel.declare_exchange(
                self.topology.dead_exchange, aio_pika.ExchangeType.DIRECT, durable=True)
        except _FAILURES as exc:
            await self.close()
            raise BrokerError(f"cannot start the AMQP broker at {_safe(self._url)}: {exc!r}") from exc

    async def close(self) -> None:
        for consumer in self._consumers:
            await consumer.cancel()
        self._consumers.clear()
        connection, self._connection = self._connection, None
        self._channel = self._events = self._dead = None
        self._bound.clear()
        self._retry_queues.clear()
        if connection is not None:
            try:
                await connection.close()
            except _FAILURES as exc:
                log.debug("closing AMQP connection: %r", exc)

    async def healthy(self) -> bool:
        c = self._connection
        return c is not None and not c.is_closed and c.connected.is_set()

    # -- topology ----------------------------------------------------------------------

    async def declare(self, queue: str, topics: tuple[str, ...]) -> None:
        """Declare the durable stage queue bound to ``topics``, and its dead-letter queue.
        Idempotent; the robust channel re-declares both after a reconnection."""
        channel, _, dead = self._ready()
        t = self.topology
        bound = self._bound.get(queue)
        try:
            if bound is None:
                dead_q = await channel.declare_queue(t.dead_queue(queue), durable=True)
                await dead_q.bind(dead, routing_key=t.stage(queue))
                bound = self._bound[queue] = set()
            stage = await self._stage_queue(channel, queue)
            for pattern in topics:
                if pattern not in bound:
                    await stage.bind(t.events_exchange, routing_key=pattern)
                    bound.add(pattern)
        except _FAILURES as exc:
            raise BrokerError(f"cannot declare queue {t.stage(queue)!r}: {exc!r}") from exc

    async def _stage_queue(self, channel: aio_pika.abc.AbstractRobustChannel,
                           queue: str) -> aio_pika.abc.AbstractRobustQueue:
        return await channel.declare_queue(self.topology.stage(queue), durable=True,
                                           arguments=dict(self.topology.stage_arguments(queue)))

    # -- publishing --------------------------------------------------------------------

    async def publish(self, topic: str, body: bytes, *, headers: Mapping[str, str] | None = None) -> None:
        """Publish persistently to the events exchange; return once RabbitMQ confirms it.
        A topic no queue is bound to is dropped, as with the embedded broker."""
        _, events, _ = self._ready()
        await self._confirmed(events, _message(body, headers, {}), topic, mandatory=False)

    async def publish_many(self, topic: str, bodies: Iterable[bytes], *,
                           headers: Mapping[str, str] | None = None, in_flight: int = 256) -> None:
        """Publish every body under ``topic`` with up to ``in_flight`` confirms outstanding;
        return once all are confirmed. On failure, raises ``BrokerError`` after the
        outstanding ones settle: some bodies may have been taken, so republishing may
        duplicate."""
        _, events, _ = self._ready()
        window = asyncio.Semaphore(in_flight)
        pending: set[asyncio.Task[None]] = set()
        failure: BaseException | None = None

        def settled(task: asyncio.Task[None]) -> None:
            nonlocal failure
            pending.discard(task)
            window.release()
            if not task.cancelled() and task.exception() is not None and failure is None:
                failure = task.exception()

        for body in bodies:
            await window.acquire()
            if failure is not None:
                window.release()
                break
            task = asyncio.create_task(
                self._confirmed(events, _message(body, headers, {}), topic, mandatory=False))
            pending.add(task)
            task.add_done_callback(settled)
        if pending:
            await asyncio.wait(set(pending))
        if failure is not None:
            raise failure

    async def _confirmed(self, exchange: aio_pika.abc.AbstractExchange, message: aio_pika.Message,
                         routing_key: str, *, mandatory: bool) -> None:
        try:
            async with asyncio.timeout(self._publish_timeout):
                await exchange.publish(message, routing_key, mandatory=mandatory)
        except aio_pika.exceptions.DeliveryError as exc:
            raise BrokerError(f"RabbitMQ refused a {routing_key!r} message: {exc!r}") from exc
        except aio_pika.exceptions.PublishError as exc:
            raise BrokerError(f"no queue for a {routing_key!r} message on {exchange.name!r}") from exc
        except TimeoutError as exc:
            raise BrokerError(f"no confirm for a {routing_key!r} message within "
                              f"{self._publish_timeout} s") from exc
        except _FAILURES as exc:
            raise BrokerError(f"lost a {routing_key!r} message's confirm: {exc!r}") from exc

    # -- consuming ---------------------------------------------------------------------

    async def consume(self, queue: str, topics: tuple[str, ...], handler: Handler, *,
                      prefetch: int = 32, max_attempts: int = 10) -> AmqpConsumer:
        await self.declare(queue, topics)
        connection = self._connection
        assert connection is not None  # _ready() in declare checked it
        try:
            channel = await connection.channel(publisher_confirms=False)
            await channel.set_qos(prefetch_count=prefetch)
            amqp_queue = await self._stage_queue(channel, queue)
            consumer = AmqpConsumer(channel, amqp_queue)

            async def on_message(incoming: aio_pika.abc.AbstractIncomingMessage) -> None:
                task = asyncio.current_task()
                assert task is not None
                consumer.in_flight.add(task)
                try:
                    await self._handle(queue, handler, max_attempts, incoming)
                finally:
                    consumer.in_flight.discard(task)

            consumer._tag = await amqp_queue.consume(on_message)
        except _FAILURES as exc:
            raise BrokerError(f"cannot consume from {self.topology.stage(queue)!r}: {exc!r}") from exc
        self._consumers.append(consumer)
        return consumer

    async def _handle(self, queue: str, handler: Handler, max_attempts: int,
                      incoming: aio_pika.abc.AbstractIncomingMessage) -> None:
        message = _decode(incoming)
        try:
            await handler(message)
        except Retry as exc:
            if message.attempt >= max_attempts:
                await self._dead_letter(queue, incoming, message,
                                        f"gave up after {message.attempt} attempts: {exc}")
            else:
                await self._retry(queue, incoming, message, exc.delay)
            return
        except Reject as exc:
            await self._dead_letter(queue, incoming, message, str(exc))
            return
        except Exception as exc:  # a handler bug must not stop the queue
            log.exception("handler of queue %s failed on a %s message", queue, message.topic)
            await self._dead_letter(queue, incoming, message, f"handler failed: {exc!r}")
            return
        await _settle(incoming.ack(), "ack", queue)

    async def _retry(self, queue: str, incoming: aio_pika.abc.AbstractIncomingMessage,
                     message: Message, delay: float) -> None:
        name = self.topology.retry_queue(queue, retry_rung_ms(delay))
        # Per-message TTL: when it runs out, the retry queue dead-letters the message home.
        again = _message(message.body, message.headers,
                         {ATTEMPT_HEADER: message.attempt + 1, TOPIC_HEADER: message.topic},
                         expiration=max(0.0, delay))
        try:
            channel, _, _ = self._ready()
            if name not in self._retry_queues:
                await channel.declare_queue(name, durable=True,
                                            arguments=dict(self.topology.retry_arguments(queue)))
                self._retry_queues.add(name)
            await self._confirmed(channel.default_exchange, again, name, mandatory=True)
        except _RETRY_FAILURES as exc:
            # Not rescheduled: hand it back now rather than lose it (attempt not counted).
            log.warning("could not schedule a retry on %s (%r); requeueing", queue, exc)
            await _settle(incoming.nack(requeue=True), "nack", queue)
            return
        await _settle(incoming.ack(), "ack", queue)

    async def _dead_letter(self, queue: str, incoming: aio_pika.abc.AbstractIncomingMessage,
                           message: Message, reason: str) -> None:
        log.warning("dead letter on queue %s (%s): %s", queue, message.topic, reason)
        copy = _message(message.body, message.headers,
                        {ATTEMPT_HEADER: message.attempt, TOPIC_HEADER: message.topic,
                         REASON_HEADER: reason[:1000], QUEUE_HEADER: queue})
        try:
            _, _, dead = self._ready()
            await self._confirmed(dead, copy, self.topology.stage(queue), mandatory=True)
        except BrokerError as exc:
            # The queue's own dead-letter exchange still routes it, without our reason.
            log.warning("could not publish a dead letter of %s (%r); rejecting it", queue, exc)
            await _settle(incoming.reject(requeue=False), "reject", queue)
            return
        await _settle(incoming.ack(), "ack", queue)

    def _ready(self) -> tuple[aio_pika.abc.AbstractRobustChannel, aio_pika.abc.AbstractExchange,
                              aio_pika.abc.AbstractExchange]:
        if self._channel is None or self._events is None or self._dead is None:
            raise BrokerError("the AMQP broker is not started")
        return self._channel, self._events, self._dead


async def _settle(outcome: Any, what: str, queue: str) -> None:
    """Ack/nack/reject; if the channel is gone, RabbitMQ redelivers the message anyway."""
    try:
        await outcome
    except _FAILURES as exc:
        log.info("could not %s a message of %s (%r): it will be redelivered", what, queue, exc)


def _message(body: bytes, headers: Mapping[str, str] | None, internal: Mapping[str, Any], *,
             expiration: float | None = None) -> aio_pika.Message:
    merged: dict[str, Any] = {k: v for k, v in (headers or {}).items() if k not in INTERNAL_HEADERS}
    merged.update(internal)
    return aio_pika.Message(body, headers=merged, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            expiration=expiration)


def _decode(incoming: aio_pika.abc.AbstractIncomingMessage) -> Message:
    raw = incoming.headers or {}
    headers = {k: _text(v) for k, v in raw.items() if k not in INTERNAL_HEADERS}
    topic = raw.get(TOPIC_HEADER)
    attempt = raw.get(ATTEMPT_HEADER, 1)
    return Message(
        topic=_text(topic) if topic is not None else (incoming.routing_key or ""),
        body=incoming.body,
        headers=headers,
        attempt=attempt if isinstance(attempt, int) and attempt > 0 else 1,
    )


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _safe(url: str) -> str:
    """The URL without its password, for error messages."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, creds = head.partition("://")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}"
