"""The SMS simulator's late receipts: submitted first, the outcome later as receipts that the
SMPP path reads the same way."""

from __future__ import annotations

import asyncio

import pytest

from hub.outputs.simulator import SimulatorSmsProvider
from hub.outputs.sms_text import sms_text
from tests.outputs.test_sms_text import info


async def test_late_receipts_come_per_part_with_their_tags() -> None:
    provider = SimulatorSmsProvider(delivery_ratio=0.5, late_share=1.0, late_after=(0.01, 0.05), seed=3)
    sms = sms_text(info(headline="Rook " * 40), prefix="BE-Alert:", max_parts=3)
    assert sms.part_count == 2
    outcomes = await provider.send(sms, ["+32477000001", "+32477000002", "+32477000003"], tags=[11, 12, 13])
    assert all(o.ok and len(o.message_ids) == 2 for o in outcomes)
    receipts = [await asyncio.wait_for(provider.receipts.get(), 1) for _ in range(6)]
    assert sorted((r.tag, r.part, r.parts) for r in receipts) == [
        (t, p, 2) for t in (11, 12, 13) for p in (1, 2)]
    assert all(r.final for r in receipts) and {r.state for r in receipts} <= {"DELIVRD", "UNDELIV"}
    by_tag = {(r.tag, r.state) for r in receipts}
    assert len(by_tag) == 3  # the parts of one SMS share their fate
    ids = {r.message_id for r in receipts}
    assert ids == {m for o in outcomes for m in o.message_ids}
    await provider.close()


async def test_no_late_share_means_immediate_outcomes_and_close_drops_pending() -> None:
    provider = SimulatorSmsProvider(seed=1)
    outcomes = await provider.send(sms_text(info(), prefix="BE-Alert:"), ["+32477000001"])
    assert outcomes[0].message_ids == () and provider.receipts.empty()
    later = SimulatorSmsProvider(late_share=1.0, late_after=(10, 10))
    await later.send(sms_text(info(), prefix="BE-Alert:"), ["+32477000001"])
    await later.close()  # the pending receipt is dropped, not left running
    assert later.receipts.empty()
    with pytest.raises(ValueError, match="late_share"):
        SimulatorSmsProvider(late_share=2)
