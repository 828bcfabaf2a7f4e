"""RabbitMQ only: connection loss mid-flow, re-declared topology, errors at the boundary."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aio_pika
import pytest

from hub.broker.amqp import AmqpBroker
from hub.broker.base import Message
from hub.errors import BrokerError
from tests.broker.conftest import Rabbit, TcpProxy, amqp_broker
from tests.broker.test_contract import eventually


async def _flow(publisher: AmqpBroker, consumer: AmqpBroker, disrupt: Callable[[], Awaitable[None]],
                n: int = 300) -> tuple[int, int]:
    """Publish ``n`` bodies while consuming them; the link goes down while the consumer holds
    unacked messages and the publisher is still publishing. Returns (distinct bodies
    handled, deliveries begun): everything arrives; what was in hand is delivered again
    (aiormq cancels the handlers of a lost channel, or their ack fails)."""
    handled: list[bytes] = []
    begun: list[bytes] = []
    disrupted = asyncio.Event()

    async def handler(m: Message) -> None:
        begun.append(m.body)
        await disrupted.wait()  # work in hand, not acked yet, when the link goes
        handled.append(m.body)  # the effect is stored; the ack may then fail

    async def publish(bodies: range) -> None:
        for i in bodies:
            while True:  # the caller's job, as the router's: retry what was not confirmed
                try:
                    await publisher.publish("flow.item", str(i).encode())
                    break
                except BrokerError:
                    await asyncio.sleep(0.05)

    await consumer.consume("flow", ("flow.*",), handler, prefetch=20)
    await publish(range(n // 3))
    rest = asyncio.create_task(publish(range(n // 3, n)))
    await disrupt()
    disrupted.set()
    await asyncio.wait_for(rest, 20)
    expected = {str(i).encode() for i in range(n)}
    await eventually(lambda: set(handled) >= expected, timeout=20)
    await eventually(lambda: publisher._connection is not None and consumer._connection is not None
                     and publisher._connection.connected.is_set() and consumer._connection.connected.is_set())
    assert await publisher.healthy() and await consumer.healthy()
    return len(set(handled)), len(begun)


async def test_server_closing_the_connections_loses_nothing(rabbit: Rabbit) -> None:
    prefix = f"close{time.monotonic_ns()}."
    publisher, consumer = amqp_broker(rabbit, prefix=prefix), amqp_broker(rabbit, prefix=prefix)
    await publisher.start()
    await consumer.start()
    await publisher.declare("flow", ("flow.*",))
    try:
        distinct, deliveries = await _flow(publisher, consumer,
                                           lambda: asyncio.to_thread(rabbit.close_connections, "test"))
        assert distinct == 300
        assert deliveries > distinct  # what was in hand came again
    finally:
        await consumer.close()
        await publisher.close()


async def test_a_cut_link_mid_flow_loses_nothing(rabbit: Rabbit, proxy: TcpProxy) -> None:
    prefix = f"cut{time.monotonic_ns()}."
    via_proxy = rabbit.url_via("127.0.0.1", proxy.port)
    publisher = amqp_broker(rabbit, via_proxy, prefix=prefix)
    consumer = amqp_broker(rabbit, via_proxy, prefix=prefix)
    await publisher.start()
    await consumer.start()
    await publisher.declare("flow", ("flow.*",))

    async def cut() -> None:
        proxy.cut()

    try:
        distinct, deliveries = await _flow(publisher, consumer, cut)
        assert distinct == 300
        assert deliveries > distinct  # what was in hand came again
    finally:
        await consumer.close()
        await publisher.close()


async def test_topology_is_declared_again_after_a_reconnection(rabbit: Rabbit) -> None:
    broker = amqp_broker(rabbit)
    await broker.start()
    got: list[bytes] = []

    async def handler(m: Message) -> None:
        got.append(m.body)

    try:
        await broker.consume("route", ("alert.accepted",), handler)
        # The broker loses its queues (say, a node replaced without its disk), then the link.
        async with await aio_pika.connect(rabbit.url) as admin:
            channel = await admin.channel()
            await channel.queue_delete(broker.topology.stage("route"))
            await channel.queue_delete(broker.topology.dead_queue("route"))
        await asyncio.to_thread(rabbit.close_connections, "test")

        async def delivered() -> None:
            while not got:
                try:
                    await broker.publish("alert.accepted", b"after")
                except BrokerError:
                    pass
                await asyncio.sleep(0.2)

        await asyncio.wait_for(delivered(), 10)
        async with await aio_pika.connect(rabbit.url) as admin:
            channel = await admin.channel()
            await channel.declare_queue(broker.topology.dead_queue("route"), passive=True)
    finally:
        await broker.close()


async def test_publish_many_confirms_every_body(rabbit: Rabbit) -> None:
    broker = amqp_broker(rabbit)
    await broker.start()
    await broker.declare("bulk", ("deliver.sms",))
    got: list[bytes] = []

    async def handler(m: Message) -> None:
        got.append(m.body)

    try:
        await broker.publish_many("deliver.sms", (f"{i}".encode() * 100 for i in range(500)), in_flight=64)
        await broker.consume("bulk", ("deliver.sms",), handler, prefetch=100)
        await eventually(lambda: len(got) == 500)
        assert sorted(got) == sorted(f"{i}".encode() * 100 for i in range(500))
    finally:
        await broker.close()


async def test_unreachable_broker_raises_broker_error() -> None:
    broker = AmqpBroker("amqp://guest:guest@127.0.0.1:1/")
    with pytest.raises(BrokerError, match="cannot start") as info:
        await broker.start()
    assert info.value.__cause__ is not None
    assert "guest:guest" not in str(info.value)
    assert not await broker.healthy()
    with pytest.raises(BrokerError, match="not started"):
        await broker.publish("t", b"x")


async def test_publish_on_a_link_that_stays_down_raises_broker_error(rabbit: Rabbit, proxy: TcpProxy) -> None:
    broker = AmqpBroker(rabbit.url_via("127.0.0.1", proxy.port), prefix="down.", publish_timeout=0.5)
    await broker.start()
    try:
        await broker.publish("t", b"fine")
        await proxy.close()  # cut, and no more links accepted
        await eventually(lambda: not broker._connection.connected.is_set())  # type: ignore[union-attr]
        assert not await broker.healthy()
        with pytest.raises(BrokerError):
            await broker.publish("t", b"lost")
    finally:
        await broker.close()


async def test_a_conflicting_queue_is_reported_as_broker_error(rabbit: Rabbit) -> None:
    broker = amqp_broker(rabbit)
    async with await aio_pika.connect(rabbit.url) as admin:
        channel = await admin.channel()
        await channel.declare_queue(broker.topology.stage("odd"), durable=False)
    await broker.start()
    try:
        with pytest.raises(BrokerError, match="odd") as info:
            await broker.declare("odd", ("t",))
        assert isinstance(info.value.__cause__, aio_pika.exceptions.AMQPError)
    finally:
        await broker.close()
