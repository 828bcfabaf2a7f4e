"""Conformance over real CAP messages from alerting authorities ($CAPHUB_CORPUS).

The corpus is data, not part of the project: it is read where it lies (``.ci/run`` points
at ``../shared/corpus``). Its folders: ``valid/`` and ``signed/`` (real messages, most of which
the official schema accepts; ``SOURCES.md`` gives the verdict of those it does not),
``invalid/`` (messages a hub must refuse), ``older/`` (CAP 1.0 and 1.1).
"""

from __future__ import annotations

import base64
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from hub.cap.parse import parse
from hub.cap.problems import Code
from hub.cap.trust import TrustStore
from hub.cap.verify import SignaturePolicy, Status, verify

DSIG = "http://www.w3.org/2000/09/xmldsig#"
NOT_MESSAGES = {".md", ".txt", ".pem", ".crt", ".cer", ".der", ".json", ".py"}
XML_LEVEL = {Code.XML_EMPTY, Code.XML_MALFORMED, Code.XML_TOO_LARGE, Code.XML_DTD,
             Code.XML_ENTITY, Code.XML_XINCLUDE, Code.XML_ENCODING, Code.CAP_ROOT, Code.CAP_VERSION}
SCHEMA_LEVEL = XML_LEVEL | {c for c in Code if c.value.startswith("xsd-")}


def _corpus() -> Path | None:
    value = os.environ.get("CAPHUB_CORPUS")
    return Path(value) if value else None


def _files(folder: str) -> list[Path]:
    root = _corpus()
    if root is None or not (root / folder).is_dir():
        return []
    return sorted(p for p in (root / folder).rglob("*")
                  if p.is_file() and p.suffix.lower() not in NOT_MESSAGES and not p.name.startswith("."))


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _need(paths: list[Path], folder: str) -> None:
    root = _corpus()
    if root is None:
        pytest.skip("CAPHUB_CORPUS is not set: the real-message conformance run needs it "
                    "(.ci/run sets CAPHUB_CORPUS=../shared/corpus)")
    if not root.is_dir():
        pytest.skip(f"CAPHUB_CORPUS={root} does not exist on this machine")
    if not paths:
        pytest.skip(f"{root / folder} holds no messages")


def _declared_schema_invalid(name: str) -> bool:
    """Whether SOURCES.md records that the official schema refuses this file."""
    root = _corpus()
    sources = root / "SOURCES.md" if root else None
    if sources is None or not sources.is_file():
        return False
    for line in sources.read_text(errors="replace").splitlines():
        if name in line and re.search(r"schema[- ]?invalid|fails? the (official )?schema|"
                                      r"refused by the (official )?schema|not schema[- ]valid",
                                      line, re.IGNORECASE):
            return True
    return False


VALID = _files("valid") + _files("signed")
INVALID = _files("invalid")
OLDER = _files("older")
SIGNED = _files("signed")


def test_corpus_is_there() -> None:
    _need(VALID, "valid")


@pytest.mark.parametrize("path", VALID, ids=_ids(VALID))
def test_real_messages_pass(path: Path) -> None:
    result = parse(path.read_bytes())
    errors = [p for p in result.problems if p.is_error]
    if any(p.code in SCHEMA_LEVEL for p in errors):
        assert _declared_schema_invalid(path.name), (
            f"{path.name}: refused by the schema but SOURCES.md does not say the official one "
            f"refuses it: {[p.format() for p in errors]}")
        return
    assert not errors, [p.format(path.name) for p in errors]


@pytest.mark.parametrize("path", INVALID, ids=_ids(INVALID))
def test_invalid_messages_are_refused_naming_the_element(path: Path) -> None:
    result = parse(path.read_bytes())
    errors = [p for p in result.problems if p.is_error]
    assert errors, f"{path.name} was accepted"
    for p in errors:
        if p.code not in XML_LEVEL:
            assert p.path.startswith("/alert"), p
            assert p.message


@pytest.mark.parametrize("path", OLDER, ids=_ids(OLDER))
def test_older_versions_are_refused(path: Path) -> None:
    result = parse(path.read_bytes())
    assert [p.code for p in result.problems] == [Code.CAP_VERSION], result.problems


def _own_certificates(data: bytes) -> list[bytes]:
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    pems = []
    for el in root.iter(f"{{{DSIG}}}X509Certificate"):
        der = base64.b64decode("".join((el.text or "").split()))
        pems.append(b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der)
                    + b"-----END CERTIFICATE-----\n")
    return pems


def _by_name(*needles: str) -> list[Path]:
    return [p for p in SIGNED if any(n in p.name.lower() for n in needles)]


@pytest.mark.parametrize("path", _by_name("ipaws", "athoc"), ids=_ids(_by_name("ipaws", "athoc")))
def test_ipaws_and_athoc_signatures_verify_with_their_own_certificate(path: Path) -> None:
    data = path.read_bytes()
    result = parse(data)
    assert result.alert is not None
    trust = TrustStore.from_pem({result.alert.sender: _own_certificates(data)})
    policy = SignaturePolicy(required=True, expiry_at="sent")
    outcome = verify(data, trust=trust, policy=policy, sender=result.alert.sender, now=datetime.now(UTC))
    assert outcome.valid, outcome


def test_naads_pretty_printed_after_signing_is_a_digest_mismatch() -> None:
    naads = _by_name("naads")
    _need(naads, "signed (NAADS)")
    seen = set()
    for path in naads:
        data = path.read_bytes()
        result = parse(data)
        assert result.alert is not None
        trust = TrustStore.from_pem({result.alert.sender: _own_certificates(data)})
        outcome = verify(data, trust=trust, policy=SignaturePolicy(required=True, expiry_at="sent"),
                         sender=result.alert.sender, now=datetime.now(UTC))
        seen.update(c.status for c in outcome.checks)
    assert Status.DIGEST_MISMATCH in seen
