"""The embedded broker keeps the broker contract: bindings, acks, retry, dead letters."""

from __future__ import annotations

import asyncio

from hub.broker.base import Message, Reject, Retry
from hub.broker.memory import MemoryBroker
from hub.broker.topics import matches


def test_topic_patterns() -> None:
    assert matches("alert.*", "alert.accepted")
    assert not matches("alert.*", "alert.accepted.nl")
    assert matches("alert.#", "alert.accepted.nl") and matches("alert.#", "alert")
    assert matches("#", "anything.at.all") and not matches("deliver.sms", "deliver.email")


async def test_declared_queue_buffers_until_consumed_and_retries() -> None:
    broker = MemoryBroker()
    await broker.start()
    await broker.declare("q", ("alert.*",))
    await broker.publish("alert.accepted", b"1")
    await broker.publish("other.thing", b"ignored")
    seen: list[Message] = []
    done = asyncio.Event()

    async def handler(m: Message) -> None:
        seen.append(m)
        if m.attempt < 3:
            raise Retry("not yet", 0.01)
        done.set()

    await broker.consume("q", ("alert.*",), handler)
    await asyncio.wait_for(done.wait(), 2)
    assert [(m.body, m.attempt) for m in seen] == [(b"1", 1), (b"1", 2), (b"1", 3)]
    await broker.close()


async def test_reject_failure_and_exhausted_retries_go_to_dead_letters() -> None:
    broker = MemoryBroker()
    await broker.start()

    async def handler(m: Message) -> None:
        if m.body == b"reject":
            raise Reject("never")
        if m.body == b"bug":
            raise KeyError("boom")
        raise Retry("again", 0)

    await broker.consume("q", ("t",), handler, max_attempts=2)
    for body in (b"reject", b"bug", b"retry"):
        await broker.publish("t", body)
    for _ in range(100):
        if len(broker.dead_letters) == 3:
            break
        await asyncio.sleep(0.01)
    reasons = {m.body: reason for _, m, reason in broker.dead_letters}
    assert reasons[b"reject"] == "never"
    assert "boom" in reasons[b"bug"]
    assert "after 2 attempts" in reasons[b"retry"]
    await broker.close()
