"""The embedded, in-process broker: the default when no AMQP URL is configured.

Same contract as RabbitMQ for the code that uses it (topic bindings, acks, delayed retry,
dead letters), without durability: what it holds is lost with the process, which is why
the store, not the broker, says what is still to do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from hub.broker.base import Handler, Message, Reject, Retry
from hub.broker.topics import matches

log = logging.getLogger(__name__)


@dataclass
class _Queue:
    topics: tuple[str, ...]
    items: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)


class _MemoryConsumer:
    def __init__(self, task: asyncio.Task[None]) -> None:
        self._task = task

    async def cancel(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


class MemoryBroker:
    def __init__(self) -> None:
        self._queues: dict[str, _Queue] = {}
        self._consumers: list[_MemoryConsumer] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self.dead_letters: list[tuple[str, Message, str]] = []  # (queue, message, reason)
        self._open = False

    async def start(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False
        for consumer in self._consumers:
            await consumer.cancel()
        self._consumers.clear()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    async def healthy(self) -> bool:
        return self._open

    async def declare(self, queue: str, topics: tuple[str, ...]) -> None:
        existing = self._queues.get(queue)
        if existing is None:
            self._queues[queue] = _Queue(topics)
        else:
            existing.topics = tuple(dict.fromkeys(existing.topics + topics))

    async def publish(self, topic: str, body: bytes, *, headers: Mapping[str, str] | None = None) -> None:
        message = Message(topic, body, dict(headers or {}))
        for q in self._queues.values():
            if any(matches(p, topic) for p in q.topics):
                q.items.put_nowait(message)

    async def publish_many(self, topic: str, bodies: Iterable[bytes], *,
                           headers: Mapping[str, str] | None = None) -> None:
        for body in bodies:
            await self.publish(topic, body, headers=headers)

    async def consume(self, queue: str, topics: tuple[str, ...], handler: Handler, *,
                      prefetch: int = 32, max_attempts: int = 10) -> _MemoryConsumer:
        await self.declare(queue, topics)
        q = self._queues[queue]
        task = asyncio.create_task(self._run(queue, q, handler, prefetch, max_attempts))
        consumer = _MemoryConsumer(task)
        self._consumers.append(consumer)
        return consumer

    async def _run(self, name: str, q: _Queue, handler: Handler, prefetch: int, max_attempts: int) -> None:
        slots = asyncio.Semaphore(prefetch)
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                message = await q.items.get()
                try:
                    await slots.acquire()
                except asyncio.CancelledError:  # stopped before handling it: give it back
                    q.items.put_nowait(message)
                    raise
                task = asyncio.create_task(self._handle(name, q, handler, message, max_attempts))
                running.add(task)

                def done(t: asyncio.Task[None]) -> None:
                    running.discard(t)
                    slots.release()

                task.add_done_callback(done)
        finally:
            for task in running:
                task.cancel()

    async def _handle(self, queue: str, q: _Queue, handler: Handler, message: Message,
                      max_attempts: int) -> None:
        try:
            await handler(message)
        except Retry as exc:
            if message.attempt >= max_attempts:
                self._dead(queue, message, f"gave up after {message.attempt} attempts: {exc}")
                return
            again = replace(message, attempt=message.attempt + 1)
            self._later(exc.delay, q, again)
        except Reject as exc:
            self._dead(queue, message, str(exc))
        except asyncio.CancelledError:  # stopped before the ack, as RabbitMQ would: give it back
            q.items.put_nowait(message)
            raise
        except Exception as exc:  # a handler bug must not stop the queue
            log.exception("handler of queue %s failed on a %s message", queue, message.topic)
            self._dead(queue, message, f"handler failed: {exc!r}")

    def _later(self, delay: float, q: _Queue, message: Message) -> None:
        def fire() -> None:
            self._timers.discard(timer)
            if self._open:
                q.items.put_nowait(message)

        timer = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(timer)

    def _dead(self, queue: str, message: Message, reason: str) -> None:
        log.warning("dead letter on queue %s (%s): %s", queue, message.topic, reason)
        self.dead_letters.append((queue, message, reason))
