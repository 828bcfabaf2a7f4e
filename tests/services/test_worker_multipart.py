"""A multipart SMS that fails half-way (part 1 accepted by the SMSC, part 2 not) is retried
whole by the worker: the receipts of the new parts complete it, the first attempt's part 1
(superseded) neither completes nor fails it, and no part id is left pending."""

from __future__ import annotations

import json
from collections.abc import Sequence

from hub.domain import Channel
from hub.outputs.simulator import SmsOutcome
from hub.outputs.smpp import Receipt
from hub.outputs.sms_text import SmsText
from hub.services.receipts import record_receipts
from hub.services.router import CHANNEL_QUEUES, EVENTS_QUEUE
from hub.services.tracker import Tracker
from hub.wiring import Hub
from tests.services.test_router import cap, post, queued
from tests.services.test_worker import handle_when_due, sms_worker

KEYS = dict[str, tuple[bytes, bytes]]
LONG = "<instruction>" + "Blijf binnen en sluit ramen en deuren. " * 6 + "</instruction>"


class HalfWaySms:
    """An SMPP-like provider: the first attempt of each number gets part 1 accepted and then
    fails transiently (as after a lost connection); later attempts submit every part."""

    def __init__(self) -> None:
        self.submits: list[tuple[str, str]] = []  # (number, message id)
        self._next = 1000

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def _id(self, number: str) -> str:
        self._next += 1
        self.submits.append((number, str(self._next)))
        return str(self._next)

    async def send(self, sms: SmsText, numbers: Sequence[str]) -> list[SmsOutcome]:
        assert sms.part_count == 2
        out = []
        for n in numbers:
            if not any(number == n for number, _ in self.submits):
                out.append(SmsOutcome(n, False, 1, "SMPP connection lost", permanent=False,
                                      partial_ids=(self._id(n),)))
            else:
                out.append(SmsOutcome(n, True, 2, message_ids=(self._id(n), self._id(n))))
        return out


async def pending_parts(hub: Hub) -> int:
    rows = await hub.store._read("SELECT COUNT(*) FROM delivery_messages WHERE state IS NULL", ())
    return int(rows[0][0])


async def test_receipts_of_the_new_parts_complete_a_retried_multipart_sms(hub: Hub,
                                                                          keypairs: KEYS) -> None:
    provider = HalfWaySms()
    worker = sms_worker(hub, provider, retry_base=0.01)
    tracker = Tracker(hub.store)
    campaign = await hub.router.route(await post(hub, keypairs, cap("W-M", params=LONG)))
    assert campaign is not None
    [batch] = await queued(hub, CHANNEL_QUEUES[Channel.SMS])
    await worker.handle(batch)
    old = {mid: n for n, mid in provider.submits}
    assert len(old) == 2
    [again] = await queued(hub, CHANNEL_QUEUES[Channel.SMS])
    assert json.loads(again.body)["attempt"] == 2
    await handle_when_due(worker, again)
    new = [(n, mid) for n, mid in provider.submits if mid not in old]
    assert len(new) == 4 and await pending_parts(hub) == 4
    ids = {r[0]: r[1] for r in await hub.store._read(
        "SELECT address, id FROM deliveries WHERE campaign_id = ? AND channel = 'sms'", (campaign.id,))}
    # The first attempt's part 1 is delivered to one handset and fails on the other (after a
    # restart: not correlated in memory, tag None; and correlated, tag set): neither counts.
    first_two = list(old.items())
    early = [Receipt(first_two[0][0], "DELIVRD", tag=None),
             Receipt(first_two[1][0], "UNDELIV", error="001", tag=ids[first_two[1][1]], part=1, parts=2)]
    assert await record_receipts(hub.store, hub.broker, early) == []
    done = await record_receipts(hub.store, hub.broker, [Receipt(mid, "DELIVRD") for _, mid in new])
    assert sorted((d, s.value, parts) for d, s, _, parts, _ in done) == sorted(
        (i, "delivered", 3) for i in ids.values())  # 3 parts billed: the superseded one went out
    assert await pending_parts(hub) == 0
    for event in await queued(hub, EVENTS_QUEUE):
        await tracker.handle(event)
    states = await hub.store._read("SELECT state, parts FROM deliveries WHERE campaign_id = ? "
                                   "AND channel = 'sms'", (campaign.id,))
    assert [tuple(r) for r in states] == [("delivered", 3)] * 2
    # A failed receipt of a superseded part arriving last fails nothing.
    late = await record_receipts(hub.store, hub.broker, [Receipt(first_two[0][0], "UNDELIV")])
    assert {(s.value, reason) for _, s, reason, _, _ in late} <= {("delivered", None)}
