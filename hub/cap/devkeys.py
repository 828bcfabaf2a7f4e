"""Development signing identities: a private key and a self-signed X.509 certificate.

``cap-hub keys new DIR`` writes the pair this module makes to ``DIR/key.pem`` and
``DIR/cert.pem``; tests make theirs at run time (an expired certificate is one whose
``not_before`` lies in the past and whose ``days`` are few). Nothing here touches files.

These identities are for development and tests. A production sender registers the
certificate its own PKI issued; the hub pins it in a ``hub.cap.trust.TrustStore``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

KeyType = Literal["rsa", "ec"]

RSA_KEY_BITS = 2048
# A little slack so that a certificate made "now" is already valid on a peer whose
# clock runs slightly behind ours.
CLOCK_SLACK = timedelta(minutes=5)


def new_identity(
    common_name: str,
    *,
    days: int = 730,
    key_type: KeyType = "rsa",
    not_before: datetime | None = None,
) -> tuple[bytes, bytes]:
    """Make ``(private key PEM, self-signed certificate PEM)``.

    :param common_name: the certificate's subject (and issuer) CN, e.g. ``"dev.example.org"``.
    :param days: validity, counted from ``not_before``.
    :param key_type: ``"rsa"`` (RSA 2048, signs RSA-SHA256) or ``"ec"`` (P-256, ECDSA-SHA256).
    :param not_before: start of validity, time-zone aware; defaults to now minus a few minutes.

    The key is PKCS#8 PEM without a passphrase; keep it out of version control.
    """
    if not common_name.strip():
        raise ValueError("common_name must not be empty")
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    if not_before is None:
        not_before = datetime.now(UTC) - CLOCK_SLACK
    elif not_before.tzinfo is None:
        raise ValueError("not_before must be time-zone aware")

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if key_type == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    elif key_type == "ec":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"key_type must be 'rsa' or 'ec', not {key_type!r}")

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)
