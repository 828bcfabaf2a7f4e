"""Phone numbers as coordinators write them → ``Phone`` in E.164, or the reason why not.

Pure: no I/O. ``phonenumbers`` does the judging (validity and the kind of line, from its
metadata); parsing a free-form string with it costs ~33 µs, so the usual Belgian shapes
(``0477 12 34 56``, ``+32 477/12.34.56``, ``0032 2 511 22 33``, ``(02) 511.22.33``) take a
fast path: we strip the punctuation ourselves and classify the national number with
phonenumbers' own BE metadata, its patterns compiled once (``_Classifier``: the steps of
``phonenumbers.number_type``, which a test holds equal), ~4 µs. Anything else (foreign
numbers, ``+32 (0)477…``, letters, extensions) goes through ``phonenumbers.parse``. Results
are cached per string.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneMetadata,
    PhoneNumber,
    PhoneNumberDesc,
    PhoneNumberType,
    ValidationResult,
)

from hub.domain import Phone, PhoneKind

DEFAULT_REGION = "BE"
MAX_LENGTH = 64  # longer than any number written with spaces, an extension and a label
# Repeats are what a cache helps with (a household's landline on several rows, the same list
# imported again, API bodies); unique numbers only cost its upkeep, so it stays small.
CACHE_SIZE = 8192

_KINDS = {
    PhoneNumberType.MOBILE: PhoneKind.MOBILE,
    PhoneNumberType.FIXED_LINE: PhoneKind.FIXED,
    # Belgium has no such numbers; elsewhere (US, ...) a mobile is the kind that lets us try SMS.
    PhoneNumberType.FIXED_LINE_OR_MOBILE: PhoneKind.MOBILE,
}
_PUNCTUATION = str.maketrans("", "", " ./-()\u00a0\t")
# After the punctuation is gone: +32, 0032 or the trunk 0, then 8 (fixed) or 9 (mobile) digits.
_BELGIAN = re.compile(r"(?:\+32|0032|0)([1-9][0-9]{7,8})")
_NEIGHBOURS = ("FR", "NL", "DE", "LU")
_WHY = {
    ValidationResult.TOO_SHORT: " (too short)",
    ValidationResult.TOO_LONG: " (too long)",
    ValidationResult.INVALID_COUNTRY_CODE: " (unknown country code)",
    ValidationResult.INVALID_LENGTH: " (wrong length)",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: " (too short)",
}


def parse_phone(text: str, region: str = DEFAULT_REGION) -> Phone | str:
    """The number in ``text`` as a ``Phone`` (E.164 and its kind), or a refusal reason that
    quotes ``text``. ``region`` is where numbers without a country code belong."""
    return _parse_cached(text.strip(), region)


def phone_kind(number: PhoneNumber) -> PhoneKind:
    return _KINDS.get(phonenumbers.number_type(number), PhoneKind.OTHER)


def display(number: str) -> str:
    """An E.164 number written as a Belgian dials it: ``0477 12 34 56``, ``00 33 6 12 34 56 78``.
    Spreadsheets keep these as text (a leading ``+`` makes Excel read a formula)."""
    return phonenumbers.format_out_of_country_calling_number(phonenumbers.parse(number), "BE")


@lru_cache(maxsize=CACHE_SIZE)
def _parse_cached(text: str, region: str) -> Phone | str:
    if not text:
        return "no number given"
    if len(text) > MAX_LENGTH:
        return f"{text[:20]!r}... is too long to be a phone number"
    if region == "BE":
        fast = _belgian(text)
        if fast is not None:
            return fast
    return _parse_full(text, region)


class _Classifier:
    """``phonenumbers.number_type`` for the national numbers of one region, without building
    a ``PhoneNumber`` and with the patterns compiled once: the same steps in the same order
    (``_number_type_helper`` in phonenumbers), about four times faster."""

    _ORDER = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager",
              "uan", "voicemail")

    def __init__(self, region: str) -> None:
        metadata = PhoneMetadata.metadata_for_region(region)
        assert metadata is not None, region
        self.general = self._desc(metadata.general_desc)
        self.others = [(getattr(PhoneNumberType, name.upper()), self._desc(getattr(metadata, name)))
                       for name in self._ORDER]
        self.fixed = self._desc(metadata.fixed_line)
        self.mobile = self._desc(metadata.mobile)
        self.same = bool(metadata.same_mobile_and_fixed_line_pattern)

    @staticmethod
    def _desc(desc: PhoneNumberDesc | None) -> tuple[frozenset[int], re.Pattern[str]] | None:
        if desc is None or not desc.national_number_pattern:
            return None
        return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)

    @staticmethod
    def _matches(national: str, desc: tuple[frozenset[int], re.Pattern[str]] | None) -> bool:
        if desc is None:
            return False
        lengths, pattern = desc
        if lengths and len(national) not in lengths:
            return False
        return pattern.fullmatch(national) is not None

    def number_type(self, national: str) -> int:
        if not self._matches(national, self.general):
            return PhoneNumberType.UNKNOWN
        for kind, desc in self.others:
            if self._matches(national, desc):
                return int(kind)
        if self._matches(national, self.fixed):
            if self.same or self._matches(national, self.mobile):
                return PhoneNumberType.FIXED_LINE_OR_MOBILE
            return PhoneNumberType.FIXED_LINE
        if not self.same and self._matches(national, self.mobile):
            return PhoneNumberType.MOBILE
        return PhoneNumberType.UNKNOWN


_BE = _Classifier("BE")


def _belgian(text: str) -> Phone | None:
    match = _BELGIAN.fullmatch(text.translate(_PUNCTUATION))
    if match is None:
        return None
    national = match.group(1)
    kind = _BE.number_type(national)
    if kind == PhoneNumberType.UNKNOWN:  # not valid: let the full parse word the reason
        return None
    return Phone("+32" + national, _KINDS.get(kind, PhoneKind.OTHER))


def _parse_full(text: str, region: str) -> Phone | str:
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return f"{text!r} is not a phone number"
    if phonenumbers.is_valid_number(number):
        return Phone(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
                     phone_kind(number))
    why = _WHY.get(phonenumbers.is_possible_number_with_reason(number), "")
    if not why.endswith("short)") and not text.translate(_PUNCTUATION).startswith(("+", "0")):
        return _without_country_code(text, region)
    return f"{text!r} is not a valid number{why}"


def _without_country_code(text: str, region: str) -> str:
    """A number with neither a country code nor a trunk 0 that is not valid in ``region``:
    most often a foreign number whose +33 (or +31...) was left out."""
    hint = "+33..."
    for other in _NEIGHBOURS:
        if other == region:
            continue
        try:
            number = phonenumbers.parse(text, other)
        except NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            hint = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL) + "?"
            break
    country = "a Belgian" if region == "BE" else f"a {region}"
    return f"{text!r} is not {country} number and has no country code ({hint})"
