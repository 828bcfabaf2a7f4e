"""The CAP 1.2 message model: immutable values named after the specification.

Field names are the specification's element names in snake case (``msgType`` → ``msg_type``);
repeated elements are tuples named in the plural (``info`` → ``infos``, ``area`` → ``areas``).
Free-text fields keep the text exactly as received. ``polygon`` and ``circle`` keep their text
too, since a malformed one must still be reported by the rules; ``points()``, ``center`` and
``radius`` read them. Times are timezone-aware ``datetime`` values that keep their offset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum


class Status(StrEnum):
    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    DRAFT = "Draft"


class MsgType(StrEnum):
    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ACK = "Ack"
    ERROR = "Error"


class Scope(StrEnum):
    PUBLIC = "Public"
    RESTRICTED = "Restricted"
    PRIVATE = "Private"


class Category(StrEnum):
    GEO = "Geo"
    MET = "Met"
    SAFETY = "Safety"
    SECURITY = "Security"
    RESCUE = "Rescue"
    FIRE = "Fire"
    HEALTH = "Health"
    ENV = "Env"
    TRANSPORT = "Transport"
    INFRA = "Infra"
    CBRNE = "CBRNE"
    OTHER = "Other"


class ResponseType(StrEnum):
    SHELTER = "Shelter"
    EVACUATE = "Evacuate"
    PREPARE = "Prepare"
    EXECUTE = "Execute"
    AVOID = "Avoid"
    MONITOR = "Monitor"
    ASSESS = "Assess"
    ALL_CLEAR = "AllClear"
    NONE = "None"


class Urgency(StrEnum):
    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"


class Severity(StrEnum):
    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"
    UNKNOWN = "Unknown"


class Certainty(StrEnum):
    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"


NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
DEFAULT_LANGUAGE = "en-US"  # the schema's default for an absent <language>

# Elements the schema lets repeat. Finding paths always give these a 1-based position
# (``/alert/info[1]/area[2]/polygon[1]``) and never give one to the others (``/alert/sent``).
REPEATED = frozenset({
    "code", "info", "category", "responseType", "eventCode", "parameter", "resource",
    "area", "polygon", "circle", "geocode",
})

# CAP 1.2 §3.3.2: "YYYY-MM-DDThh:mm:ssXzh:zm", no fractions, never "Z".
_DATETIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)([-+])(\d\d):(\d\d)$")


def parse_datetime(text: str) -> datetime:
    """Read a CAP dateTime; raises ``ValueError`` for anything but ``...T..±hh:mm``."""
    m = _DATETIME.match(text.strip())
    if m is None:
        raise ValueError(f"not a CAP dateTime with an explicit offset: {text!r}")
    y, mo, d, h, mi, s, sign, oh, om = m.groups()
    offset = timedelta(hours=int(oh), minutes=int(om))
    return datetime(
        int(y), int(mo), int(d), int(h), int(mi), int(s),
        tzinfo=timezone(-offset if sign == "-" else offset),
    )


def format_datetime(value: datetime) -> str:
    """Write a CAP dateTime; UTC is written ``-00:00`` as §3.3.2 asks."""
    if value.tzinfo is None:
        raise ValueError("a CAP dateTime needs a time zone")
    offset = value.utcoffset() or timedelta(0)
    sign = "-" if offset <= timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return value.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def split_quoted(text: str) -> tuple[str, ...]:
    """Split a space-delimited list in which multi-word items are in double quotes
    (``<addresses>``, ``<incidents>``)."""
    return tuple(a or b for a, b in re.findall(r'"([^"]*)"|(\S+)', text))


@dataclass(frozen=True, slots=True)
class AlertKey:
    """What identifies a CAP message: the ``sender,identifier,sent`` triplet of §3.2.1."""

    sender: str
    identifier: str
    sent: datetime

    def __str__(self) -> str:
        return f"{self.sender},{self.identifier},{format_datetime(self.sent)}"

    @classmethod
    def parse(cls, triplet: str) -> AlertKey:
        """Read one ``sender,identifier,sent`` triplet; raises ``ValueError`` if malformed."""
        parts = triplet.split(",")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise ValueError(f"not a sender,identifier,sent triplet: {triplet!r}")
        return cls(parts[0], parts[1], parse_datetime(parts[2]))


@dataclass(frozen=True, slots=True)
class ValuePair:
    """A ``valueName``/``value`` pair; the subclasses say which element it came from."""

    value_name: str
    value: str


@dataclass(frozen=True, slots=True)
class EventCode(ValuePair):
    pass


@dataclass(frozen=True, slots=True)
class Parameter(ValuePair):
    pass


@dataclass(frozen=True, slots=True)
class Geocode(ValuePair):
    pass


@dataclass(frozen=True, slots=True)
class Point:
    """A WGS 84 point."""

    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Polygon:
    """``<polygon>``: space-delimited ``lat,lon`` pairs, the first equal to the last."""

    text: str

    def points(self) -> tuple[Point, ...]:
        """The pairs as points; raises ``ValueError`` on a pair that is not ``lat,lon``."""
        out = []
        for pair in self.text.split():
            lat, sep, lon = pair.partition(",")
            if not sep:
                raise ValueError(f"{pair!r} is not a lat,lon pair")
            out.append(Point(float(lat), float(lon)))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Circle:
    """``<circle>``: ``lat,lon radius`` with the radius in kilometres."""

    text: str

    def _split(self) -> tuple[Point, float]:
        parts = self.text.split()
        if len(parts) != 2:
            raise ValueError(f"{self.text!r} is not 'lat,lon radius'")
        lat, sep, lon = parts[0].partition(",")
        if not sep:
            raise ValueError(f"{parts[0]!r} is not a lat,lon pair")
        return Point(float(lat), float(lon)), float(parts[1])

    @property
    def center(self) -> Point:
        return self._split()[0]

    @property
    def radius_km(self) -> float:
        return self._split()[1]


@dataclass(frozen=True, slots=True)
class Area:
    area_desc: str
    polygons: tuple[Polygon, ...] = ()
    circles: tuple[Circle, ...] = ()
    geocodes: tuple[Geocode, ...] = ()
    altitude: Decimal | None = None
    ceiling: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    resource_desc: str
    mime_type: str
    size: int | None = None
    uri: str | None = None
    deref_uri: str | None = None
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class Info:
    categories: tuple[Category, ...]
    event: str
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    language: str | None = None
    response_types: tuple[ResponseType, ...] = ()
    audience: str | None = None
    event_codes: tuple[EventCode, ...] = ()
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    sender_name: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    web: str | None = None
    contact: str | None = None
    parameters: tuple[Parameter, ...] = ()
    resources: tuple[Resource, ...] = ()
    areas: tuple[Area, ...] = ()

    @property
    def lang(self) -> str:
        """The language in force: ``<language>`` or the schema's default, en-US."""
        return self.language or DEFAULT_LANGUAGE


@dataclass(frozen=True, slots=True)
class Alert:
    identifier: str
    sender: str
    sent: datetime
    status: Status
    msg_type: MsgType
    scope: Scope
    source: str | None = None
    restriction: str | None = None
    addresses: str | None = None
    codes: tuple[str, ...] = ()
    note: str | None = None
    references: str | None = None
    incidents: str | None = None
    infos: tuple[Info, ...] = ()

    @property
    def key(self) -> AlertKey:
        return AlertKey(self.sender, self.identifier, self.sent)

    @property
    def address_list(self) -> tuple[str, ...]:
        return split_quoted(self.addresses or "")

    @property
    def incident_list(self) -> tuple[str, ...]:
        return split_quoted(self.incidents or "")

    def reference_keys(self) -> tuple[AlertKey, ...]:
        """The referenced messages; raises ``ValueError`` on a malformed triplet."""
        return tuple(AlertKey.parse(t) for t in (self.references or "").split())
