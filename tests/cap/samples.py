"""Our own CAP documents for unit tests, built from one valid alert changed one thing at a time."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FULL = (FIXTURES / "alert_full.xml").read_bytes()
MINIMAL = (FIXTURES / "alert_minimal.xml").read_bytes()


def full_with(old: str, new: str, *, count: int = 1) -> bytes:
    """The full fixture with ``old`` replaced by ``new`` (which must occur)."""
    text = FULL.decode()
    assert old in text, old
    return text.replace(old, new, count).encode()


def minimal_with(old: str, new: str) -> bytes:
    text = MINIMAL.decode()
    assert old in text, old
    return text.replace(old, new, 1).encode()
