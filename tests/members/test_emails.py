"""E-mail addresses: syntax and normal form."""

from __future__ import annotations

import pytest

from hub.members.emails import parse_email


@pytest.mark.parametrize(("text", "address"), [
    ("jan.peeters@telenet.be", "jan.peeters@telenet.be"),
    ("Jan.Peeters@Telenet.BE", "Jan.Peeters@telenet.be"),  # the local part is kept as given
    ("  marie+plp@skynet.be ", "marie+plp@skynet.be"),
    ("Jan Peeters <jan@x.be>", "jan@x.be"),
    ("mailto:jan@x.be", "jan@x.be"),
    ("jan@müller.de", "jan@xn--mller-kva.de"),
    ("jan@straße.de", "jan@xn--strae-oqa.de"),  # IDNA 2008, not 2003's strasse.de
    ("jan@sub.domain.co.uk", "jan@sub.domain.co.uk"),
])
def test_accepted(text: str, address: str) -> None:
    assert parse_email(text) == (address, None)


@pytest.mark.parametrize(("text", "why"), [
    ("jan@", "without a domain"),
    ("jan@gmail", "without a domain (no dot after @)"),
    ("jan.peeters", "no @"),
    ("jan peeters@x.be", "contains a space"),
    ("a..b@x.be", "the part before @"),
    (".a@x.be", "the part before @"),
    ("a@b@x.be", "the part before @"),
    ("@x.be", "the part before @"),
    ("jan@x.123", "the domain is not valid"),
    ("jan@-x.be", "the domain is not valid"),
    ("jan@x..be", "the domain is not valid"),
    ("jan@[192.0.2.1]", "the domain is not valid"),
])
def test_refused(text: str, why: str) -> None:
    address, reason = parse_email(text)
    assert address is None and reason is not None
    assert reason.startswith(repr(text)) and why in reason


def test_length() -> None:
    address, reason = parse_email("a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + ".be")
    assert address is None and reason is not None and "longer than 254" in reason
    assert parse_email("a" * 65 + "@x.be")[0] is None
