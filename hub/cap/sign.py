"""Enveloped XML-DSig signing of CAP alerts (verifying is ``hub.cap.verify``).

Signing follows IPAWS practice: one enveloped signature over the whole alert (``Reference
URI=""``), exclusive C14N, SHA-256 digest, RSA-SHA256 (ECDSA-SHA256 for an EC key), and the
signer's X.509 certificate in ``KeyInfo``. The ``<Signature>`` is the last child of ``<alert>``,
where the CAP 1.2 schema allows it.

The hub signs every Ack, Error and feed document it emits, so the key and certificate are
loaded and checked once per distinct PEM pair (a small cache keyed on the PEM bytes; loading
an RSA private key checks it, which costs far more than a signature). All XML goes through
``hub.cap.xmlsafe.parse_xml``, signxml's re-parsing included.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cryptography.exceptions
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from lxml import etree
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConstructionMethod,
    SignatureMethod,
)
from signxml.signer import XMLSigner

from hub.cap.dsig import NS, SIGNATURE, HardenedParsing, detach, hint_ders, signatures
from hub.cap.problems import Problem
from hub.cap.trust import load_pems
from hub.cap.xmlsafe import parse_xml
from hub.errors import SignatureError

__all__ = ["sign"]

# Distinct (key, certificate) PEM pairs whose loaded form is kept: a hub signs with one
# identity, or a few during a key rollover.
_MATERIAL_CACHE_SIZE = 8


class _Signer(HardenedParsing, XMLSigner):
    pass


def sign(data: bytes, key_pem: bytes, cert_pem: bytes) -> bytes:
    """Sign a CAP alert; returns UTF-8 bytes with an XML declaration.

    ``key_pem`` is an unencrypted PEM private key (RSA of 2048 bits or more, or EC);
    ``cert_pem`` its certificate, optionally followed by its chain (all go into KeyInfo).
    The loaded key and certificates are cached per PEM pair, so repeated calls with the
    same identity cost about one signature each.

    Signatures already in the document: a complete signature by someone else is kept, and
    the new signature, placed last, covers it (as NAADS countersigns Environment Canada).
    Our own earlier signature (same certificate or same key) is removed rather than
    duplicated, and so is an empty placeholder ``<Signature>`` with no ``<SignedInfo>``.
    Removing our earlier signature breaks any signature that was added after it and covered
    it; re-sign only alerts that others have not countersigned since.

    Raises ``SignatureError`` when the key or certificate is unusable or the data is not
    well-formed XML (it is read by the hardened parser like any other input).
    """
    material = _material_for(key_pem, cert_pem)
    root = parse_xml(data)
    if isinstance(root, Problem):
        raise SignatureError(f"cannot sign: {root.message}")
    if root.tag == SIGNATURE:
        raise SignatureError("cannot sign: the document is a <Signature>, not an alert")
    for sig in signatures(root):
        if sig.find("ds:SignedInfo", NS) is None or _is_own(sig, material.own_der, material.own_spki):
            detach(sig)
    signer = _Signer(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=material.method,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    try:
        signed = signer.sign(root, key=material.key, cert=list(material.certs))
    except (ValueError, TypeError, cryptography.exceptions.UnsupportedAlgorithm) as exc:
        raise SignatureError(f"signing failed: {exc}") from exc
    return bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))


@dataclass(frozen=True, slots=True)
class _Material:
    """A signing identity, loaded and checked: what ``sign`` needs of the two PEMs."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certs: tuple[x509.Certificate, ...]  # the signer's first, then its chain
    method: SignatureMethod
    own_der: frozenset[bytes]  # DER of the signer's certificate
    own_spki: bytes  # SubjectPublicKeyInfo DER of the signing key


def _material_for(key_pem: bytes, cert_pem: bytes) -> _Material:
    if isinstance(key_pem, bytes) and isinstance(cert_pem, bytes):
        return _material(key_pem, cert_pem)
    return _material.__wrapped__(key_pem, cert_pem)  # not hashable (bytearray): no cache


@lru_cache(maxsize=_MATERIAL_CACHE_SIZE)
def _material(key_pem: bytes, cert_pem: bytes) -> _Material:
    """Load and check a key and its certificate(s). Only successes are cached: bad material
    raises ``SignatureError`` on every call. The cached objects are immutable."""
    key = _load_private_key(key_pem)
    certs = load_pems(cert_pem, "signing certificate")
    method = _signature_method_for(key)
    own_spki = _spki(key.public_key())
    if _spki(certs[0].public_key()) != own_spki:
        raise SignatureError("signing certificate does not belong to the signing key "
                             "(the first certificate of the PEM must be the signer's)")
    return _Material(key, tuple(certs), method, frozenset({certs[0].public_bytes(Encoding.DER)}), own_spki)


def _load_private_key(key_pem: bytes) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    try:
        key = load_pem_private_key(key_pem, password=None)
    except TypeError as exc:  # encrypted key and no password
        raise SignatureError(f"signing key is encrypted; give an unencrypted PEM key ({exc})") from exc
    except (ValueError, cryptography.exceptions.UnsupportedAlgorithm) as exc:
        raise SignatureError(f"signing key is not a usable PEM private key ({exc})") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise SignatureError(f"RSA signing key has {key.key_size} bits; at least 2048 are needed")
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key
    raise SignatureError(f"signing key type {type(key).__name__} is not supported; use RSA or EC")


def _signature_method_for(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> SignatureMethod:
    if isinstance(key, rsa.RSAPrivateKey):
        return SignatureMethod.RSA_SHA256
    if key.curve.name not in XMLSigner.known_ecdsa_curve_oids:
        raise SignatureError(f"EC curve {key.curve.name} is not supported; use P-256")
    return SignatureMethod.ECDSA_SHA256


def _spki(public_key: Any) -> bytes:
    return bytes(public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


def _is_own(sig: etree._Element, own_ders: frozenset[bytes], own_key: bytes) -> bool:
    try:
        ders = hint_ders(sig)
    except (binascii.Error, ValueError):
        return False
    for der in ders:
        if der in own_ders:
            return True
        try:
            if _spki(x509.load_der_x509_certificate(der).public_key()) == own_key:
                return True
        except ValueError:
            continue
    return False
