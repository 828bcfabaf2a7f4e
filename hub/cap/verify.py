"""Verifying the enveloped XML-DSig signatures of a CAP alert under a trust store the caller
passes in (signing is ``hub.cap.sign``, the store ``hub.cap.trust``).

Verifying never trusts a key that only the document brings. Certificates are pinned per
sender in a ``TrustStore``; a certificate in ``KeyInfo`` is only a hint that picks which
registered certificate to try, and an unregistered one makes the signature ``UNTRUSTED_KEY``.
The result is data (``VerifyResult`` with one ``SignatureCheck`` per signature); nothing that
signxml, lxml or cryptography raises escapes ``verify``.

The order of checks for one signature, first failure wins::

    structure and algorithms     MALFORMED, UNSUPPORTED_ALGORITHM   (policy: SHA-1, DSA)
    key registered for sender    UNTRUSTED_KEY
    SignatureValue under it      BAD_SIGNATURE  (DIGEST_MISMATCH if the content changed too)
    reference digests            DIGEST_MISMATCH
    certificate validity         EXPIRED        (at ``now`` or at the alert's <sent>)

Cryptography comes before the validity period on purpose: a tampered alert must read as
tampered, never merely as "expired".

Several signatures (NAADS countersigning Environment Canada) are checked one by one, see
``verify``. All XML goes through ``hub.cap.xmlsafe.parse_xml``, signxml's re-parsing included.
"""

from __future__ import annotations

import binascii
import copy
from base64 import b64decode
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal

import cryptography.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from lxml import etree
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConstructionMethod,
    SignatureMethod,
    digest_algorithm_implementations,
)
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput
from signxml.verifier import SignatureConfiguration, XMLVerifier

from hub.cap.dsig import DS_NS, NS, SIGNATURE, HardenedParsing, detach, hint_ders, signatures
from hub.cap.model import parse_datetime
from hub.cap.problems import Problem
from hub.cap.trust import CertEntry, TrustStore, common_name
from hub.cap.xmlsafe import parse_xml

__all__ = [
    "SignatureCheck",
    "SignaturePolicy",
    "Status",
    "VerifyResult",
    "verify",
]

ENVELOPED = SignatureConstructionMethod.enveloped.value

class Status(StrEnum):
    VALID = "valid"
    MISSING = "missing"  # no signature at all
    DIGEST_MISMATCH = "digest-mismatch"  # content changed after signing (or pretty-printed)
    BAD_SIGNATURE = "bad-signature"  # SignatureValue does not verify under the registered key
    UNTRUSTED_KEY = "untrusted-key"  # no certificate registered for the sender made it
    EXPIRED = "expired"  # certificate not valid at the checked time
    UNSUPPORTED_ALGORITHM = "unsupported-algorithm"
    MALFORMED = "malformed"


# Statuses that show the document was changed or broken: they refuse it whatever the policy.
FAILURES = frozenset({Status.DIGEST_MISMATCH, Status.BAD_SIGNATURE, Status.MALFORMED})
_SEVERITY = (Status.MALFORMED, Status.BAD_SIGNATURE, Status.DIGEST_MISMATCH, Status.EXPIRED,
             Status.UNTRUSTED_KEY, Status.UNSUPPORTED_ALGORITHM, Status.MISSING, Status.VALID)


@dataclass(frozen=True, slots=True)
class SignaturePolicy:
    """What the receiving side demands of signatures.

    ``required``: a signature must be present and verify (else an unsigned alert is accepted).
    ``expiry_at``: check certificate validity at ``now`` or at the alert's ``<sent>`` (for
    archives and replays; it trusts the signer's own clock, so a key that expired or was
    retired can still vouch for a back-dated alert: use it for old alerts, not for ingest).
    """

    required: bool
    expiry_at: Literal["now", "sent"] = "now"
    allow_sha1: bool = False
    allow_dsa: bool = False

    def __post_init__(self) -> None:
        if self.expiry_at not in ("now", "sent"):
            raise ValueError(f"expiry_at must be 'now' or 'sent', not {self.expiry_at!r}")


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The verdict on one ``<Signature>``; ``index`` counts from 1 in document order."""

    index: int
    status: Status
    reason: str
    signer: str | None = None  # subject CN of the certificate, nothing more
    algorithm: str | None = None  # e.g. "rsa-sha256"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The verdict on a document: ``valid`` and an overall ``status``/``reason``, then the
    ``checks`` of each signature. See ``verify`` for the rule that combines them."""

    valid: bool
    status: Status
    reason: str
    checks: tuple[SignatureCheck, ...] = ()

    @property
    def signed(self) -> bool:
        """True when at least one signature verified under a registered certificate."""
        return any(c.status is Status.VALID for c in self.checks)


# --- verifying ---------------------------------------------------------------------------


class _Verifier(HardenedParsing, XMLVerifier):
    """signxml verifies the first ``<Signature>`` it finds; this one is pointed at the
    ``position``-th signature of the document instead. signxml looks the signature up on
    copies of the same tree (once to read it, once to excise it for the enveloped
    transform), so a position in document order names the same element every time."""

    def __init__(self, position: int) -> None:
        super().__init__()
        self._position = position

    def get_root(self, data: etree._Element) -> etree._Element:
        # We only ever pass trees that parse_xml made, and verify() only reads the tree it
        # is given (it copies it before excising the signature): skip signxml's defensive copy.
        return data

    def _get_signature(self, root: etree._Element) -> etree._Element:
        sigs = signatures(root)
        if self._position >= len(sigs):
            raise InvalidInput("signature not found")
        return sigs[self._position]


# Accepted algorithms: everything else is UNSUPPORTED_ALGORITHM.
_SIG_METHODS = {m.value: m for m in SignatureMethod}
_DIGESTS = {d.value: d for d in DigestAlgorithm}
_C14N = {c.value: c for c in CanonicalizationMethod}
_STRONG_SIG = frozenset({
    SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512,
    SignatureMethod.ECDSA_SHA256, SignatureMethod.ECDSA_SHA384, SignatureMethod.ECDSA_SHA512,
})
_STRONG_DIGEST = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})


@lru_cache(maxsize=8)
def _accepted(allow_sha1: bool, allow_dsa: bool) -> SignatureConfiguration:
    methods = set(_STRONG_SIG)
    digests = set(_STRONG_DIGEST)
    if allow_sha1:
        methods |= {SignatureMethod.RSA_SHA1, SignatureMethod.ECDSA_SHA1}
        digests.add(DigestAlgorithm.SHA1)
    if allow_dsa:
        methods.add(SignatureMethod.DSA_SHA256)
        if allow_sha1:
            methods.add(SignatureMethod.DSA_SHA1)
    return SignatureConfiguration(
        require_x509=True,
        location=".//",
        expect_references=True,  # any number; we demand one whole-document reference ourselves
        signature_methods=frozenset(methods),
        digest_algorithms=frozenset(digests),
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the structural pre-check learned about one signature."""

    method: SignatureMethod
    algorithm: str
    hints: tuple[bytes, ...]  # DER of the certificates in KeyInfo/X509Data
    references: tuple[etree._Element, ...] = field(default=())


def verify(
    data: bytes,
    *,
    trust: TrustStore,
    policy: SignaturePolicy,
    sender: str | None = None,
    now: datetime,
) -> VerifyResult:
    """Check every signature of a CAP document; never raises for anything in ``data``.

    ``sender`` names whose registered certificates may sign; by default the alert's own
    ``<sender>`` (covered by any valid signature, since every signature must cover the whole
    alert). ``now`` must be time-zone aware.

    The overall rule:

    - No signature: ``MISSING``, valid only if ``policy.required`` is False.
    - Any signature ``DIGEST_MISMATCH``, ``BAD_SIGNATURE`` or ``MALFORMED``: invalid, even
      under an optional policy, since the document was changed or broken after signing.
    - Otherwise valid if at least one signature is ``VALID`` (made by a certificate
      registered for the sender, valid at the checked time). Other signatures may be
      ``UNTRUSTED_KEY``, ``EXPIRED`` or ``UNSUPPORTED_ALGORITHM``: a hub receives alerts
      countersigned by parties it does not know (NAADS over Environment Canada), and one
      trusted signature over the whole alert is what it needs.
    - No signature verifies but none shows tampering: invalid if required; if not required,
      valid (such an alert is no worse than an unsigned one), reported with the status of
      the worst signature so the caller can still see why. ``VerifyResult.signed`` tells
      the two apart.

    Several signatures: each is checked alone, by position. A signature made before others
    were appended did not see them, so it is first checked over the document without the
    signatures that follow it (the way ``sign`` and NAADS add theirs), then as the W3C
    enveloped transform says (only itself removed), then without any other signature (two
    signers of the same alert, merged). Only ``<Signature>`` elements made of XML-DSig
    elements alone (no ``<Object>``) are ever left out, and every signature must cover the
    whole alert, so the CAP content each signature vouches for is the same in every reading.
    """
    if now.tzinfo is None:
        raise ValueError("now must be time-zone aware")
    root = parse_xml(data)
    if isinstance(root, Problem):
        return VerifyResult(False, Status.MALFORMED, f"refused by the XML parser: {root.message}")
    if root.tag == SIGNATURE:
        return VerifyResult(False, Status.MALFORMED,
                            "the document is a <Signature> itself; a CAP alert carries an enveloped one")
    sigs = signatures(root)
    if not sigs:
        if policy.required:
            return VerifyResult(False, Status.MISSING, "the alert is not signed and a signature is required")
        return VerifyResult(True, Status.MISSING,
                            "the alert is not signed; accepted because the policy does not require it")
    if sender is None:
        sender = _child_text(root, "sender")
    at, at_label = _checked_time(root, policy, now)
    checks = tuple(
        _check(root, sigs, i, trust=trust, policy=policy, sender=sender, at=at, at_label=at_label)
        for i in range(len(sigs))
    )
    return _overall(checks, policy)


def _overall(checks: tuple[SignatureCheck, ...], policy: SignaturePolicy) -> VerifyResult:
    worst = min(checks, key=lambda c: _SEVERITY.index(c.status))
    if worst.status in FAILURES:
        return VerifyResult(False, worst.status, f"signature {worst.index}: {worst.reason}", checks)
    good = [c for c in checks if c.status is Status.VALID]
    if good:
        others = len(checks) - len(good)
        extra = f"; {others} other signature(s) could not be verified" if others else ""
        signers = ", ".join(f"{c.index} ({c.signer or 'no CN'})" for c in good)
        return VerifyResult(True, Status.VALID, f"valid signature(s): {signers}{extra}", checks)
    why = f"no signature verifies under a registered certificate (signature {worst.index}: {worst.reason})"
    if policy.required:
        return VerifyResult(False, worst.status, why, checks)
    why += "; accepted because the policy does not require a signature"
    return VerifyResult(True, worst.status, why, checks)


def _check(
    root: etree._Element,
    sigs: list[etree._Element],
    i: int,
    *,
    trust: TrustStore,
    policy: SignaturePolicy,
    sender: str | None,
    at: datetime,
    at_label: str,
) -> SignatureCheck:
    index = i + 1
    plan = _inspect(sigs[i], policy)
    if isinstance(plan, tuple):
        return SignatureCheck(index, plan[0], plan[1], None, plan[2])
    alg = plan.algorithm

    entries = trust.entries_for(sender)
    if plan.hints:
        hinted = [e for e in entries if e.der in plan.hints]
        if not hinted:
            claimed = _hint_cn(plan.hints)
            if any(trust.registered_for_others(d) for d in plan.hints):
                why = "the certificate in KeyInfo is registered, but for another sender"
            else:
                why = "the certificate in KeyInfo is not registered for this sender"
            return SignatureCheck(index, Status.UNTRUSTED_KEY, why, claimed, alg)
        entries = tuple(hinted)
    if not entries:
        return SignatureCheck(index, Status.UNTRUSTED_KEY,
                              "no certificate is registered for this sender", None, alg)

    for entry in entries:
        if not _key_fits(entry.public_key, plan.method):
            continue
        status, reason = _crypto(root, sigs, i, entry, policy)
        if status is Status.BAD_SIGNATURE:
            continue  # not made by this certificate's key; try the next one registered
        if status is Status.VALID:
            problem = _validity_problem(entry.cert, at, at_label)
            if problem is not None:
                return SignatureCheck(index, Status.EXPIRED, problem, entry.cn, alg)
        return SignatureCheck(index, status, reason, entry.cn, alg)

    # The SignatureValue verifies under none of the candidate keys. If the content digest
    # does not match either, say so: that is what a reformatted alert looks like.
    if not any(_digest_matches(view, pos, plan.references[0]) for view, pos, _ in _views(root, sigs, i)):
        return SignatureCheck(index, Status.DIGEST_MISMATCH,
                              "the alert was changed after signing (its digest and signature no longer "
                              "match; pretty-printing does this)", entries[0].cn if plan.hints else None, alg)
    if plan.hints:
        return SignatureCheck(index, Status.BAD_SIGNATURE,
                              "SignatureValue does not verify under the registered certificate",
                              entries[0].cn, alg)
    return SignatureCheck(index, Status.UNTRUSTED_KEY,
                          "made by none of the certificates registered for this sender", None, alg)


def _crypto(
    root: etree._Element,
    sigs: list[etree._Element],
    i: int,
    entry: CertEntry,
    policy: SignaturePolicy,
) -> tuple[Status, str]:
    """signxml's verdict on signature ``i`` under one registered certificate. Validity in
    time is checked by the caller afterwards, so signxml is given a verification time
    inside the certificate's own validity period."""
    config = replace(_accepted(policy.allow_sha1, policy.allow_dsa),
                     verification_time=entry.cert.not_valid_before_utc)
    status, reason = Status.DIGEST_MISMATCH, ""
    for view, position, note in _views(root, sigs, i):
        status, reason = _signxml(view, position, entry.cert, config)
        if status is not Status.DIGEST_MISMATCH:
            if status is Status.VALID and note:
                reason = f"valid {note}"
            return status, reason
    return status, reason


def _signxml(
    view: etree._Element, position: int, cert: x509.Certificate, config: SignatureConfiguration
) -> tuple[Status, str]:
    try:
        _Verifier(position).verify(view, x509_cert=cert, validate_schema=False, expect_config=config)
    except InvalidDigest:
        return Status.DIGEST_MISMATCH, "the alert was changed after signing (reference digest does not match)"
    except InvalidCertificate as exc:  # only if the certificate's own dates are inconsistent
        return Status.EXPIRED, f"certificate rejected: {_short(exc)}"
    except cryptography.exceptions.InvalidSignature:  # signxml's InvalidSignature derives from it
        return Status.BAD_SIGNATURE, "SignatureValue does not verify"
    except cryptography.exceptions.UnsupportedAlgorithm as exc:
        return Status.UNSUPPORTED_ALGORITHM, _short(exc)
    except Exception as exc:  # InvalidInput, lxml and base64 errors, anything odd in the XML
        return Status.MALFORMED, f"cannot process the signature: {_short(exc)}"
    return Status.VALID, "valid"


def _inspect(sig: etree._Element, policy: SignaturePolicy) -> _Plan | tuple[Status, str, str | None]:
    """Structure and algorithms, read before any cryptography."""
    signed_info = sig.find("ds:SignedInfo", NS)
    if signed_info is None:
        return Status.MALFORMED, "the <Signature> has no <SignedInfo> (an empty placeholder?)", None
    value = sig.find("ds:SignatureValue", NS)
    if value is None or not (value.text or "").strip():
        return Status.MALFORMED, "the <Signature> has no <SignatureValue>", None
    c14n = signed_info.find("ds:CanonicalizationMethod", NS)
    sm = signed_info.find("ds:SignatureMethod", NS)
    if c14n is None or sm is None:
        return Status.MALFORMED, "<SignedInfo> lacks CanonicalizationMethod or SignatureMethod", None
    sm_uri = sm.get("Algorithm", "")
    alg = sm_uri.rpartition("#")[2] or sm_uri or None
    if c14n.get("Algorithm", "") not in _C14N:
        why = f"canonicalization {c14n.get('Algorithm')!r} is not supported"
        return Status.UNSUPPORTED_ALGORITHM, why, alg
    method = _SIG_METHODS.get(sm_uri)
    refused = _refused_method(method, sm_uri, policy)
    if refused is not None:
        return Status.UNSUPPORTED_ALGORITHM, refused, alg
    assert method is not None
    refs = signed_info.findall("ds:Reference", NS)
    whole = [r for r in refs if r.get("URI") == ""]
    if not whole:
        return Status.MALFORMED, "no <Reference URI=\"\">: the signature does not cover the whole alert", alg
    for ref in refs:
        problem = _reference_problem(ref, policy)
        if problem is not None:
            return problem[0], problem[1], alg
    try:
        hints = hint_ders(sig)
    except (binascii.Error, ValueError):
        return Status.MALFORMED, "an X509Certificate in KeyInfo is not base64", alg
    return _Plan(method, alg or "", hints, tuple(whole))


def _refused_method(method: SignatureMethod | None, uri: str, policy: SignaturePolicy) -> str | None:
    if method is None:
        return f"signature method {uri!r} is not supported"
    if method.name.startswith("HMAC_"):
        return "HMAC signatures use a shared secret and cannot identify a sender"
    if "SHA1" in method.name and not policy.allow_sha1:
        return "SHA-1 signatures are refused by policy (allow_sha1)"
    if method.name.startswith("DSA_") and not policy.allow_dsa:
        return "DSA signatures are refused by policy (allow_dsa)"
    if method not in _accepted(policy.allow_sha1, policy.allow_dsa).signature_methods:
        return f"signature method {method.name} is not supported"
    return None


def _reference_problem(ref: etree._Element, policy: SignaturePolicy) -> tuple[Status, str] | None:
    dm = ref.find("ds:DigestMethod", NS)
    dv = ref.find("ds:DigestValue", NS)
    if dm is None or dv is None or not (dv.text or "").strip():
        return Status.MALFORMED, "a <Reference> lacks DigestMethod or DigestValue"
    digest = _DIGESTS.get(dm.get("Algorithm", ""))
    if digest is DigestAlgorithm.SHA1 and not policy.allow_sha1:
        return Status.UNSUPPORTED_ALGORITHM, "SHA-1 digests are refused by policy (allow_sha1)"
    if digest not in _accepted(policy.allow_sha1, policy.allow_dsa).digest_algorithms:
        return Status.UNSUPPORTED_ALGORITHM, f"digest method {dm.get('Algorithm')!r} is not supported"
    transforms = [t.get("Algorithm", "") for t in ref.findall("ds:Transforms/ds:Transform", NS)]
    for t in transforms:
        if t != ENVELOPED and t not in _C14N:
            return Status.UNSUPPORTED_ALGORITHM, f"transform {t!r} is not supported"
    if ref.get("URI") == "" and ENVELOPED not in transforms:
        return Status.MALFORMED, "the whole-alert <Reference> lacks the enveloped-signature transform"
    return None


def _key_fits(public_key: Any, method: SignatureMethod) -> bool:
    if method.name.startswith("ECDSA_"):
        return isinstance(public_key, ec.EllipticCurvePublicKey)
    if method.name.startswith("DSA_"):
        return isinstance(public_key, dsa.DSAPublicKey)
    return isinstance(public_key, rsa.RSAPublicKey)


def _validity_problem(cert: x509.Certificate, at: datetime, at_label: str) -> str | None:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if start <= at <= end:
        return None
    when = "not yet valid" if at < start else "expired"
    return (f"certificate {when} at {at_label} ({at.isoformat()}): "
            f"valid from {start.isoformat()} to {end.isoformat()}")


def _checked_time(root: etree._Element, policy: SignaturePolicy, now: datetime) -> tuple[datetime, str]:
    if policy.expiry_at == "sent":
        text = _child_text(root, "sent")
        if text is not None:
            try:
                return parse_datetime(text), "the alert's sent time"
            except ValueError:
                pass
        return now, "now (the alert's sent time is unreadable)"
    return now, "now"


# --- helpers on the tree -----------------------------------------------------------------


def _views(root: etree._Element, sigs: list[etree._Element], i: int
           ) -> Iterator[tuple[etree._Element, int, str]]:
    """The readings of the document under which signature ``i`` may have been made:
    (tree, position of the signature in that tree, note). Copies are made lazily."""
    later, earlier = sigs[i + 1:], sigs[:i]
    if later and all(_pure_signature(s) for s in later):
        yield _without(root, lambda j: j > i), i, "over the alert as it was before the later signature(s)"
    yield root, i, ""
    if earlier and all(_pure_signature(s) for s in earlier + later):
        yield _without(root, lambda j: j != i), 0, "over the alert without the other signature(s)"


# What a signature may hold for another signature's check to leave it out: XML-DSig
# elements only, and no <Object>. Anything else (a CAP <info> tucked into an <Object> of a
# signature appended by a third party, say) must stay covered by every signature.
_DSIG_NAMESPACES = frozenset({DS_NS, "http://www.w3.org/2009/xmldsig11#",
                              "http://www.w3.org/2001/10/xml-exc-c14n#"})


def _pure_signature(sig: etree._Element) -> bool:
    for el in sig.iter():
        if not isinstance(el.tag, str):
            continue  # comments and processing instructions
        qname = etree.QName(el)
        if qname.namespace not in _DSIG_NAMESPACES or el.tag == f"{{{DS_NS}}}Object":
            return False
    return True


def _without(root: etree._Element, drop: Callable[[int], bool]) -> etree._Element:
    doc = copy.deepcopy(root)
    for j, sig in enumerate(signatures(doc)):
        if drop(j):
            detach(sig)
    return doc


def _digest_matches(view: etree._Element, position: int, reference: etree._Element) -> bool:
    """Recompute the whole-alert reference digest; only used to explain a failure."""
    try:
        doc = copy.deepcopy(view)
        detach(signatures(doc)[position])
        method = CanonicalizationMethod.CANONICAL_XML_1_1  # signxml's default without a transform
        prefixes: list[str] | None = None
        for t in reference.findall("ds:Transforms/ds:Transform", NS):
            c = _C14N.get(t.get("Algorithm", ""))
            if c is not None:
                method = c
                inc = t.find("{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces")
                prefixes = inc.get("PrefixList", "").split() if inc is not None else None
        canonical = etree.tostring(
            doc, method="c14n",
            exclusive=method.value.startswith("http://www.w3.org/2001/10/xml-exc-c14n#"),
            with_comments=method.value.endswith("#WithComments"),
            inclusive_ns_prefixes=prefixes,
        )
        dm = reference.find("ds:DigestMethod", NS)
        dv = reference.find("ds:DigestValue", NS)
        assert dm is not None and dv is not None
        digest = hashes.Hash(digest_algorithm_implementations[DigestAlgorithm(dm.get("Algorithm"))]())
        digest.update(canonical)
        return digest.finalize() == b64decode(dv.text or "")
    except Exception:  # a diagnosis only: when in doubt, do not claim a digest mismatch
        return True


def _hint_cn(ders: tuple[bytes, ...]) -> str | None:
    for der in ders:
        try:
            return common_name(x509.load_der_x509_certificate(der))
        except ValueError:
            continue
    return None


def _child_text(root: etree._Element, local: str) -> str | None:
    ns = etree.QName(root).namespace
    el = root.find(f"{{{ns}}}{local}" if ns else local)
    if el is None or el.text is None:
        return None
    return el.text.strip()


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
