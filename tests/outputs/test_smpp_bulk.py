"""The bulk submit path (one text to many numbers, no coroutine per submit_sm) against the
node-smpp SMSC: what the SMSC decoded, throttling, a bad number, a dropped connection, and the
provider falling back to the ordinary path for what a lost bind did not take."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from hub.outputs.gsm import split_gsm7, split_ucs2
from hub.outputs.smpp import ConnectionLost, Pool, SmppSession, SubmitRefused
from hub.outputs.smpp import pdu as p
from hub.outputs.smpp.bulk import submit_many
from hub.outputs.smpp.submit import SubmitBodies
from hub.outputs.sms_smpp import BULK_FROM, SmppSmsProvider
from hub.outputs.sms_text import SmsEncoding, SmsText
from tests.outputs.test_smpp_session import LONG_FR, UCS2_FR, StartSmsc, closing, opened, smsc

__all__ = ["closing", "smsc"]


@pytest.mark.parametrize(("source", "coding", "message", "esm"), [
    ("1789", 0, b"BE-Alert: Brand", 0), ("+32470999999", 8, "é ’".encode("utf-16-be"), 0),
    ("BE-Alert", 0, p.udh_concat(7, 2, 1) + b"part one", p.ESM_UDHI)])
def test_templated_bodies_equal_sm_body(source: str, coding: int, message: bytes, esm: int) -> None:
    bodies = SubmitBodies()
    ton, npi = (1, 1) if source.startswith("+") else (3, 0) if source.isdigit() else (5, 0)
    src = source.lstrip("+") if ton == 1 else source
    for dest in ("32470000001", "447911123456", "1"):
        built = bodies._body(dest, src, ton, npi, coding, True, message, esm, {})
        assert built == p.sm_body(p.SubmitSm(
            sequence_number=0, source_addr_ton=ton, source_addr_npi=npi, source_addr=src, dest_addr_ton=1,
            dest_addr_npi=1, destination_addr=dest, esm_class=esm, registered_delivery=1, data_coding=coding,
            short_message=message))


@pytest.mark.parametrize(("parts", "concat"), [
    ([b"BE-Alert: Brand"], "udh"), ([b"x" * 200], "sar"), ([b"x" * 255], "udh"), ([b"short"], "payload"),
    ([b"part one", b"part two"], "udh"), ([b"part one", b"part two"], "sar")])
def test_one_text_to_many_numbers_is_what_each_number_alone_gets(parts: list[bytes], concat: Any) -> None:
    dests = ["+32470000001", " 32470000002 ", "0470000003", "+447911123456", "not a number", "+3212"]
    for source in ("1789", "+32470999999", "BE-Alert"):
        many = SubmitBodies().many(dests, parts, 0, source, True, concat=concat)
        one = SubmitBodies()
        for dest, got in zip(dests, many, strict=True):
            try:
                expected: Any = one.bodies(dest, parts, 0, source, True, concat=concat)
            except SubmitRefused as exc:
                assert isinstance(got, SubmitRefused) and str(got) == str(exc)
                continue
            if len(parts) > 1:  # each message its own concatenation reference: compare the rest
                assert isinstance(got, tuple) and len(got[0]) == len(expected[0])
                continue
            assert got == expected


async def test_many_numbers_one_text_as_the_smsc_decodes_them(smsc: StartSmsc, closing: list[Any]) -> None:
    peer = smsc()
    s = await opened(peer, closing, window=8)  # more messages than the window: slots are waited for
    numbers = [f"+3247100{i:04d}" for i in range(40)]
    results = await submit_many(s, [(n, i) for i, n in enumerate(numbers)], split_gsm7(LONG_FR), 0, "1789")
    subs = peer.wait_submits(120)  # its lines are read as they come
    assert all(isinstance(r, list) and len(r) == 3 for r in results)
    assert {mid for r in results if isinstance(r, list) for mid in r} == {e["message_id"] for e in subs}
    by_dest: dict[str, list[dict[str, Any]]] = {}
    for e in subs:
        by_dest.setdefault(e["destination"], []).append(e)
    assert sorted(by_dest) == sorted(n[1:] for n in numbers)
    for parts in by_dest.values():
        parts.sort(key=lambda e: e["udh"]["seq"])
        assert len({e["udh"]["ref"] for e in parts}) == 1
        assert "".join(e["text"] for e in parts) == LONG_FR


async def test_throttled_parts_go_again_and_a_bad_number_is_refused(smsc: StartSmsc,
                                                                    closing: list[Any]) -> None:
    peer = smsc("--throttle-every", "7")
    s = await opened(peer, closing)
    numbers = [f"3247200{i:04d}" for i in range(50)] + ["not a number"]
    results = await submit_many(s, [(n, None) for n in numbers], split_ucs2(UCS2_FR), 8, "1789")
    assert isinstance(results[-1], SubmitRefused) and results[-1].permanent
    assert all(isinstance(r, list) and len(r) == 3 for r in results[:-1])
    for _ in range(100):  # its lines are read as they come
        if len(peer.submits(accepted_only=True)) >= 150:
            break
        await asyncio.sleep(0.02)
    assert any(e["status"] == 0x58 for e in peer.submits())
    accepted = Counter(e["destination"] for e in peer.submits(accepted_only=True))
    assert accepted == Counter({n: 3 for n in numbers[:-1]})


async def test_a_dropped_connection_fails_what_had_no_response_with_the_parts_that_went(
        smsc: StartSmsc) -> None:
    peer = smsc("--drop-after", "30")
    s = SmppSession("127.0.0.1", peer.port, system_id="caphub", password="secret")
    await s.open()
    messages: list[tuple[str, object]] = [(f"3247300{i:04d}", i) for i in range(50)]
    results = await submit_many(s, messages, split_gsm7(LONG_FR), 0, "1789")
    await s.close()
    peer.wait_submits(sum(3 if isinstance(r, list) else 3 - r.message_ids.count(None) for r in results),
                      timeout=2)
    accepted = Counter(e["destination"] for e in peer.submits(accepted_only=True))
    for i, r in enumerate(results):
        dest = f"3247300{i:04d}"
        if isinstance(r, list):
            assert accepted[dest] == 3
        else:
            assert isinstance(r, ConnectionLost) and len(r.message_ids) == 3 and r.ref is not None
            assert sum(m is not None for m in r.message_ids) == accepted[dest]
    assert any(isinstance(r, ConnectionLost) for r in results)


async def test_the_provider_sends_the_rest_after_a_drop_each_part_once(smsc: StartSmsc) -> None:
    peer = smsc("--drop-after", "40")
    pool = Pool("127.0.0.1", peer.port, system_id="caphub", password="secret", binds=2, reconnect_min=0.05)
    provider = SmppSmsProvider(pool, "1789", attempts=5)
    await provider.open()
    try:
        numbers = [f"+3247400{i:04d}" for i in range(60)]
        parts = split_gsm7(LONG_FR)
        sms = SmsText(text=LONG_FR, encoding=SmsEncoding.GSM7, parts=tuple(parts))
        outcomes = await provider.send(sms, numbers, tags=list(range(60)))
    finally:
        await provider.close()
    assert peer.of("drop"), "the SMSC dropped nothing"
    assert all(o.ok and len(o.message_ids) == 3 for o in outcomes)
    peer.wait_submits(180)
    accepted = Counter((e["destination"], e["udh"]["seq"]) for e in peer.submits(accepted_only=True))
    assert accepted == Counter({(n[1:], k): 1 for n in numbers for k in (1, 2, 3)})


async def test_a_cancelled_send_cancels_its_resends() -> None:
    """The bulk path hands numbers whose bind was lost to resends of their own; when the
    caller gives up (a Cancel stops the worker's chunk), none of them may go on submitting."""
    started: list[str] = []
    cancelled: list[str] = []

    class LosingPool:
        pacer = None
        live = 1

        async def submit_many(self, items: Any, *args: Any) -> list[object]:
            return [ConnectionLost("bind lost") for _ in items]

        async def submit(self, number: str, *args: Any, **kwargs: Any) -> list[str]:
            started.append(number)
            try:
                await asyncio.sleep(30)  # a slow reconnect
            except asyncio.CancelledError:
                cancelled.append(number)
                raise
            return ["id"]

    provider = SmppSmsProvider(LosingPool(), "1789")  # type: ignore[arg-type]
    numbers = [f"+3247000{i:04d}" for i in range(BULK_FROM)]
    sms = SmsText(text="Rook", encoding=SmsEncoding.GSM7, parts=tuple(split_gsm7("Rook")))
    send = asyncio.ensure_future(provider.send(sms, numbers))
    for _ in range(100):
        if len(started) == len(numbers):
            break
        await asyncio.sleep(0.01)
    assert sorted(started) == numbers
    send.cancel()
    with pytest.raises(asyncio.CancelledError):
        await send
    await asyncio.sleep(0)
    assert sorted(cancelled) == numbers
