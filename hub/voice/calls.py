"""What a call came to, and what that means for its delivery. Pure: no I/O.

A SIP call ends in one of five outcomes (:class:`CallOutcome`): answered (with the seconds
played), busy (486, 600), no answer (480, 408, 487 after our CANCEL, or our ring timeout),
declined (603) and failed (any other final answer, a network error, a number not dialable).
:func:`classify` reads them from what the user agent reported; :func:`settle_call` turns one
into the delivery's next step: final (delivered or failed, with billed minutes and cost) or
another attempt after the retry interval. Busy and no answer are retried up to the attempt
budget; with confirmation asked, an answered call whose listener did not press 1 is retried
too. Only answered calls are charged: started minutes of what was played.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from hub.domain import DeliveryState, Phone
from hub.members.phones import parse_phone
from hub.voice.script import VOICE_PRICE_EUR, billed_minutes, call_cost

CONFIRM_DIGIT = "1"
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_CODE = re.compile(r"^([1-6][0-9]{2})\b")
BUSY_CODES = frozenset({486, 600})
NO_ANSWER_CODES = frozenset({408, 480, 487})
DECLINED_CODES = frozenset({603})


class CallOutcome(StrEnum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no answer"
    DECLINED = "declined"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the campaign was cancelled at the last moment: never dialled


# Called by a provider right before it dials: False means "do not dial" (a Cancel came). The
# worker admits the call on its pacer there, so the recorded start is the dial itself.
Gate = Callable[[], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class CallResult:
    """One call. ``code`` is the SIP status that ended it, when one did; ``reason`` says the
    rest in words; ``transient``: a failure on our side (the user agent stopped), worth
    another attempt."""

    outcome: CallOutcome
    seconds: float = 0.0
    confirmed: bool = False
    code: int | None = None
    reason: str = ""
    transient: bool = False


def dialable(number: str) -> str | None:
    """Why ``number`` cannot be dialled, or None: calls go to E.164 numbers only."""
    if not _E164.fullmatch(number):
        return f"not dialable: {len(number)} characters, not an E.164 number (+ and 7 to 15 digits)"
    return None


def caller_number(text: str) -> str:
    """The caller identity setting (``0477 77 77 55``, ``+32 ...``) in E.164; ValueError
    naming what is wrong."""
    parsed = parse_phone(text)
    if not isinstance(parsed, Phone):
        raise ValueError(parsed)
    return parsed.number


def sip_uri(number: str, domain: str) -> str:
    """The request URI that dials ``number`` through the trunk at ``domain`` (host[:port])."""
    return f"sip:{number}@{domain};user=phone"


def classify(reason: str, *, established: bool, seconds: float = 0.0, timed_out: bool = False,
             digits: str = "") -> CallResult:
    """A call's outcome from the user agent's report: whether it was answered, for how long,
    the reason it closed with ("486 Busy Here", "end of file", "Connection timed out"...),
    whether our ring timeout ended it, and the digits the listener pressed."""
    if established:
        return CallResult(CallOutcome.ANSWERED, max(0.0, seconds), CONFIRM_DIGIT in digits,
                          reason=f"answered, {seconds:.0f} s played")
    m = _CODE.match(reason.strip())
    code = int(m.group(1)) if m else None
    if code in BUSY_CODES:
        return CallResult(CallOutcome.BUSY, code=code, reason=reason.strip())
    if code in DECLINED_CODES:
        return CallResult(CallOutcome.DECLINED, code=code, reason=reason.strip())
    if code in NO_ANSWER_CODES or (code is None and timed_out):
        return CallResult(CallOutcome.NO_ANSWER, code=code,
                          reason=reason.strip() if code else "no answer within the ring timeout")
    return CallResult(CallOutcome.FAILED, code=code, reason=reason.strip() or "call failed")


@dataclass(frozen=True, slots=True)
class CallSettlement:
    """What a delivery comes to after one call: final (``retry`` false) with its state,
    reason, billed minutes and cost, or another attempt."""

    state: DeliveryState
    reason: str
    minutes: int
    cost_eur: Decimal
    retry: bool


def settle_call(result: CallResult, *, attempt: int, attempts: int, confirm: bool,
                price_per_minute: Decimal = VOICE_PRICE_EUR) -> CallSettlement:
    """The delivery's next step after call number ``attempt`` (1-based) of ``attempts``."""
    if result.outcome is CallOutcome.CANCELLED:
        return CallSettlement(DeliveryState.CANCELLED, "cancelled", 0, Decimal(0), False)
    minutes = billed_minutes(result.seconds) if result.outcome is CallOutcome.ANSWERED else 0
    cost = call_cost(minutes, price_per_minute)
    last = attempt >= attempts
    if result.outcome is CallOutcome.ANSWERED:
        if result.confirmed:
            return CallSettlement(DeliveryState.DELIVERED, f"{result.reason}, confirmed", minutes, cost,
                                  False)
        if confirm and not last:
            return CallSettlement(DeliveryState.QUEUED, f"{result.reason}, not confirmed", minutes, cost,
                                  True)
        suffix = ", not confirmed" if confirm else ""
        return CallSettlement(DeliveryState.DELIVERED, result.reason + suffix, minutes, cost, False)
    retryable = result.outcome in (CallOutcome.BUSY, CallOutcome.NO_ANSWER) or result.transient
    reason = f"{result.outcome.value}: {result.reason}" if result.reason else result.outcome.value
    if retryable and not last:
        return CallSettlement(DeliveryState.QUEUED, reason, 0, Decimal(0), True)
    if retryable:
        reason += f" (after {attempt} attempts)"
    return CallSettlement(DeliveryState.FAILED, reason, 0, Decimal(0), False)
