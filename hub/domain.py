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
    simulation: bool = False  # in the simulation environment: its campaigns send nothing


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
    signed: bytes  # the exact bytes the hub signed and emits; b"" until first emitted
    answer: bytes  # the signed Ack the sender got, returned again on a repeated post
    digest: str  # SHA-256 of ``received``
    received_at: datetime
    superseded_by: int | None = None
    simulation: bool = False  # of the simulation environment (its entity's, or the hub's, when received)


# --- PLP groups and their members ---------------------------------------------------------


class Channel(StrEnum):
    SMS = "sms"
    VOICE = "voice"
    EMAIL = "email"


class Language(StrEnum):
    NL = "nl"
    FR = "fr"
    DE = "de"
    EN = "en"


class PhoneKind(StrEnum):
    """What a number can receive: a mobile gets SMS and calls, a fixed line only calls."""

    MOBILE = "mobile"
    FIXED = "fixed"
    OTHER = "other"  # VoIP, personal numbers, pagers...: calls only

    @property
    def channels(self) -> tuple[Channel, ...]:
        return (Channel.SMS, Channel.VOICE) if self is PhoneKind.MOBILE else (Channel.VOICE,)


@dataclass(frozen=True, slots=True)
class Group:
    """A PLP group of one entity. ``gid`` is what CAP ``<addresses>`` name it by (unique in
    the hub); ``territory`` is GeoJSON (geocodes such as NIS or postal codes in its
    properties); ``channels`` says which channels each kind of message uses by default."""

    id: int
    gid: str
    entity_id: int
    name: str
    kind: str = "residents"  # residents, shops, farmers, ... (free text)
    audience: tuple[str, ...] = ()
    territory: str | None = None
    languages: tuple[Language, ...] = (Language.NL, Language.FR)
    channels: tuple[tuple[Kind, tuple[Channel, ...]], ...] = (
        (Kind.ALERT, (Channel.SMS, Channel.VOICE, Channel.EMAIL)),
        (Kind.PREVENTION, (Channel.SMS, Channel.EMAIL)),
        (Kind.NEWS, (Channel.EMAIL,)),
    )

    def channels_for(self, kind: Kind) -> tuple[Channel, ...]:
        return dict(self.channels).get(kind, ())


@dataclass(frozen=True, slots=True)
class Phone:
    number: str  # E.164
    kind: PhoneKind


@dataclass(frozen=True, slots=True)
class MemberData:
    """A member's personal data as given by a coordinator (an import row, an API body)."""

    name: str
    language: Language
    phones: tuple[Phone, ...] = ()
    emails: tuple[str, ...] = ()  # normalised: domain in lower case
    external_id: str | None = None  # the coordinator's own stable id, if any
    address: str | None = None
    lat: float | None = None
    lon: float | None = None
    channels: tuple[Channel, ...] = ()  # preferences; empty: the group's defaults

    @property
    def contact_points(self) -> tuple[str, ...]:
        """Every number and address, the keys on which two records are the same person."""
        return tuple(p.number for p in self.phones) + self.emails


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    entity_id: int
    data: MemberData
    groups: tuple[str, ...]  # gids


# --- campaigns and deliveries ---------------------------------------------------------------


class CampaignState(StrEnum):
    PLANNING = "planning"  # the router is writing its deliveries
    SENDING = "sending"  # planned; deliveries handed to the channels
    NOTHING = "nothing"  # planned, but no one to reach (the plan says why)
    DONE = "done"  # every delivery reached a final state
    CANCELLED = "cancelled"  # a Cancel stopped what was not yet sent


class DeliveryState(StrEnum):
    PENDING = "pending"  # stored, not yet handed to the broker
    QUEUED = "queued"  # handed to deliver.<channel> (again, after a transient failure)
    SENDING = "sending"  # claimed by a worker, handed to the provider, no answer stored yet
    SUBMITTED = "submitted"  # the provider answered; the outcome is on its way to the tracker
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"  # expired or otherwise not sent; ``reason`` says why
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Campaign:
    id: int
    alert_id: int
    entity_id: int | None
    kind: Kind
    simulation: bool  # Exercise and Test alerts go to the simulation environment
    state: CampaignState
    plan: str  # JSON: the plan's counts (groups, members, per channel and language, skipped)
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One delivery as handed to a channel worker. ``address`` is personal data."""

    id: int
    campaign_id: int
    member_id: int | None
    channel: Channel
    address: str | None
    language: str
    info: int
    state: DeliveryState
