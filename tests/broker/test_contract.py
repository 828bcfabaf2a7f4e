"""The broker contract, run on the embedded broker and on RabbitMQ alike (see conftest)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from hub.broker.base import Message, Reject, Retry
from hub.broker.topics import matches
from tests.broker.conftest import Harness


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def test_topic_patterns() -> None:
    assert matches("alert.*", "alert.accepted")
    assert not matches("alert.*", "alert.accepted.nl")
    assert matches("alert.#", "alert.accepted.nl") and matches("alert.#", "alert")
    assert matches("#", "anything.at.all") and not matches("deliver.sms", "deliver.email")


async def test_publish_then_consume_keeps_body_topic_and_headers(harness: Harness) -> None:
    broker = harness.broker
    await broker.declare("q", ("alert.*",))
    await broker.publish("alert.accepted", b"<alert/>", headers={"campaign": "c1"})
    seen: list[Message] = []

    async def handler(m: Message) -> None:
        seen.append(m)

    await broker.consume("q", ("alert.*",), handler)
    await eventually(lambda: len(seen) == 1)
    assert seen[0] == Message("alert.accepted", b"<alert/>", {"campaign": "c1"}, 1)
    assert await broker.healthy()


async def test_topic_patterns_route_to_every_matching_queue(harness: Harness) -> None:
    broker = harness.broker
    got: dict[str, list[str]] = {"alerts": [], "deep": []}

    def collect(name: str):  # type: ignore[no-untyped-def]
        async def handler(m: Message) -> None:
            got[name].append(m.topic)
        return handler

    await broker.consume("alerts", ("alert.*",), collect("alerts"))
    await broker.consume("deep", ("alert.#", "deliver.sms"), collect("deep"))
    for topic in ("alert.accepted", "alert.accepted.nl", "deliver.sms", "deliver.email", "alert"):
        await broker.publish(topic, b"x")
    await eventually(lambda: len(got["alerts"]) == 1 and len(got["deep"]) == 4)
    await asyncio.sleep(0.1)  # nothing more arrives
    assert got["alerts"] == ["alert.accepted"]
    assert sorted(got["deep"]) == ["alert", "alert.accepted", "alert.accepted.nl", "deliver.sms"]


async def test_retry_delivers_again_with_the_attempt_counted(harness: Harness) -> None:
    broker = harness.broker
    seen: list[Message] = []

    async def handler(m: Message) -> None:
        seen.append(m)
        if m.attempt < 3:
            raise Retry("not yet", 0.05)

    await broker.consume("q", ("alert.*",), handler)
    await broker.publish("alert.accepted", b"1", headers={"k": "v"})
    await eventually(lambda: len(seen) == 3)
    assert [(m.topic, m.body, m.attempt, dict(m.headers)) for m in seen] == [
        ("alert.accepted", b"1", n, {"k": "v"}) for n in (1, 2, 3)]


async def test_a_long_retry_does_not_hold_up_a_short_one(harness: Harness) -> None:
    broker = harness.broker
    retried: list[bytes] = []

    async def handler(m: Message) -> None:
        if m.attempt == 1:
            raise Retry("later", 30 if m.body == b"slow" else 0.05)
        retried.append(m.body)

    await broker.consume("q", ("t",), handler)
    await broker.publish("t", b"slow")
    await broker.publish("t", b"fast")
    await eventually(lambda: retried == [b"fast"], timeout=3)


async def test_reject_failure_and_exhausted_retries_are_dead_lettered(harness: Harness) -> None:
    broker = harness.broker
    calls: list[bytes] = []

    async def handler(m: Message) -> None:
        calls.append(m.body)
        if m.body == b"reject":
            raise Reject("never")
        if m.body == b"bug":
            raise KeyError("boom")
        raise Retry("again", 0.01)

    await broker.consume("q", ("t",), handler, max_attempts=2)
    for body in (b"reject", b"bug", b"retry"):
        await broker.publish("t", body)
    dead: list[tuple[Message, str]] = []

    async def all_dead() -> None:
        while len(dead) < 3:
            dead[:] = await harness.dead_letters("q")
            await asyncio.sleep(0.02)

    await asyncio.wait_for(all_dead(), 5)
    reasons = {m.body: reason for m, reason in dead}
    assert reasons[b"reject"] == "never"
    assert "boom" in reasons[b"bug"]
    assert "after 2 attempts" in reasons[b"retry"]
    assert all(m.topic == "t" for m, _ in dead)
    assert sorted(calls) == [b"bug", b"reject", b"retry", b"retry"]


async def test_a_consumer_stopped_before_its_ack_gives_the_message_back(harness: Harness) -> None:
    broker = harness.broker
    started = asyncio.Event()

    async def stuck(m: Message) -> None:
        started.set()
        await asyncio.Event().wait()  # the process dies before it acks

    first = await broker.consume("q", ("t",), stuck)
    await broker.publish("t", b"precious")
    await asyncio.wait_for(started.wait(), 5)
    await first.cancel()

    again: list[Message] = []

    async def handler(m: Message) -> None:
        again.append(m)

    await broker.consume("q", ("t",), handler)
    await eventually(lambda: len(again) == 1, timeout=0.5 if harness.kind == "memory" else 3)
    assert again[0].body == b"precious"


async def test_prefetch_bounds_the_messages_in_hand(harness: Harness) -> None:
    broker = harness.broker
    in_hand = peak = 0
    done = 0
    release = asyncio.Event()

    async def handler(m: Message) -> None:
        nonlocal in_hand, peak, done
        in_hand += 1
        peak = max(peak, in_hand)
        await release.wait()
        in_hand -= 1
        done += 1

    await broker.consume("q", ("t",), handler, prefetch=3)
    for i in range(10):
        await broker.publish("t", str(i).encode())
    await eventually(lambda: in_hand == 3)
    await asyncio.sleep(0.1)
    assert peak == 3
    release.set()
    await eventually(lambda: done == 10)
