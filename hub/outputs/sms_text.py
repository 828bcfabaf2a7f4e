"""The SMS text of one ``<info>``, in BE-Alert style, and its parts.

Pure: the prefix, the number of parts and the policy are passed in.

**Text.** ``PREFIX HEADLINE. INSTRUCTION WEB``: the prefix is a setting (``"BE-Alert:"``);
the headline (or, without one, the event) gets a full stop unless it already ends with
punctuation; the instruction (or, without one, the description) follows; ``<web>`` ends it.
The text is NFC-normalised and runs of white space (line breaks, no-break spaces) become
one space.

**Fitting.** When the whole text does not fit in ``max_parts`` parts, the headline and
instruction are cut at a word boundary and an ellipsis added (``...`` in GSM-7, ``…`` in UCS-2),
keeping the prefix and the web link; when not even one word fits beside the link, the link
goes too. The longest text that fits wins, in whichever encoding it needs: cutting may drop
the one character that forced UCS-2, and then the text is sent in GSM-7.

**Encoding.** GSM-7 when every character is in GSM 03.38 (see :mod:`hub.outputs.gsm`).
Otherwise, with the ``"ucs2"`` policy, UCS-2; with ``"downgrade"``, the text is rewritten
(:func:`hub.outputs.gsm.downgrade`) and sent in GSM-7 if it now fits, the replacements being
reported; if some character still has no GSM-7 form (an emoji), it goes in UCS-2 with the
original letters, since the rewrite would then save nothing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from hub.cap.model import Info
from hub.outputs.gsm import downgrade, is_gsm7, split_gsm7, split_ucs2

Policy = Literal["ucs2", "downgrade"]

SMS_PRICE_EUR = Decimal("0.055")  # BE-Alert's price per part, excl. VAT

_TERMINAL = (".", "!", "?", ":", ";", "…")
_TRAILING_PUNCT = ",;:-–—([{'\"«"


class SmsEncoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"

    @property
    def data_coding(self) -> int:
        """The SMPP ``data_coding``: 0 (SMSC default alphabet) or 8 (UCS-2)."""
        return 0 if self is SmsEncoding.GSM7 else 8


@dataclass(frozen=True, slots=True)
class SmsText:
    """The final SMS: its text, encoding and parts (unpacked septets or UTF-16BE, without
    UDH), the downgrade replacements made, and whether it was cut to fit."""

    text: str
    encoding: SmsEncoding
    parts: tuple[bytes, ...]
    replacements: tuple[tuple[str, str], ...] = ()
    truncated: bool = False

    @property
    def part_count(self) -> int:
        return len(self.parts)

    @property
    def data_coding(self) -> int:
        return self.encoding.data_coding


def sms_cost(parts: int, price_eur: Decimal | str | float = SMS_PRICE_EUR) -> Decimal:
    """What ``parts`` SMS parts cost, in euro (BE-Alert bills per 160-character part)."""
    if parts < 0:
        raise ValueError("parts must not be negative")
    return Decimal(str(price_eur)) * parts


def _clean(text: str | None) -> str:
    if not text:
        return ""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _body(info: Info) -> str:
    headline = _clean(info.headline) or _clean(info.event)
    if headline and not headline.endswith(_TERMINAL):
        headline += "."
    rest = _clean(info.instruction) or _clean(info.description)
    return " ".join(s for s in (headline, rest) if s)


def _render(
    prefix: str, body: str, cut: bool, web: str, policy: Policy,
) -> tuple[str, SmsEncoding, list[bytes], list[tuple[str, str]]]:
    """One candidate text, in the encoding it needs, with its parts."""
    segments = [prefix, body, web]
    if policy == "downgrade":
        rewritten = [downgrade(s) for s in segments]
        gsm_segments = [s for s, _ in rewritten]
        repl = list(dict.fromkeys(r for _, rs in rewritten for r in rs))
    else:
        gsm_segments, repl = segments, []
    text = _join(gsm_segments[0], gsm_segments[1] + ("..." if cut else ""), gsm_segments[2])
    if is_gsm7(text):
        return text, SmsEncoding.GSM7, split_gsm7(text), repl
    text = _join(prefix, body + ("…" if cut else ""), web)
    return text, SmsEncoding.UCS2, split_ucs2(text), []


def _join(*segments: str) -> str:
    return " ".join(s for s in segments if s)


def _cut_points(body: str) -> list[int]:
    """Lengths at which ``body`` may be cut: word ends, trailing punctuation left out."""
    points: list[int] = []
    for m in re.finditer(r"\S+", body):
        end = m.end()
        while end > m.start() and body[end - 1] in _TRAILING_PUNCT:
            end -= 1
        if end > m.start() and (not points or points[-1] < end):
            points.append(end)
    return points


def sms_text(
    info: Info, *, prefix: str, max_parts: int = 3, policy: Policy = "ucs2",
) -> SmsText:
    """The SMS for ``info``: see the module docstring for the text, fitting and encoding."""
    if max_parts < 1:
        raise ValueError("max_parts must be at least 1")
    if policy not in ("ucs2", "downgrade"):
        raise ValueError(f"unknown SMS policy {policy!r}")
    prefix, body, web = _clean(prefix), _body(info), _clean(info.web)

    text, enc, parts, repl = _render(prefix, body, False, web, policy)
    if len(parts) <= max_parts:
        return SmsText(text, enc, tuple(parts), tuple(repl))

    # Too long: the longest word-boundary cut of the body that fits, first with the link.
    points = _cut_points(body)
    for link in (web, ""):
        lo, hi, best = 0, len(points) - 1, -1
        while lo <= hi:  # the part count grows with the cut, so bisect
            mid = (lo + hi) // 2
            if len(_render(prefix, body[: points[mid]], True, link, policy)[2]) <= max_parts:
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
        if best >= 0:
            text, enc, parts, repl = _render(prefix, body[: points[best]], True, link, policy)
            return SmsText(text, enc, tuple(parts), tuple(repl), truncated=True)

    # Not even one word fits after the prefix: cut the whole text by characters.
    whole = _join(prefix, body, web)
    lo, hi = 0, len(whole)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(_render("", whole[:mid].rstrip(), True, "", policy)[2]) <= max_parts:
            lo = mid
        else:
            hi = mid - 1
    text, enc, parts, repl = _render("", whole[:lo].rstrip(), True, "", policy)
    return SmsText(text, enc, tuple(parts), tuple(repl), truncated=True)
