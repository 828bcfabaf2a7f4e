"""Which certificates may sign for which CAP sender: the ``TrustStore`` that
``hub.cap.verify.verify`` checks signatures against, and PEM certificate loading.

Trust is by the end-entity certificate itself, pinned per ``<sender>``: no CA chains are
built, and a certificate that only the document brings is never trusted. Each pinned
certificate is kept with what verifying needs of it (DER, subject CN, public key), worked
out once when the store is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from hub.errors import SignatureError

__all__ = ["TrustStore"]


@dataclass(frozen=True, slots=True)
class CertEntry:
    """A pinned certificate with its DER, subject CN and public key, computed once."""

    cert: x509.Certificate
    der: bytes
    cn: str | None
    public_key: Any


def common_name(cert: x509.Certificate) -> str | None:
    """The first subject CN of ``cert``, or None."""
    try:
        attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return None
    if not attrs:
        return None
    value = attrs[0].value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _entry(cert: x509.Certificate) -> CertEntry:
    return CertEntry(cert, cert.public_bytes(Encoding.DER), common_name(cert), cert.public_key())


def load_pems(pem: bytes, what: str) -> list[x509.Certificate]:
    """Every certificate in ``pem``; raises ``SignatureError`` starting with ``what`` when
    it holds none."""
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise SignatureError(f"{what}: no usable PEM certificate ({exc})") from exc


class TrustStore:
    """Certificates pinned per CAP ``<sender>``, plus certificates any sender may sign with
    (``cap-hub cap verify --cert C``). Trust is by the end-entity certificate itself: no CA
    chains are built. Immutable once made, so one store can serve every thread."""

    def __init__(
        self,
        by_sender: Mapping[str, Iterable[x509.Certificate]] | None = None,
        *,
        any_sender: Iterable[x509.Certificate] = (),
    ) -> None:
        self._by_sender: dict[str, tuple[CertEntry, ...]] = {
            sender.strip(): tuple(_entry(c) for c in certs)
            for sender, certs in (by_sender or {}).items()
        }
        self._any: tuple[CertEntry, ...] = tuple(_entry(c) for c in any_sender)
        self._senders_of: dict[bytes, set[str]] = {}
        for sender, entries in self._by_sender.items():
            for e in entries:
                self._senders_of.setdefault(e.der, set()).add(sender)

    @classmethod
    def from_pem(
        cls,
        by_sender: Mapping[str, bytes | Iterable[bytes]] | None = None,
        *,
        any_sender: bytes | Iterable[bytes] = (),
    ) -> TrustStore:
        """Build from PEM bytes; one PEM may hold several certificates. Raises
        ``SignatureError`` naming the sender whose PEM holds no certificate."""
        certs: dict[str, list[x509.Certificate]] = {}
        for sender, pems in (by_sender or {}).items():
            for pem in [pems] if isinstance(pems, bytes) else pems:
                certs.setdefault(sender, []).extend(load_pems(pem, f"trust store, sender {sender!r}"))
        anyone: list[x509.Certificate] = []
        for pem in [any_sender] if isinstance(any_sender, bytes) else any_sender:
            anyone.extend(load_pems(pem, "trust store, certificates for any sender"))
        return cls(certs, any_sender=anyone)

    @property
    def senders(self) -> frozenset[str]:
        return frozenset(self._by_sender)

    def certificates_for(self, sender: str | None) -> tuple[x509.Certificate, ...]:
        """The certificates that may sign for ``sender`` (its own, then the any-sender ones)."""
        return tuple(e.cert for e in self.entries_for(sender))

    def entries_for(self, sender: str | None) -> tuple[CertEntry, ...]:
        """As ``certificates_for``, with each certificate's precomputed ``CertEntry``."""
        own = self._by_sender.get(sender.strip(), ()) if sender is not None else ()
        return own + self._any

    def registered_for_others(self, der: bytes) -> bool:
        """Whether the certificate with this DER is pinned for some sender (used to explain
        an ``UNTRUSTED_KEY``: registered, but for another sender)."""
        return der in self._senders_of
