"""The CPU-bound steps of ingest, as plain functions of picklable values.

Parsing, checking the signature and signing the answer are most of what a post costs, and
nearly all of it holds the GIL (signxml is Python; cryptography keeps the GIL while it
signs). So ``Ingest`` runs these functions in worker processes when ``ingest.processes`` is
above 0 (the other cores then share the work), else in its thread pool: the same functions
either way, so both paths give the same answers. Nothing here touches the store or the
broker; what a step needs from them (the entity's certificates) is passed in.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from hub.cap import profiles
from hub.cap.model import Alert, AlertKey, Status
from hub.cap.parse import identify, parse
from hub.cap.problems import Problem, has_errors
from hub.cap.serialize import to_xml
from hub.cap.sign import sign
from hub.cap.trust import TrustStore
from hub.cap.verify import SignaturePolicy, VerifyResult, verify

__all__ = ["Checked", "SignatureInputs", "check", "sign_answer"]


@dataclass(frozen=True, slots=True)
class SignatureInputs:
    """What judging a signature takes: the entity's senders and certificates and the policy."""

    senders: tuple[str, ...]
    pems: tuple[bytes, ...]
    required: bool  # the entity requires signed Actual messages
    expiry_at: Literal["now", "sent"]
    allow_sha1: bool
    allow_dsa: bool


@dataclass(frozen=True, slots=True)
class Checked:
    """A posted message after parse, schema, rules, profile and signature check.

    ``alert`` is None when the message is not valid CAP; ``key`` then names it as well as
    it can (for the Error), and ``signature`` is None: a signature is only judged on a
    valid message."""

    alert: Alert | None
    problems: tuple[Problem, ...]
    key: AlertKey | None
    signature: VerifyResult | None

    @property
    def ok(self) -> bool:
        return self.alert is not None and not has_errors(self.problems)

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.is_error)


def check(data: bytes, *, max_bytes: int, profile: str, now: datetime, sig: SignatureInputs) -> Checked:
    """Parse and check ``data`` and, when it is valid CAP, verify its signature(s) against
    the entity's certificates. Whether the sender belongs to the entity is the caller's
    question, asked before it looks at ``signature``."""
    result = parse(data, max_bytes=max_bytes, profile=profiles.get_profile(profile) if profile else None,
                   now=now)
    alert = result.alert
    if alert is None or not result.ok:
        return Checked(None, result.problems, identify(result.root) if result.root is not None else None,
                       None)
    policy = SignaturePolicy(
        # Signatures are required of Actual messages; exercises and tests may come unsigned,
        # but a signature that is present is always checked.
        required=sig.required and alert.status is Status.ACTUAL,
        expiry_at=sig.expiry_at, allow_sha1=sig.allow_sha1, allow_dsa=sig.allow_dsa,
    )
    verdict = verify(data, trust=trust_store(sig.senders, sig.pems), policy=policy, sender=alert.sender,
                     now=now)
    return Checked(alert, result.problems, alert.key, verdict)


def sign_answer(answer: Alert, key_pem: bytes, cert_pem: bytes) -> bytes:
    """The hub's Ack or Error as signed CAP XML."""
    return sign(to_xml(answer), key_pem, cert_pem)


@functools.lru_cache(maxsize=64)
def trust_store(senders: tuple[str, ...], pems: tuple[bytes, ...]) -> TrustStore:
    """Keyed on the certificates themselves, so a newly registered one is seen at once."""
    return TrustStore.from_pem({s: list(pems) for s in senders})
