"""Sign, tamper, verify again: every status the verifier can give, from real signatures.

Keys are made at test time (module-scoped, RSA keys take a moment). Variants that ``sign``
does not produce (SHA-1, other canonicalizations) are made with signxml's XMLSigner directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    load_pem_private_key,
)
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.signer import XMLSigner

from hub.cap import sign as sign_module
from hub.cap.devkeys import new_identity
from hub.cap.dsig import DS_NS
from hub.cap.sign import sign
from hub.cap.trust import TrustStore
from hub.cap.verify import SignaturePolicy, Status, VerifyResult, verify
from hub.errors import SignatureError

FIXTURES = Path(__file__).parent.parent / "fixtures"
SENDER = "alerts@nccn.example.be"
START = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # the fixture's <sent> is 2026-11-24T10:15+01:00
REQUIRED = SignaturePolicy(required=True)
OPTIONAL = SignaturePolicy(required=False)
DS = f"{{{DS_NS}}}"


@dataclass(frozen=True)
class Identity:
    key: bytes
    cert: bytes


@pytest.fixture(scope="module")
def alert() -> bytes:
    return (FIXTURES / "alert_full.xml").read_bytes()


@pytest.fixture(scope="module")
def nccn() -> Identity:
    """The sender's registered RSA identity."""
    return Identity(*new_identity("nccn.example.be", not_before=START))


@pytest.fixture(scope="module")
def nccn_ec() -> Identity:
    return Identity(*new_identity("nccn-ec.example.be", key_type="ec", not_before=START))


@pytest.fixture(scope="module")
def stranger() -> Identity:
    """Nobody registered this one."""
    return Identity(*new_identity("stranger.example.org", key_type="ec", not_before=START))


@pytest.fixture(scope="module")
def short_lived() -> Identity:
    """Valid 2026-11-20 to 2026-11-27: covers the alert's <sent>, not 2027."""
    return Identity(*new_identity("old.example.be", key_type="ec",
                                  not_before=datetime(2026, 11, 20, tzinfo=UTC), days=7))


@pytest.fixture(scope="module")
def trust(nccn: Identity, nccn_ec: Identity, short_lived: Identity) -> TrustStore:
    return TrustStore.from_pem({SENDER: [nccn.cert, nccn_ec.cert + short_lived.cert]})


@pytest.fixture(scope="module")
def signed(alert: bytes, nccn: Identity) -> bytes:
    return sign(alert, nccn.key, nccn.cert)


def check(data: bytes, trust: TrustStore, policy: SignaturePolicy = REQUIRED, **kw: object) -> VerifyResult:
    kw.setdefault("now", NOW)
    return verify(data, trust=trust, policy=policy, **kw)  # type: ignore[arg-type]


def signatures(doc: bytes) -> list[etree._Element]:
    return etree.fromstring(doc).findall(DS + "Signature")


def statuses(result: VerifyResult) -> list[Status]:
    return [c.status for c in result.checks]


class _AnySigner(XMLSigner):
    """signxml refuses to *make* SHA-1 signatures; the field still sends them."""

    def check_deprecated_methods(self) -> None:
        pass


def signxml_sign(data: bytes, who: Identity, **kw: object) -> bytes:
    kw.setdefault("c14n_algorithm", CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signer = _AnySigner(**kw)  # type: ignore[arg-type]
    root = etree.fromstring(data)
    out = etree.tostring(signer.sign(root, key=who.key, cert=who.cert.decode()), xml_declaration=True,
                         encoding="UTF-8")
    assert isinstance(out, bytes)
    return out


# --- signing -------------------------------------------------------------------------------


def test_signed_output_parses_and_signature_is_last(signed: bytes) -> None:
    assert signed.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(signed)
    children = [c for c in root if isinstance(c.tag, str)]
    assert children[-1].tag == DS + "Signature"
    assert len(root.findall(DS + "Signature")) == 1
    si = children[-1].find(DS + "SignedInfo")
    assert si is not None
    algs = [el.get("Algorithm") for el in si.iter() if el.get("Algorithm")]
    assert algs == [
        CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value,
        SignatureMethod.RSA_SHA256.value,
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value,
        DigestAlgorithm.SHA256.value,
    ]
    ref = si.find(DS + "Reference")
    assert ref is not None and ref.get("URI") == ""
    assert children[-1].find(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate") is not None


@pytest.mark.parametrize("who", ["nccn", "nccn_ec"])
def test_sign_then_verify(alert: bytes, trust: TrustStore, who: str, request: pytest.FixtureRequest) -> None:
    ident: Identity = request.getfixturevalue(who)
    result = check(sign(alert, ident.key, ident.cert), trust)
    assert result.valid and result.signed
    assert result.status is Status.VALID
    (c,) = result.checks
    assert (c.index, c.status) == (1, Status.VALID)
    assert c.signer == ("nccn.example.be" if who == "nccn" else "nccn-ec.example.be")
    assert c.algorithm == ("rsa-sha256" if who == "nccn" else "ecdsa-sha256")


def test_resigning_replaces_our_own_signature(signed: bytes, nccn: Identity, trust: TrustStore) -> None:
    again = sign(signed, nccn.key, nccn.cert)
    assert len(signatures(again)) == 1
    assert check(again, trust).valid


def test_signing_drops_a_placeholder(alert: bytes, nccn: Identity, trust: TrustStore) -> None:
    placeholder = alert.replace(b"</alert>", f'<Signature xmlns="{DS_NS}"/></alert>'.encode())
    out = sign(placeholder, nccn.key, nccn.cert)
    (sig,) = signatures(out)
    assert sig.find(DS + "SignedInfo") is not None
    assert check(out, trust).valid


def test_sign_refuses_unusable_material(alert: bytes, nccn: Identity, stranger: Identity) -> None:
    with pytest.raises(SignatureError, match="not a usable PEM private key"):
        sign(alert, b"not a key", nccn.cert)
    with pytest.raises(SignatureError, match="no usable PEM certificate"):
        sign(alert, nccn.key, b"not a cert")
    with pytest.raises(SignatureError, match="does not belong"):
        sign(alert, nccn.key, stranger.cert)
    key = load_pem_private_key(stranger.key, password=None)
    encrypted = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"secret"))
    with pytest.raises(SignatureError, match="encrypted"):
        sign(alert, encrypted, stranger.cert)
    with pytest.raises(SignatureError, match="cannot sign"):
        sign(b"<alert><unclosed></alert>", nccn.key, nccn.cert)


def test_signing_material_is_loaded_once_per_pem_pair(alert: bytes, nccn: Identity, stranger: Identity,
                                                       trust: TrustStore) -> None:
    sign_module._material.cache_clear()
    first = sign(alert, nccn.key, nccn.cert)
    assert sign(alert, nccn.key, nccn.cert) == first  # RSA PKCS#1 v1.5 is deterministic
    info = sign_module._material.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    assert check(first, trust).valid
    for _ in range(2):  # a failure is not cached: it is raised again
        with pytest.raises(SignatureError, match="does not belong"):
            sign(alert, nccn.key, stranger.cert)
    assert sign_module._material.cache_info().currsize == 1
    # Unhashable PEM buffers bypass the cache rather than fail.
    assert sign(alert, bytearray(nccn.key), nccn.cert) == first  # type: ignore[arg-type]


# --- tampering -----------------------------------------------------------------------------


def test_one_character_of_the_headline_changed(signed: bytes, trust: TrustStore) -> None:
    tampered = signed.replace(b"Zware rookontwikkeling", b"Zware rookontwikkelinG")
    assert tampered != signed
    result = check(tampered, trust)
    assert not result.valid
    assert result.status is Status.DIGEST_MISMATCH
    assert statuses(result) == [Status.DIGEST_MISMATCH]
    # tampering refuses the alert even where signatures are optional
    assert not check(tampered, trust, OPTIONAL).valid


def test_pretty_printed_after_signing(signed: bytes, trust: TrustStore) -> None:
    tree = etree.fromstring(signed, etree.XMLParser(remove_blank_text=True))
    pretty = etree.tostring(tree, pretty_print=True, xml_declaration=True, encoding="UTF-8")
    assert b"\n    <ds:SignedInfo>" in pretty or b"\n  <ds:Signature" in pretty
    result = check(pretty, trust)
    assert not result.valid
    assert statuses(result) == [Status.DIGEST_MISMATCH]


def test_signature_value_changed(signed: bytes, trust: TrustStore) -> None:
    root = etree.fromstring(signed)
    value = root.find(f"{DS}Signature/{DS}SignatureValue")
    assert value is not None and value.text
    value.text = ("B" if value.text[0] == "A" else "A") + value.text[1:]
    result = check(etree.tostring(root), trust)
    assert not result.valid
    assert statuses(result) == [Status.BAD_SIGNATURE]


# --- trust ---------------------------------------------------------------------------------


def test_unregistered_key_with_its_own_certificate(
    alert: bytes, stranger: Identity, trust: TrustStore
) -> None:
    result = check(sign(alert, stranger.key, stranger.cert), trust)
    assert not result.valid
    assert statuses(result) == [Status.UNTRUSTED_KEY]
    assert result.checks[0].signer == "stranger.example.org"
    # under an optional policy it counts as unsigned: accepted, but not "signed"
    optional = check(sign(alert, stranger.key, stranger.cert), trust, OPTIONAL)
    assert optional.valid and not optional.signed and optional.status is Status.UNTRUSTED_KEY


def test_certificate_of_another_sender(signed: bytes, nccn: Identity) -> None:
    trust = TrustStore.from_pem({"someone@else.example": nccn.cert})
    result = check(signed, trust)
    assert statuses(result) == [Status.UNTRUSTED_KEY]
    assert "another sender" in result.checks[0].reason


def test_sender_argument_overrides_the_alert(signed: bytes, trust: TrustStore) -> None:
    assert not check(signed, trust, sender="someone@else.example").valid
    assert check(signed, trust, sender=SENDER).valid


def test_certificates_for_any_sender(signed: bytes, nccn: Identity) -> None:
    """`cap-hub cap verify --cert C FILE`: any registered certificate may sign."""
    trust = TrustStore.from_pem(any_sender=nccn.cert)
    assert check(signed, trust).valid
    assert trust.certificates_for(None) == trust.certificates_for(SENDER)


def test_no_certificate_in_keyinfo_tries_the_registered_ones(
    alert: bytes, nccn_ec: Identity, stranger: Identity, trust: TrustStore
) -> None:
    def bare(who: Identity) -> bytes:
        root = etree.fromstring(alert)
        signer = XMLSigner(signature_algorithm=SignatureMethod.ECDSA_SHA256,
                           c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
        return bytes(etree.tostring(signer.sign(root, key=who.key)))  # KeyInfo holds a KeyValue only

    result = check(bare(nccn_ec), trust)
    assert result.valid and result.checks[0].signer == "nccn-ec.example.be"
    assert statuses(check(bare(stranger), trust)) == [Status.UNTRUSTED_KEY]


def test_trust_store_from_pem_errors(nccn: Identity) -> None:
    with pytest.raises(SignatureError, match="'x@example'"):
        TrustStore.from_pem({"x@example": b"garbage"})
    store = TrustStore.from_pem({SENDER: nccn.cert + nccn.cert})
    assert len(store.certificates_for(SENDER)) == 2 and store.senders == {SENDER}


# --- time ----------------------------------------------------------------------------------


def test_expired_certificate(alert: bytes, short_lived: Identity, trust: TrustStore) -> None:
    doc = sign(alert, short_lived.key, short_lived.cert)
    later = datetime(2027, 1, 15, tzinfo=UTC)
    result = check(doc, trust, now=later)
    assert not result.valid
    assert statuses(result) == [Status.EXPIRED]
    assert "expired at now" in result.checks[0].reason
    at_sent = check(doc, trust, SignaturePolicy(required=True, expiry_at="sent"), now=later)
    assert at_sent.valid and statuses(at_sent) == [Status.VALID]
    not_yet = check(doc, trust, now=datetime(2026, 11, 1, tzinfo=UTC))
    assert statuses(not_yet) == [Status.EXPIRED] and "not yet valid" in not_yet.checks[0].reason


def test_tampering_wins_over_expiry(alert: bytes, short_lived: Identity, trust: TrustStore) -> None:
    doc = sign(alert, short_lived.key, short_lived.cert).replace(b"Anderlecht", b"Anderlecht!")
    result = check(doc, trust, OPTIONAL, now=datetime(2027, 1, 15, tzinfo=UTC))
    assert not result.valid and statuses(result) == [Status.DIGEST_MISMATCH]


def test_naive_now_is_a_programming_error(signed: bytes, trust: TrustStore) -> None:
    with pytest.raises(ValueError, match="time-zone"):
        verify(signed, trust=trust, policy=REQUIRED, now=datetime(2026, 11, 24))


# --- algorithms ----------------------------------------------------------------------------


def test_sha1_refused_by_default_accepted_when_allowed(
    alert: bytes, nccn: Identity, trust: TrustStore
) -> None:
    doc = signxml_sign(alert, nccn, signature_algorithm=SignatureMethod.RSA_SHA1,
                       digest_algorithm=DigestAlgorithm.SHA1)
    refused = check(doc, trust)
    assert not refused.valid
    assert statuses(refused) == [Status.UNSUPPORTED_ALGORITHM]
    assert refused.checks[0].algorithm == "rsa-sha1" and "allow_sha1" in refused.checks[0].reason
    allowed = check(doc, trust, SignaturePolicy(required=True, allow_sha1=True))
    assert allowed.valid and statuses(allowed) == [Status.VALID]


def test_sha1_digest_alone_is_refused(alert: bytes, nccn: Identity, trust: TrustStore) -> None:
    doc = signxml_sign(alert, nccn, digest_algorithm=DigestAlgorithm.SHA1)
    assert statuses(check(doc, trust)) == [Status.UNSUPPORTED_ALGORITHM]


def test_rsa_sha512(alert: bytes, nccn: Identity, trust: TrustStore) -> None:
    doc = signxml_sign(alert, nccn, signature_algorithm=SignatureMethod.RSA_SHA512,
                       digest_algorithm=DigestAlgorithm.SHA512)
    assert check(doc, trust).valid


def test_dsa_refused_unless_allowed(signed: bytes, trust: TrustStore) -> None:
    doc = signed.replace(SignatureMethod.RSA_SHA256.value.encode(), SignatureMethod.DSA_SHA256.value.encode())
    refused = check(doc, trust)
    assert statuses(refused) == [Status.UNSUPPORTED_ALGORITHM] and "allow_dsa" in refused.checks[0].reason
    # allowed, the RSA certificate cannot have made a DSA signature: no registered key did
    allowed = check(doc, trust, SignaturePolicy(required=True, allow_dsa=True))
    assert not allowed.valid and statuses(allowed) == [Status.BAD_SIGNATURE]


@pytest.mark.parametrize("c14n", list(CanonicalizationMethod), ids=lambda c: c.name)
def test_canonicalization_variants(alert: bytes, nccn_ec: Identity, trust: TrustStore,
                                   c14n: CanonicalizationMethod) -> None:
    with_comment = alert.replace(b"<status>", b"<!-- a comment --><status>")
    doc = signxml_sign(with_comment, nccn_ec, signature_algorithm=SignatureMethod.ECDSA_SHA256,
                       c14n_algorithm=c14n)
    assert check(doc, trust).valid
    # a changed comment matters exactly when comments are signed
    edited = check(doc.replace(b"a comment", b"b comment"), trust)
    assert edited.valid is (not c14n.name.endswith("WITH_COMMENTS"))


# --- structure -----------------------------------------------------------------------------


def test_placeholder_signature_is_malformed(alert: bytes, trust: TrustStore) -> None:
    doc = alert.replace(b"</alert>", f'<Signature xmlns="{DS_NS}" Id="placeholder"/></alert>'.encode())
    for policy in (REQUIRED, OPTIONAL):
        result = check(doc, trust, policy)
        assert not result.valid
        assert statuses(result) == [Status.MALFORMED]
        assert "SignedInfo" in result.checks[0].reason


def test_partial_reference_is_malformed(signed: bytes, trust: TrustStore) -> None:
    doc = signed.replace(b'URI=""', b'URI="#info"')
    result = check(doc, trust)
    assert statuses(result) == [Status.MALFORMED] and "whole alert" in result.checks[0].reason


def test_garbage_signature_value_is_not_an_exception(signed: bytes, trust: TrustStore) -> None:
    root = etree.fromstring(signed)
    value = root.find(f"{DS}Signature/{DS}SignatureValue")
    assert value is not None
    value.text = "@@not base64@@"
    assert not check(etree.tostring(root), trust).valid


def test_naads_signature_id(signed: bytes, trust: TrustStore) -> None:
    """`Id="NAADS Signature"` is not a valid xs:ID; it must not matter."""
    root = etree.fromstring(signed)
    sig = root.find(DS + "Signature")
    assert sig is not None
    sig.set("Id", "NAADS Signature")
    result = check(etree.tostring(root), trust)
    assert result.valid and statuses(result) == [Status.VALID]


def test_no_signature(alert: bytes, trust: TrustStore) -> None:
    required = check(alert, trust, REQUIRED)
    assert not required.valid and required.status is Status.MISSING and required.checks == ()
    optional = check(alert, trust, OPTIONAL)
    assert optional.valid and optional.status is Status.MISSING and not optional.signed


@pytest.mark.parametrize(
    "doc",
    [
        b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><sender>&b;</sender>'
        b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/></Signature></alert>',
        b'<!DOCTYPE alert SYSTEM "http://example.org/x.dtd"><alert/>',
        b"<alert><unclosed></alert>",
    ],
    ids=["entity-bomb", "external-dtd", "not-well-formed"],
)
def test_hostile_documents_refused_by_the_hardened_parser(doc: bytes, trust: TrustStore) -> None:
    for policy in (REQUIRED, OPTIONAL):
        result = check(doc, trust, policy)
        assert not result.valid and result.status is Status.MALFORMED and result.checks == ()


# --- several signatures ----------------------------------------------------------------------


def test_two_signatures_second_untrusted(signed: bytes, stranger: Identity, trust: TrustStore) -> None:
    double = sign(signed, stranger.key, stranger.cert)  # countersigned, as NAADS does
    assert len(signatures(double)) == 2
    result = check(double, trust)
    assert [(c.index, c.status) for c in result.checks] == [(1, Status.VALID), (2, Status.UNTRUSTED_KEY)]
    assert result.checks[1].signer == "stranger.example.org"
    assert result.valid and result.status is Status.VALID


def test_two_signatures_both_trusted(signed: bytes, stranger: Identity, nccn: Identity) -> None:
    trust = TrustStore.from_pem({SENDER: nccn.cert}, any_sender=[stranger.cert])
    result = check(sign(signed, stranger.key, stranger.cert), trust)
    assert statuses(result) == [Status.VALID, Status.VALID]
    assert "before the later signature" in result.checks[0].reason


def test_two_signatures_made_independently(alert: bytes, nccn: Identity, stranger: Identity,
                                           trust: TrustStore) -> None:
    """Each signer signed the bare alert; the signatures were merged afterwards."""
    first = etree.fromstring(sign(alert, stranger.key, stranger.cert))
    second = etree.fromstring(sign(alert, nccn.key, nccn.cert))
    first.append(second.find(DS + "Signature"))  # type: ignore[arg-type]
    result = check(etree.tostring(first), trust)
    assert [(c.index, c.status) for c in result.checks] == [(1, Status.UNTRUSTED_KEY), (2, Status.VALID)]
    assert result.valid


def test_two_signatures_tampered(signed: bytes, stranger: Identity, nccn: Identity) -> None:
    trust = TrustStore.from_pem({SENDER: nccn.cert}, any_sender=[stranger.cert])
    double = sign(signed, stranger.key, stranger.cert).replace(b"Blijf binnen", b"Ga naar buiten")
    result = check(double, trust)
    assert not result.valid and statuses(result) == [Status.DIGEST_MISMATCH, Status.DIGEST_MISMATCH]


def test_a_broken_signature_beside_a_valid_one_refuses(signed: bytes, trust: TrustStore) -> None:
    doc = signed.replace(b"</alert>", f'<Signature xmlns="{DS_NS}"/></alert>'.encode())
    result = check(doc, trust, OPTIONAL)
    assert statuses(result) == [Status.VALID, Status.MALFORMED]
    assert not result.valid and result.status is Status.MALFORMED


def test_content_hidden_in_a_countersignature_is_not_left_out(
    signed: bytes, stranger: Identity, trust: TrustStore
) -> None:
    """A third party appends its own signature carrying CAP content in an <Object>: the
    first signature must not be checked over a reading that leaves that content out."""
    root = etree.fromstring(sign(signed, stranger.key, stranger.cert))
    second = root.findall(DS + "Signature")[1]
    obj = etree.SubElement(second, DS + "Object")
    info = etree.SubElement(obj, "{urn:oasis:names:tc:emergency:cap:1.2}info")
    etree.SubElement(info, "{urn:oasis:names:tc:emergency:cap:1.2}headline").text = "Evacuate now"
    result = check(etree.tostring(root), trust)
    assert statuses(result) == [Status.DIGEST_MISMATCH, Status.UNTRUSTED_KEY]
    assert not result.valid
