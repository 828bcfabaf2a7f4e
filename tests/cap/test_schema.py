"""hub.cap.schema: start from a valid fixture, change one thing, look at the one finding.

Line numbers refer to tests/fixtures/alert_full.xml; edits keep every line where it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from hub.cap.problems import Code, Level, Problem
from hub.cap.schema import SCHEMA_PATH, check_root, validate
from hub.cap.xmlsafe import parse_xml

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FULL = (FIXTURES / "alert_full.xml").read_bytes()
MINIMAL = (FIXTURES / "alert_minimal.xml").read_bytes()
CAP12 = b"urn:oasis:names:tc:emergency:cap:1.2"
DSIG = b"http://www.w3.org/2000/09/xmldsig#"
SIGNATURE = b'<ds:Signature xmlns:ds="' + DSIG + b'"><ds:SignedInfo/></ds:Signature>'


def parse(data: bytes) -> etree._Element:
    root = parse_xml(data)
    assert not isinstance(root, Problem), root
    return root


def findings(data: bytes) -> list[Problem]:
    return validate(parse(data))


def edit(old: bytes, new: bytes, data: bytes = FULL) -> bytes:
    """Replace the first ``old``; the tests keep line breaks so lines do not move."""
    assert old in data, old
    return data.replace(old, new, 1)


def only(data: bytes) -> Problem:
    problems = findings(data)
    assert len(problems) == 1, [p.format() for p in problems]
    assert problems[0].level is Level.ERROR
    return problems[0]


# Valid documents ------------------------------------------------------------------------------


def test_schema_file_is_bundled() -> None:
    xsd = etree.parse(str(SCHEMA_PATH)).getroot()
    assert xsd.get("targetNamespace") == CAP12.decode()
    assert xsd.get("elementFormDefault") == "qualified"


@pytest.mark.parametrize("data", [FULL, MINIMAL], ids=["full", "minimal"])
def test_fixtures_are_valid(data: bytes) -> None:
    root = parse(data)
    assert check_root(root) is None
    assert validate(root) == []


def test_identifier_content_is_left_to_the_rules() -> None:
    # Spaces and commas are forbidden by §3.2.1, but the schema only says xs:string.
    assert findings(edit(b"BE-NCCN-2026-0042", b"BE NCCN, 2026")) == []


def test_empty_language_takes_the_default() -> None:
    # <language> defaults to en-US, so an empty one is valid, as with the OASIS schema.
    assert findings(edit(b"<language>nl-BE</language>", b"<language/>")) == []


def test_prefixed_document_is_accepted() -> None:
    data = (FULL.replace(b'xmlns="', b'xmlns:cap="').replace(b"</", b"</cap:")
            .replace(b"<", b"<cap:").replace(b"<cap:/cap:", b"</cap:").replace(b"<cap:?", b"<?"))
    root = parse(data)
    assert root.prefix == "cap"
    assert check_root(root) is None
    assert validate(root) == []


def test_prefixed_document_findings_use_local_names() -> None:
    data = edit(b"<status>Actual</status>", b"<cap:status>Actul</cap:status>",
                edit(b"<alert ", b"<alert xmlns:cap=\"urn:oasis:names:tc:emergency:cap:1.2\" "))
    problem = only(data)
    assert (problem.code, problem.path, problem.line) == (Code.XSD_ENUM, "/alert/status", 6)


def test_signature_at_the_end_is_accepted() -> None:
    assert findings(edit(b"</alert>", SIGNATURE + b"</alert>")) == []


def test_iso_8859_1_document_is_accepted() -> None:
    data = edit(b'encoding="UTF-8"', b'encoding="ISO-8859-1"').decode("utf-8").encode("iso-8859-1")
    assert "à".encode("iso-8859-1") in data
    assert findings(data) == []


def test_document_with_byte_order_mark_is_accepted() -> None:
    assert findings(b"\xef\xbb\xbf" + FULL) == []


def test_alert_inside_another_document_gets_cap_paths() -> None:
    feed = parse(b"<feed><entry>" + edit(b"<status>Actual", b"<status>actual").split(b"?>", 1)[1]
                 + b"</entry></feed>")
    alert = feed[0][0]
    problems = validate(alert)
    assert [(p.code, p.path) for p in problems] == [(Code.XSD_ENUM, "/alert/status")]


# Root element and CAP version ------------------------------------------------------------------


def test_cap_1_1_is_refused_with_its_version() -> None:
    root = parse(FULL.replace(CAP12, b"urn:oasis:names:tc:emergency:cap:1.1"))
    problem = check_root(root)
    assert problem is not None
    assert (problem.code, problem.path, problem.line) == (Code.CAP_VERSION, "/alert", 2)
    assert "CAP 1.1" in problem.message and "CAP 1.2 only" in problem.message
    assert validate(root) == [problem]


def test_cap_1_0_is_refused_with_its_version() -> None:
    root = parse(MINIMAL.replace(CAP12, b"http://www.incident.com/cap/1.0"))
    problem = check_root(root)
    assert problem is not None
    assert (problem.code, problem.path, problem.line) == (Code.CAP_VERSION, "/alert", 2)
    assert "CAP 1.0" in problem.message and "CAP 1.2 only" in problem.message


def test_wrong_root_element_is_refused() -> None:
    root = parse(b'<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom"/>')
    problem = check_root(root)
    assert problem is not None
    assert (problem.code, problem.path, problem.line) == (Code.CAP_ROOT, "/feed", 2)
    assert "<feed>" in problem.message and "http://www.w3.org/2005/Atom" in problem.message


def test_part_of_a_message_as_root_is_refused() -> None:
    # The bare schema accepts a lone <valueName>; the hub does not take it for a message.
    root = parse(b'<valueName xmlns="urn:oasis:names:tc:emergency:cap:1.2">x</valueName>')
    problem = check_root(root)
    assert problem is not None and problem.code == Code.CAP_ROOT
    assert "<valueName>" in problem.message
    assert validate(root) == [problem]


def test_wrong_namespace_is_refused() -> None:
    problem = check_root(parse(MINIMAL.replace(CAP12, b"urn:example:alerts")))
    assert problem is not None
    assert (problem.code, problem.path) == (Code.CAP_ROOT, "/alert")
    assert "urn:example:alerts" in problem.message and "<alert>" in problem.message


def test_no_namespace_is_refused() -> None:
    problem = check_root(parse(MINIMAL.replace(b' xmlns="urn:oasis:names:tc:emergency:cap:1.2"', b"")))
    assert problem is not None
    assert (problem.code, problem.path, problem.line) == (Code.CAP_ROOT, "/alert", 2)
    assert "no namespace" in problem.message


# Missing, unexpected and misplaced elements -------------------------------------------------


def test_missing_required_element() -> None:
    problem = only(edit(b"<sent>2026-11-24T10:15:00+01:00</sent>", b""))
    assert (problem.code, problem.path, problem.line) == (Code.XSD_MISSING, "/alert", 6)
    assert "<sent>" in problem.message


def test_missing_mime_type_required_in_cap_1_2() -> None:
    problem = only(edit(b"<mimeType>image/png</mimeType>", b""))
    assert problem.code == Code.XSD_MISSING
    assert (problem.path, problem.line) == ("/alert/info[1]/resource[1]", 37)
    assert "<mimeType>" in problem.message


def test_missing_element_at_the_end_of_its_parent() -> None:
    problem = only(edit(b"<value>FIRE</value>", b""))
    assert problem.code == Code.XSD_MISSING
    assert (problem.path, problem.line) == ("/alert/info[1]/eventCode[1]", 23)
    assert "<value>" in problem.message and "<eventCode>" in problem.message


def test_empty_info_misses_its_category() -> None:
    problem = only(edit(b"</alert>", b"<info/></alert>", MINIMAL))
    assert (problem.code, problem.path, problem.line) == (Code.XSD_MISSING, "/alert/info[1]", 9)
    assert "<category>" in problem.message


def test_elements_out_of_order() -> None:
    data = edit(b"<status>Actual</status>\n  <msgType>Alert</msgType>",
                b"<msgType>Alert</msgType>\n  <status>Actual</status>")
    problem = only(data)
    assert (problem.code, problem.path, problem.line) == (Code.XSD_UNEXPECTED, "/alert/msgType", 6)
    assert "<msgType>" in problem.message and "expected <status>" in problem.message


def test_repeated_single_element() -> None:
    problem = only(edit(b"<sent>2026-11-24T10:15:00+01:00</sent>",
                        b"<sent>2026-11-24T10:15:00+01:00</sent><sent>2026-11-24T10:15:00+01:00</sent>"))
    assert (problem.code, problem.path, problem.line) == (Code.XSD_UNEXPECTED, "/alert/sent[2]", 5)
    assert "only one <sent>" in problem.message


def test_unknown_element() -> None:
    problem = only(edit(b"<audience>", b"<colour>red</colour><audience>"))
    assert (problem.code, problem.path, problem.line) == (Code.XSD_UNEXPECTED, "/alert/info[1]/colour", 22)
    assert "<colour>" in problem.message and "<audience>" in problem.message


def test_misspelt_element_gets_a_suggestion() -> None:
    problem = only(edit(b"<headline>Zware", b"<Headline>Zware").replace(b"</headline>", b"</Headline>", 1))
    assert (problem.code, problem.path, problem.line) == (Code.XSD_UNEXPECTED, "/alert/info[1]/Headline", 28)
    assert "did you mean <headline>" in problem.message


def test_element_in_no_namespace() -> None:
    problem = only(edit(b"<contact>1771</contact>", b'<contact xmlns="">1771</contact>'))
    assert problem.code == Code.XSD_UNEXPECTED
    assert (problem.path, problem.line) == ("/alert/info[1]/contact", 32)
    assert "no namespace" in problem.message


def test_foreign_namespace_element_at_the_end() -> None:
    problem = only(edit(b"</alert>", b'<x:extra xmlns:x="urn:example:x"/></alert>'))
    assert (problem.code, problem.path) == (Code.XSD_UNEXPECTED, "/alert/extra")
    assert "urn:example:x" in problem.message


def test_signature_before_info_is_refused() -> None:
    # libxml2 lets this through; the schema's sequence puts the signature last.
    problem = only(edit(b"  <info>", SIGNATURE + b"  <info>"))
    assert (problem.code, problem.path, problem.line) == (Code.XSD_UNEXPECTED, "/alert/info[1]", 13)
    assert "<Signature>" in problem.message


def test_signature_first_is_refused() -> None:
    problem = only(edit(b"<identifier>", SIGNATURE + b"<identifier>"))
    assert (problem.code, problem.path, problem.line) == (Code.XSD_UNEXPECTED, "/alert/Signature", 3)


def test_text_inside_a_segment() -> None:
    problem = only(edit(b"<area>", b"<area>here"))
    assert (problem.code, problem.path, problem.line) == (Code.XSD_UNEXPECTED, "/alert/info[1]/area[1]", 41)
    assert "<area>" in problem.message


def test_child_element_inside_a_value() -> None:
    problem = only(edit(b"<event>Brand", b"<event><b>Brand</b>"))
    assert (problem.code, problem.path, problem.line) == (Code.XSD_UNEXPECTED, "/alert/info[1]/event", 17)
    assert "<event>" in problem.message


# Values ----------------------------------------------------------------------------------------


def test_bad_enumeration_value() -> None:
    problem = only(edit(b"<urgency>Immediate</urgency>", b"<urgency>Now</urgency>"))
    assert (problem.code, problem.path, problem.line) == (Code.XSD_ENUM, "/alert/info[1]/urgency", 19)
    assert "<urgency>" in problem.message
    assert "Immediate, Expected, Future, Past, Unknown" in problem.message


@pytest.mark.parametrize("value", [b"actual", b"ACTUAL", b" Actual", b"Actual\n"])
def test_enumeration_is_exact(value: bytes) -> None:
    problem = only(edit(b"<status>Actual</status>", b"<status>" + value + b"</status>"))
    assert (problem.code, problem.path) == (Code.XSD_ENUM, "/alert/status")
    assert "did you mean 'Actual'" in problem.message


def test_sent_with_z_is_refused() -> None:
    problem = only(edit(b"<sent>2026-11-24T10:15:00+01:00</sent>", b"<sent>2026-11-24T09:15:00Z</sent>"))
    assert (problem.code, problem.path, problem.line) == (Code.XSD_PATTERN, "/alert/sent", 5)
    assert "<sent>" in problem.message and "2026-11-24T10:15:00+01:00" in problem.message
    assert "-00:00" in problem.message


@pytest.mark.parametrize("value", [
    b"2026-11-24T10:15:00.5+01:00",  # fractions of a second
    b"2026-11-24T10:15:00",  # no offset
    b"2026-11-24T10:15:00,01:00",  # a comma for the sign
    b"2026-11-24",  # no time
    b"2026-02-30T10:15:00+01:00",  # no such day
])
def test_malformed_date_times(value: bytes) -> None:
    data = edit(b"<expires>2026-11-24T16:15:00+01:00</expires>\n    <headline>Imp",
                b"<expires>" + value + b"</expires>\n    <headline>Imp")
    problem = only(data)
    assert (problem.code, problem.path, problem.line) == (Code.XSD_PATTERN, "/alert/info[2]/expires", 57)
    assert "<expires>" in problem.message and "2026-11-24T10:15:00+01:00" in problem.message


def test_size_not_an_integer() -> None:
    problem = only(edit(b"<size>1024</size>", b"<size>1.5 kB</size>"))
    assert problem.code == Code.XSD_TYPE
    assert (problem.path, problem.line) == ("/alert/info[1]/resource[1]/size", 37)
    assert "<size>" in problem.message and "whole number" in problem.message


def test_altitude_not_a_decimal() -> None:
    problem = only(edit(b"<altitude>0</altitude>", b"<altitude>ground</altitude>"))
    assert problem.code == Code.XSD_TYPE
    assert (problem.path, problem.line) == ("/alert/info[1]/area[1]/altitude", 46)
    assert "<altitude>" in problem.message


def test_bad_language_tag() -> None:
    problem = only(edit(b"<language>fr-BE</language>", b"<language>fr_BE</language>"))
    assert (problem.code, problem.path, problem.line) == (Code.XSD_TYPE, "/alert/info[2]/language", 51)
    assert "<language>" in problem.message


def test_attribute_is_refused() -> None:
    problem = only(edit(b"<severity>Severe", b'<severity level="3">Severe'))
    assert (problem.code, problem.path, problem.line) == (Code.XSD_ATTRIBUTE, "/alert/info[1]/severity", 20)
    assert "<severity>" in problem.message and "level" in problem.message


def test_every_error_is_reported_in_document_order() -> None:
    data = edit(b"<status>Actual", b"<status>actual", edit(b"<size>1024", b"<size>big"))
    problems = findings(data)
    assert [(p.code, p.path, p.line) for p in problems] == [
        (Code.XSD_ENUM, "/alert/status", 6),
        (Code.XSD_TYPE, "/alert/info[1]/resource[1]/size", 37),
    ]
    assert all("{urn:" not in p.message for p in problems)


def test_threads_compiling_the_schema_at_once_do_not_break_it() -> None:
    """libxml2's first schema compile is not thread-safe; the lock in schema._schema makes
    it so. A fresh process each time, since only the first compile races."""
    import subprocess
    import sys

    script = (
        "import threading\n"
        "from hub.cap import schema\n"
        "from hub.cap.xmlsafe import parse_xml\n"
        "from tests.cap.samples import FULL\n"
        "errors = []\n"
        "def go():\n"
        "    try:\n"
        "        assert schema.validate(parse_xml(FULL)) == []\n"
        "    except Exception as exc:\n"
        "        errors.append(exc)\n"
        "threads = [threading.Thread(target=go) for _ in range(4)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "raise SystemExit(1 if errors else 0)\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    for _ in range(4):
        done = subprocess.run([sys.executable, "-c", script], cwd=root, check=False, timeout=60,
                              env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0
