"""SMS delivery receipts that come after their send was stored: recorded, outcomes published.

With a real SMSC (:class:`hub.outputs.sms_smpp.SmppSmsProvider`) an SMS accepted by the SMSC
is *submitted*, not delivered. A receipt that comes while the worker still holds the SMS's
chunk is stored with the chunk's answers (:class:`hub.outputs.smpp.receipt_queue.ReceiptQueue`);
the others land here. :func:`track_receipts` reads the provider's receipt queue and records
each part's final receipt in the store (matched by the in-memory tag, else by message id, so
a receipt arriving hours later, after a restart, still finds its delivery); the write that
completes a delivery's last part ends it (delivered when every part was, else failed with
the receipt's state, ``UNDELIV err:...``), and its outcome goes to ``delivery.events`` for
the tracker, which then only looks at its campaign's end. A receipt for an id nobody knows
is dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

from hub.broker.base import Broker
from hub.domain import DeliveryState
from hub.outputs.smpp.receipts import Receipt, id_forms
from hub.outputs.sms_text import sms_cost
from hub.services.router import EVENTS_QUEUE
from hub.store.base import CampaignStore

log = logging.getLogger(__name__)

RECEIPT_BATCH = 1_000  # receipts stored and published together at most
RECEIPT_TRIES = 5  # attempts to record a batch of receipts (a busy store, a broker hiccup)
RECEIPT_RETRY = 0.5  # seconds before the 2nd attempt, growing linearly

# One outcome: (delivery id, state, reason, parts, cost in euro)
OutcomeRow = tuple[int, DeliveryState, str | None, int, float]


def outcomes_body(rows: Sequence[OutcomeRow]) -> bytes:
    """The body of one ``delivery.events`` message: a JSON list of outcomes."""
    return json.dumps([{"id": i, "state": s.value, "reason": r, "parts": p, "cost_eur": c}
                       for i, s, r, p, c in rows], separators=(",", ":")).encode()


def stored_body(campaign_id: int, count: int) -> bytes:
    """The body of a ``delivery.events`` message for outcomes their stage stored itself: the
    tracker has none to write, only the campaign's end to look at."""
    return json.dumps({"campaigns": [campaign_id], "stored": count}, separators=(",", ":")).encode()


def _receipt_row(receipt: Receipt) -> tuple[tuple[str, ...], int | None, int, int, bool, str | None]:
    tag = receipt.tag if isinstance(receipt.tag, int) else None
    # Correlated in memory: the one id the index holds (or will hold) for this part.
    forms = (receipt.submit_id,) if receipt.submit_id and tag is not None else id_forms(receipt.message_id)
    return forms, tag, receipt.part, receipt.parts, receipt.delivered, receipt.reason


async def record_receipts(store: CampaignStore, broker: Broker,
                          receipts: Sequence[Receipt]) -> list[OutcomeRow]:
    """Store final receipts per part (ending the deliveries they complete); publish (and
    return) the outcomes of the deliveries whose every part now has its receipt."""
    final = [r for r in receipts if r.final]
    if not final:
        return []
    done = await store.message_receipts([_receipt_row(r) for r in final])
    rows: list[OutcomeRow] = [
        (delivery_id, DeliveryState.DELIVERED if ok else DeliveryState.FAILED, reason, parts,
         float(sms_cost(parts)))
        for delivery_id, ok, reason, parts in done]
    if rows:
        await broker.publish(EVENTS_QUEUE, outcomes_body(rows))
    return rows


async def track_receipts(store: CampaignStore, broker: Broker, queue: asyncio.Queue[Receipt]) -> None:
    """Run until cancelled: receipts from ``queue`` (the SMPP pool's), stored and published
    in batches of what has arrived (at most ``RECEIPT_BATCH``)."""
    while True:
        batch = [await queue.get()]
        while len(batch) < RECEIPT_BATCH and not queue.empty():
            batch.append(queue.get_nowait())
        # The SMSC has had its deliver_sm_resp: a batch dropped here is never sent again, and
        # its deliveries would wait as submitted until sms_wait. Recording again is harmless
        # (a part's receipt is stored once; the tracker ignores a repeated final outcome).
        for attempt in range(1, RECEIPT_TRIES + 1):
            try:
                await record_receipts(store, broker, batch)
                break
            except Exception:  # keep reading whatever happens
                log.exception("could not record %d delivery receipts (attempt %d of %d)", len(batch),
                              attempt, RECEIPT_TRIES)
                if attempt < RECEIPT_TRIES:
                    await asyncio.sleep(RECEIPT_RETRY * attempt)
