"""Numbers as coordinators write them."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import PhoneNumber

from hub.domain import Phone, PhoneKind
from hub.members.phones import _BE, display, parse_phone


@pytest.mark.parametrize(("text", "number", "kind"), [
    ("0477 12 34 56", "+32477123456", PhoneKind.MOBILE),
    ("+32 477/12.34.56", "+32477123456", PhoneKind.MOBILE),
    ("0032 477 12 34 56", "+32477123456", PhoneKind.MOBILE),
    ("0477/12.34.56", "+32477123456", PhoneKind.MOBILE),
    ("+32 (0)477 12 34 56", "+32477123456", PhoneKind.MOBILE),
    ("  0477123456\u00a0", "+32477123456", PhoneKind.MOBILE),
    ("(02) 511 22 33", "+3225112233", PhoneKind.FIXED),
    ("02/511.22.33", "+3225112233", PhoneKind.FIXED),
    ("02 / 511 22 33", "+3225112233", PhoneKind.FIXED),
    ("+32 9 234 56 78", "+3292345678", PhoneKind.FIXED),
    ("050 12 34 56", "+3250123456", PhoneKind.FIXED),
    ("0800 12 345", "+3280012345", PhoneKind.OTHER),
    ("+33 6 12 34 56 78", "+33612345678", PhoneKind.MOBILE),
    ("0033 1 23 45 67 89", "+33123456789", PhoneKind.FIXED),
    ("+31 6 12345678", "+31612345678", PhoneKind.MOBILE),
    ("+352 621 123 456", "+352621123456", PhoneKind.MOBILE),
])
def test_accepted(text: str, number: str, kind: PhoneKind) -> None:
    assert parse_phone(text) == Phone(number, kind)


def test_impossible_format() -> None:
    assert parse_phone("0477 12 34") == "'0477 12 34' is not a valid number"
    assert parse_phone("047712345678") == "'047712345678' is not a valid number (too long)"
    assert parse_phone("123") == "'123' is not a valid number (too short)"
    assert parse_phone("not a number") == "'not a number' is not a phone number"
    assert parse_phone("") == "no number given"
    assert "too long to be a phone number" in str(parse_phone("0" * 100))


def test_foreign_number_without_country_code() -> None:
    reason = parse_phone("612345678")
    assert reason == ("'612345678' is not a Belgian number and has no country code "
                      "(+33 6 12 34 56 78?)")


def test_region() -> None:
    assert parse_phone("06 12 34 56 78", "FR") == Phone("+33612345678", PhoneKind.MOBILE)


def test_classifier_is_number_type() -> None:
    """The fast path's classification equals phonenumbers.number_type, prefix by prefix."""
    rng = random.Random(7)
    for prefix in range(10, 100):
        for length in (8, 9):
            for _ in range(60):
                national = str(prefix) + "".join(rng.choice("0123456789") for _ in range(length - 2))
                expected = phonenumbers.number_type(PhoneNumber(country_code=32,
                                                                national_number=int(national)))
                assert _BE.number_type(national) == expected, national


def test_fast_path_agrees_with_full_parse() -> None:
    rng = random.Random(8)
    for _ in range(2000):
        digits = f"0{rng.randrange(10**8, 10**9)}"
        text = rng.choice((digits, f"+32 {digits[1:]}", f"{digits[:4]}/{digits[4:]}"))
        full = phonenumbers.parse(text, "BE")
        ours = parse_phone(text)
        if phonenumbers.is_valid_number(full):
            assert isinstance(ours, Phone)
            assert ours.number == phonenumbers.format_number(full, phonenumbers.PhoneNumberFormat.E164)
        else:
            assert isinstance(ours, str)


def test_display_keeps_a_spreadsheet_from_reading_a_number() -> None:
    assert display("+32477123456") == "0477 12 34 56"
    assert display("+33612345678") == "00 33 6 12 34 56 78"
    for number in ("+32477123456", "+33612345678", "+3225112233"):
        parsed = parse_phone(display(number))
        assert isinstance(parsed, Phone) and parsed.number == number
