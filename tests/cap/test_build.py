"""The compiled model builder (``hub.cap._build``) against the Python one (``hub.cap.parse._alert``):
the same model for every document, or None where it leaves the document to the Python one."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from hub.cap import devkeys, parse
from hub.cap.model import Alert
from hub.cap.serialize import to_xml
from hub.cap.sign import sign
from hub.cap.xmlsafe import parse_xml
from tests.cap.samples import FULL, MINIMAL
from tests.cap.test_serialize import alerts

try:
    from hub.cap import _build
except ImportError:  # every test here fails and says why
    _build = None

NOT_BUILT = "hub.cap._build is not built: pip install -e . with a C compiler builds it (setup.py)"


@pytest.fixture(autouse=True)
def built() -> None:
    assert _build is not None, NOT_BUILT


def both(data: bytes) -> tuple[Alert | None, Alert]:
    root = parse_xml(data)
    assert not isinstance(root, parse.Problem), root
    python = parse._alert(root, clean=not parse._has_misc(root))
    assert parse.parse(data).alert == python  # schema-valid, whatever the rules say
    return _build.build(root), python


def test_parse_uses_the_compiled_builder() -> None:
    """`pip install -e .` builds it (setup.py); without it parsing is only slower, so say so."""
    assert parse._compiled is _build.build


@pytest.mark.parametrize("data", [FULL, MINIMAL], ids=["full", "minimal"])
def test_fixtures(data: bytes) -> None:
    compiled, python = both(data)
    assert compiled == python


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(alerts)
def test_generated_alerts(alert: Alert) -> None:
    compiled, python = both(to_xml(alert))
    assert compiled == python == alert


def test_comments_pis_cdata_and_references() -> None:
    marked = (FULL.decode()
              .replace("<event>Brand in", "<event>Brand<!-- c --> in")
              .replace("<valueName>NIS</valueName>", "<!-- x --><valueName>N<?pi?>IS</valueName><!-- y -->")
              .replace("<size>1024</size>", "<size>10<!-- s -->24</size>")
              .replace("<altitude>0</altitude>", "<altitude><!-- z -->0</altitude>")
              .replace("<note>Exercise", "<note><![CDATA[Exer]]>&#99;ise&amp;")
              .replace("<sent>", "<!-- before sent --><?pi x?><sent>"))
    compiled, python = both(marked.encode())
    assert compiled is not None and compiled == python
    assert compiled.infos[0].event == "Brand in industriezone" and compiled.note is not None
    assert compiled.note.startswith("Exercise&") and compiled.infos[0].resources[0].size == 1024


def test_a_signed_alert_and_what_it_leaves_to_python() -> None:
    key, cert = devkeys.new_identity("t")
    signed = sign(FULL, key, cert)
    compiled, python = both(signed)
    assert compiled is not None and compiled == python
    # an element after the signature, a time the Python builder must read: left to it
    dsig = '<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/></Signature>'
    root = parse_xml(FULL.decode().replace("  <info>", dsig + "<info>", 1).encode())
    assert not isinstance(root, parse.Problem) and _build.build(root) is None
    midnight = FULL.replace(b"<onset>2026-11-24T10:00:00+01:00", b"<onset>2026-11-24T24:00:00+01:00")
    root = parse_xml(midnight)
    assert not isinstance(root, parse.Problem) and _build.build(root) is None
    result = parse.parse(midnight)
    assert result.ok and result.alert is not None and result.alert.infos[0].onset is not None
    assert result.alert.infos[0].onset.day == 25
