"""The hub's own records: entities, accounts and their grants, tokens, stored alerts.

Pure values, no I/O. The store (``hub.store``) persists them; services and the API use them.
Named after BE-Alert's vocabulary: an *entity* is an organisation that sends (a commune or
governor: type 1; a police zone or PLP: type 2), an *account* is a person or system of one
entity, with a role and grants.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum


class EntityType(IntEnum):
    """Type 1 (commune, governor) may alert its own groups and its area; type 2 (police zone,
    PLP) only its own predefined groups."""

    AREA = 1
    GROUPS = 2


class Role(StrEnum):
    COORDINATOR = "coordinator"
    CO_COORDINATOR = "co-coordinator"
    MANDATED = "mandated"


class Kind(StrEnum):
    """The kinds of message an account may be granted. A CAP message says which it is with
    ``<parameter><valueName>messageKind</valueName><value>prevention</value></parameter>``;
    without one it is an alert."""

    ALERT = "alert"
    PREVENTION = "prevention"
    NEWS = "news"


KIND_PARAMETER = "messageKind"


class AlertState(StrEnum):
    ACTIVE = "active"
    UPDATED = "updated"  # superseded by an Update
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    ANSWER = "answer"  # an Ack or Error posted by a partner: stored and linked, never active


@dataclass(frozen=True, slots=True)
class Grants:
    """What an account may do within its entity. ``None`` means "everything of the entity"
    (a coordinator without explicit grants); an empty set means nothing."""

    groups: frozenset[str] | None = None
    kinds: frozenset[Kind] | None = None
    manage_members: bool = True

    def may_send(self, kind: Kind) -> bool:
        return self.kinds is None or kind in self.kinds

    def may_reach(self, group: str) -> bool:
        return self.groups is None or group in self.groups

    def to_json(self) -> dict[str, object]:
        return {
            "groups": None if self.groups is None else sorted(self.groups),
            "kinds": None if self.kinds is None else sorted(self.kinds),
            "manage_members": self.manage_members,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Grants:
        groups, kinds = data.get("groups"), data.get("kinds")
        return cls(
            groups=None if groups is None else frozenset(str(g) for g in groups),  # type: ignore[attr-defined]
            kinds=None if kinds is None else frozenset(Kind(str(k)) for k in kinds),  # type: ignore[attr-defined]
            manage_members=bool(data.get("manage_members", True)),
        )


@dataclass(frozen=True, slots=True)
class Entity:
    id: int
    name: str
    type: EntityType
    senders: tuple[str, ...]
    signature_required: bool = True
    profile: str = ""  # extra CAP rules for its messages ("", "be", "ipaws")
    territory: str | None = None  # GeoJSON text; None: not limited by area


@dataclass(frozen=True, slots=True)
class Certificate:
    id: int
    entity_id: int
    pem: bytes
    fingerprint: str  # SHA-256 of the DER, hex
    subject: str
    not_after: datetime


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    entity_id: int
    name: str
    role: Role
    grants: Grants


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """One CAP message as the hub keeps it."""

    id: int
    sender: str
    identifier: str
    sent: str  # exactly as in the message
    status: str
    msg_type: str
    scope: str
    expires: datetime | None  # the latest <expires> of its infos
    references: str | None
    entity_id: int | None
    account_id: int | None
    state: AlertState
    received: bytes  # the exact bytes received
    signed: bytes  # the exact bytes the hub signed and emits
    answer: bytes  # the signed Ack the sender got, returned again on a repeated post
    digest: str  # SHA-256 of ``received``
    received_at: datetime
    superseded_by: int | None = None
