"""Development identities: the key fits the certificate, and the dates are the ones asked for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key
from cryptography.x509.oid import NameOID

from hub.cap.devkeys import KeyType, new_identity

START = datetime(2026, 1, 1, tzinfo=UTC)


def _spki(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize(
    ("key_type", "key_class"), [("rsa", rsa.RSAPrivateKey), ("ec", ec.EllipticCurvePrivateKey)]
)
def test_key_and_self_signed_certificate(key_type: KeyType, key_class: type) -> None:
    key_pem, cert_pem = new_identity("dev.example.org", key_type=key_type, not_before=START, days=30)
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = load_pem_private_key(key_pem, password=None)
    assert isinstance(key, key_class)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert _spki(cert.public_key()) == _spki(key.public_key())  # type: ignore[arg-type]
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "dev.example.org"
    assert cert.not_valid_before_utc == START
    assert cert.not_valid_after_utc == START + timedelta(days=30)
    cert.verify_directly_issued_by(cert)  # self-signed, and the signature holds
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_sizes() -> None:
    key_pem, _ = new_identity("dev.example.org", key_type="rsa")
    rsa_key = load_pem_private_key(key_pem, password=None)
    assert isinstance(rsa_key, rsa.RSAPrivateKey) and rsa_key.key_size == 2048
    key_pem, _ = new_identity("dev.example.org", key_type="ec")
    ec_key = load_pem_private_key(key_pem, password=None)
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey) and ec_key.curve.name == "secp256r1"


def test_default_start_is_now_with_slack() -> None:
    before = datetime.now(UTC)
    _, cert_pem = new_identity("dev.example.org", key_type="ec")
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.not_valid_before_utc <= before
    assert before - cert.not_valid_before_utc < timedelta(minutes=10)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=730)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"common_name": " "}, "common_name"),
        ({"common_name": "x", "days": 0}, "days"),
        ({"common_name": "x", "key_type": "dsa"}, "key_type"),
        ({"common_name": "x", "not_before": datetime(2026, 1, 1)}, "time-zone"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        new_identity(**kwargs)  # type: ignore[arg-type]
