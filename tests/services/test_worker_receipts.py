"""SMS receipts and the few writes per delivery: a receipt that comes while its chunk is in
hand is stored with the chunk's answers (the delivery goes sending → delivered in one write,
nothing indexed); one that comes later finds the index and ends its delivery in its own
write; one stored before the settle (it overtook it) is ended by that settle; what a failed
send held is queued again, not lost."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from hub.domain import Channel
from hub.outputs.simulator import SimulatorSmsProvider, SmsOutcome
from hub.outputs.smpp import Receipt
from hub.outputs.sms_text import SMS_PRICE_EUR, SmsText
from hub.services.receipts import record_receipts
from hub.services.router import CHANNEL_QUEUES, EVENTS_QUEUE
from hub.wiring import Hub
from tests.services.test_router import cap, post, queued
from tests.services.test_worker import sms_worker
from tests.services.test_worker_multipart import LONG

KEYS = dict[str, tuple[bytes, bytes]]


class EchoSms(SimulatorSmsProvider):
    """Answers each submit with one id per part; the receipts of the parts in ``receipted``
    (1-based) are put on the receipt queue before the answer, as a fast SMSC's come: the
    first number's DELIVRD, the others' UNDELIV. ``store_first``: recorded in the store
    instead (a receipt that overtook the settle there)."""

    def __init__(self, hub: Hub, *, receipted: Sequence[int] = (1, 2, 3), store_first: bool = False,
                 fail: bool = False) -> None:
        super().__init__(delivery_ratio=1.0)
        self.hub, self.receipted, self.store_first, self.fail = hub, receipted, store_first, fail
        self.ids: dict[str, tuple[str, ...]] = {}
        self._next = 5000

    async def send(self, sms: SmsText, numbers: Sequence[str], *,
                   tags: Sequence[object] | None = None) -> list[SmsOutcome]:
        assert tags is not None
        out, early = [], []
        for number, tag in zip(numbers, tags, strict=True):
            ids = tuple(str(self._next + i) for i in range(sms.part_count))
            self._next += sms.part_count
            state, error = ("DELIVRD", "") if not self.ids else ("UNDELIV", "001")
            early += [Receipt(mid, state, error, tag=tag, part=i + 1, parts=len(ids), submit_id=mid)
                      for i, mid in enumerate(ids) if i + 1 in self.receipted]
            self.ids[number] = ids
            out.append(SmsOutcome(number, True, sms.part_count, message_ids=ids))
        if self.store_first:
            await record_receipts(self.hub.store, self.hub.broker, early)
        else:
            for receipt in early:
                self.receipts.put_nowait(receipt)
        if self.fail:
            raise OSError("the provider broke after the SMSC answered")
        return out


async def sms_rows(hub: Hub, campaign_id: int) -> list[tuple[str, str | None, int, float]]:
    found = await hub.store._read("SELECT state, reason, parts, cost_eur FROM deliveries "
                                  "WHERE campaign_id = ? AND channel = 'sms' ORDER BY id", (campaign_id,))
    return [tuple(r) for r in found]  # type: ignore[misc]


async def index(hub: Hub) -> list[tuple[int, str | None]]:
    found = await hub.store._read("SELECT part, state FROM delivery_messages ORDER BY message_id", ())
    return [tuple(r) for r in found]  # type: ignore[misc]


async def send_one_batch(hub: Hub, keypairs: KEYS, provider: EchoSms, ident: str, params: str = "") -> int:
    """Route one alert and have an SMS worker on ``provider`` send its one SMS batch; the
    campaign's id."""
    campaign = await hub.router.route(await post(hub, keypairs, cap(ident, params=params)))
    assert campaign is not None
    [batch] = await queued(hub, CHANNEL_QUEUES[Channel.SMS])
    await sms_worker(hub, provider).handle(batch)
    return campaign.id


# The first number's SMS delivered, the other's failed, each one part at the flat price.
ENDED = [("delivered", None, 1, float(SMS_PRICE_EUR)), ("failed", "UNDELIV err:001", 1, float(SMS_PRICE_EUR))]


async def test_receipts_that_come_while_the_chunk_is_in_hand_end_it_in_one_write(
        hub: Hub, keypairs: KEYS) -> None:
    provider = EchoSms(hub)
    campaign_id = await send_one_batch(hub, keypairs, provider, "R-1")
    # No tracker ran: the worker's own write made them final, with their parts and cost.
    assert await sms_rows(hub, campaign_id) == ENDED
    assert await index(hub) == []  # nothing to look up later
    assert provider.receipts.qsize() == 0 and provider.receipts.holding == 0


async def test_a_part_whose_receipt_is_late_is_indexed_and_its_receipt_ends_the_delivery(
        hub: Hub, keypairs: KEYS) -> None:
    provider = EchoSms(hub, receipted=(1,))  # part 2's receipt comes later
    campaign_id = await send_one_batch(hub, keypairs, provider, "R-2", LONG)
    cost = float(SMS_PRICE_EUR * 2)
    assert await sms_rows(hub, campaign_id) == [("submitted", None, 2, cost)] * 2
    assert sorted(await index(hub)) == [(1, "delivered"), (1, "failed"), (2, None), (2, None)]
    late = [Receipt(ids[1], "DELIVRD") for ids in provider.ids.values()]
    done = await record_receipts(hub.store, hub.broker, late)
    assert sorted(state.value for _, state, *_ in done) == ["delivered", "failed"]
    # Ended by the receipts' write itself; the cost stays the worker's.
    assert sorted(await sms_rows(hub, campaign_id)) == [("delivered", None, 2, cost),
                                                        ("failed", "UNDELIV err:001", 2, cost)]


async def test_a_receipt_stored_before_its_settle_is_ended_by_the_settle(hub: Hub, keypairs: KEYS) -> None:
    campaign_id = await send_one_batch(hub, keypairs, EchoSms(hub, store_first=True), "R-3")
    assert await sms_rows(hub, campaign_id) == ENDED
    assert sorted(await index(hub)) == [(1, "delivered"), (1, "failed")]


async def test_what_a_failed_send_held_goes_to_the_queue(hub: Hub, keypairs: KEYS) -> None:
    provider = EchoSms(hub, fail=True)
    worker = sms_worker(hub, provider)
    campaign = await hub.router.route(await post(hub, keypairs, cap("R-4")))
    assert campaign is not None
    [batch] = await queued(hub, CHANNEL_QUEUES[Channel.SMS])
    with pytest.raises(OSError):
        await worker.handle(batch)  # the batch is not acked: the broker hands it out again
    # The first language's chunk failed (the batch stops there): its receipt is queued.
    assert provider.receipts.qsize() == 1 and provider.receipts.holding == 0
    assert [m for m in await queued(hub, EVENTS_QUEUE) if m.topic == EVENTS_QUEUE] == []


async def test_a_receipt_for_a_part_of_an_earlier_try_does_not_end_this_one(hub: Hub, keypairs: KEYS) -> None:
    provider = EchoSms(hub, receipted=())
    original = provider.send

    async def with_stray(sms: SmsText, numbers: Sequence[str], *,
                         tags: Sequence[object] | None = None) -> list[SmsOutcome]:
        # A receipt with this delivery's tag but another submit id (a superseded part).
        assert tags is not None
        provider.receipts.put_nowait(Receipt("77", "UNDELIV", tag=tags[0], part=1, parts=1, submit_id="77"))
        return await original(sms, numbers, tags=tags)

    provider.send = with_stray  # type: ignore[method-assign]
    campaign_id = await send_one_batch(hub, keypairs, provider, "R-5")
    assert [s for s, *_ in await sms_rows(hub, campaign_id)] == ["submitted", "submitted"]
    assert Decimal(str(await hub.store.campaign_cost(campaign_id))) == SMS_PRICE_EUR * 2
