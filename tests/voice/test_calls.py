"""Call outcomes and what they mean for a delivery, pure; the control protocol's framing."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hub.domain import DeliveryState
from hub.voice.baresip import BaresipLine, LineConfig, UaError, account_line, netstring, parse_netstrings
from hub.voice.calls import CallOutcome, CallResult, caller_number, classify, dialable, settle_call, sip_uri


@pytest.mark.parametrize(("reason", "outcome", "code"), [
    ("486 Busy Here", CallOutcome.BUSY, 486),
    ("600 Busy Everywhere", CallOutcome.BUSY, 600),
    ("480 Temporarily Unavailable", CallOutcome.NO_ANSWER, 480),
    ("408 Request Timeout", CallOutcome.NO_ANSWER, 408),
    ("487 Request Terminated", CallOutcome.NO_ANSWER, 487),
    ("603 Decline", CallOutcome.DECLINED, 603),
    ("404 Not Found", CallOutcome.FAILED, 404),
    ("503 Service Unavailable", CallOutcome.FAILED, 503),
    ("Connection refused", CallOutcome.FAILED, None),
    ("", CallOutcome.FAILED, None),
])
def test_unanswered_calls_are_classified_by_their_status(reason: str, outcome: CallOutcome,
                                                         code: int | None) -> None:
    result = classify(reason, established=False)
    assert (result.outcome, result.code, result.seconds) == (outcome, code, 0.0)


def test_answered_timed_out_and_confirmed() -> None:
    assert classify("end of file", established=True, seconds=42.4) == CallResult(
        CallOutcome.ANSWERED, 42.4, False, reason="answered, 42 s played")
    timed_out = classify("Connection reset by user", established=False, timed_out=True)
    assert timed_out.outcome is CallOutcome.NO_ANSWER
    assert classify("end of file", established=True, seconds=3, digits="21").confirmed
    assert not classify("end of file", established=True, seconds=3, digits="2").confirmed


def test_settlement_retries_busy_and_unanswered_then_fails_uncharged() -> None:
    busy = CallResult(CallOutcome.BUSY, code=486, reason="486 Busy Here")
    first = settle_call(busy, attempt=1, attempts=3, confirm=False)
    assert (first.state, first.retry, first.minutes, first.cost_eur) == (DeliveryState.QUEUED, True, 0, 0)
    last = settle_call(busy, attempt=3, attempts=3, confirm=False)
    assert (last.state, last.retry) == (DeliveryState.FAILED, False)
    assert last.reason == "busy: 486 Busy Here (after 3 attempts)" and last.cost_eur == 0
    declined = settle_call(CallResult(CallOutcome.DECLINED, code=603, reason="603 Decline"), attempt=1,
                           attempts=3, confirm=False)
    assert (declined.state, declined.retry) == (DeliveryState.FAILED, False)
    assert declined.reason == "declined: 603 Decline"
    transient = settle_call(CallResult(CallOutcome.FAILED, reason="user agent stopped", transient=True),
                            attempt=1, attempts=2, confirm=False)
    assert transient.retry


def test_answered_calls_are_billed_per_started_minute() -> None:
    answered = CallResult(CallOutcome.ANSWERED, 61.0, reason="answered, 61 s played")
    done = settle_call(answered, attempt=1, attempts=3, confirm=False)
    assert (done.state, done.minutes, done.retry) == (DeliveryState.DELIVERED, 2, False)
    assert done.cost_eur == Decimal("0.1100")
    assert settle_call(answered, attempt=1, attempts=3, confirm=False,
                       price_per_minute=Decimal("0.08")).cost_eur == Decimal("0.1600")


def test_with_confirmation_an_unconfirmed_answer_is_tried_again() -> None:
    answered = CallResult(CallOutcome.ANSWERED, 20.0, reason="answered, 20 s played")
    again = settle_call(answered, attempt=1, attempts=2, confirm=True)
    assert again.retry and again.minutes == 1  # billed all the same: someone picked up
    final = settle_call(answered, attempt=2, attempts=2, confirm=True)
    assert (final.state, final.reason) == (DeliveryState.DELIVERED, "answered, 20 s played, not confirmed")
    confirmed = settle_call(CallResult(CallOutcome.ANSWERED, 20.0, True, reason="answered, 20 s played"),
                            attempt=1, attempts=2, confirm=True)
    assert (confirmed.state, confirmed.retry) == (DeliveryState.DELIVERED, False)
    assert confirmed.reason.endswith("confirmed")


def test_numbers_and_uris() -> None:
    assert dialable("+32477123456") is None and dialable("+14155550100") is None
    for bad in ("0477123456", "+32 477", "+0123456789", "32477123456", "+1234", "+12345678901234567", ""):
        assert dialable(bad) is not None
    assert caller_number("0477 77 77 55") == "+32477777755"
    assert caller_number("+33 6 12 34 56 78") == "+33612345678"
    with pytest.raises(ValueError):
        caller_number("call me")
    assert sip_uri("+32477123456", "trunk.example:5060") == "sip:+32477123456@trunk.example:5060;user=phone"


def test_account_lines() -> None:
    assert account_line("+32477777755", domain="127.0.0.1:5080") == \
        "<sip:+32477777755@127.0.0.1:5080>;regint=0;answermode=manual"
    line = account_line("+32477777755", domain="trunk.example", registrar="reg.example", username="hub",
                        password="s3cret", outbound_proxy="proxy.example:5060", display="BE-Alert")
    assert line == ('"BE-Alert" <sip:+32477777755@reg.example>;regint=3600;answermode=manual;auth_user=hub;'
                    'auth_pass=s3cret;outbound="sip:proxy.example:5060;lr"')


def test_netstrings() -> None:
    buf = bytearray(netstring({"command": "dial", "params": "sip:x", "token": "1"}) + b'14:{"event":true')
    [msg] = parse_netstrings(buf)
    assert msg == {"command": "dial", "params": "sip:x", "token": "1"}
    assert buf == b'14:{"event":true'  # incomplete: kept for the next read
    buf += b"},"
    assert parse_netstrings(buf) == [{"event": True}] and buf == b""


def test_a_garbled_netstring_is_refused_without_its_bytes() -> None:
    """A broken frame is an error that does not quote what it holds (a dialled number)."""
    with pytest.raises(UaError) as caught:
        parse_netstrings(bytearray(b'{"params":"sip:+32477123456"}:x,'))
    assert "32477123456" not in str(caught.value) and "not a number" in str(caught.value)


def test_a_call_cancelled_at_the_gate_is_a_cancelled_delivery() -> None:
    settled = settle_call(CallResult(CallOutcome.CANCELLED, reason="cancelled"), attempt=1, attempts=3,
                          confirm=True)
    assert (settled.state, settled.retry, settled.minutes, settled.cost_eur) == (
        DeliveryState.CANCELLED, False, 0, 0)


async def test_a_late_close_of_the_previous_call_does_not_end_the_next(tmp_path: Path) -> None:
    """The previous call's CALL_CLOSED arriving after the next dial is skipped: the next call
    ends with its own close, with its own outcome."""
    events: list[dict[str, Any]] = []

    class Line(BaresipLine):
        async def command(self, command: str, params: str = "") -> dict[str, Any]:
            for event in events:  # what baresip says after this command
                self._events.put_nowait(event)
            events.clear()
            return {"ok": True, "data": ""}

    line = Line(0, LineConfig("baresip", "127.0.0.1", "<sip:hub@127.0.0.1>", tmp_path))
    events[:] = [{"class": "call", "type": "CALL_ESTABLISHED", "id": "a"},
                 {"class": "call", "type": "CALL_CLOSED", "id": "a", "param": "bye"}]
    first = await line.call("sip:1@x", tmp_path / "a.wav", ring_timeout=2.0, max_seconds=5.0)
    assert first.established
    events[:] = [{"class": "call", "type": "CALL_CLOSED", "id": "a", "param": "late"},
                 {"class": "call", "type": "CALL_RINGING", "id": "b"},
                 {"class": "call", "type": "CALL_CLOSED", "id": "b", "param": "486 Busy Here"}]
    second = await line.call("sip:2@x", tmp_path / "a.wav", ring_timeout=2.0, max_seconds=5.0)
    assert not second.established and second.reason == "486 Busy Here"
