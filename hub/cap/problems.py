"""Findings about a CAP message, as values.

A finding (``Problem``) names where (an XPath-like path and, when known, the source line),
what (a rule ``Code``), how bad (``Level``) and a message a person can act on. Nothing here
raises: callers decide what level refuses a message (errors do, warnings do not).

Rule codes are named after what they enforce; ``SECTIONS`` ties each normative rule to the
section of the CAP 1.2 specification that states it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Code(StrEnum):
    # The XML layer: what is refused before CAP is even looked at.
    XML_EMPTY = "xml-empty"
    XML_MALFORMED = "xml-malformed"
    XML_TOO_LARGE = "xml-too-large"
    XML_DTD = "xml-dtd-forbidden"
    XML_ENTITY = "xml-entity-forbidden"
    XML_XINCLUDE = "xml-xinclude-forbidden"
    XML_ENCODING = "xml-encoding"
    # The document is not CAP 1.2.
    CAP_VERSION = "cap-version"
    CAP_ROOT = "cap-root"
    # The schema (schemas/cap-1.2.xsd).
    XSD_MISSING = "xsd-missing-element"
    XSD_UNEXPECTED = "xsd-unexpected-element"
    XSD_ENUM = "xsd-enumeration"
    XSD_PATTERN = "xsd-pattern"
    XSD_TYPE = "xsd-datatype"
    XSD_ATTRIBUTE = "xsd-attribute"
    XSD_INVALID = "xsd-invalid"
    # Normative rules of CAP 1.2 that the schema cannot express.
    IDENTIFIER_CHARS = "identifier-chars"
    SENDER_CHARS = "sender-chars"
    DATETIME_OFFSET = "datetime-offset"
    REFERENCES_REQUIRED = "references-required"
    REFERENCES_FORMAT = "references-format"
    REFERENCES_SELF = "references-self"
    REFERENCES_FUTURE = "references-future"
    REFERENCES_ON_ALERT = "references-on-alert"
    RESTRICTION_SCOPE = "restriction-scope"
    RESTRICTION_REQUIRED = "restriction-required"
    ADDRESSES_REQUIRED = "addresses-required"
    ADDRESSES_SCOPE = "addresses-scope"
    ADDRESSES_FORMAT = "addresses-format"
    INCIDENTS_FORMAT = "incidents-format"
    EXPIRES_ORDER = "expires-order"
    LANGUAGE_TAG = "language-tag"
    POLYGON_SYNTAX = "polygon-syntax"
    POLYGON_POINTS = "polygon-points"
    POLYGON_CLOSED = "polygon-closed"
    COORDINATE_RANGE = "coordinate-range"
    CIRCLE_SYNTAX = "circle-syntax"
    CIRCLE_RADIUS = "circle-radius"
    DEREF_URI_BASE64 = "derefuri-base64"
    RESOURCE_SIZE = "resource-size"
    CEILING_WITHOUT_ALTITUDE = "ceiling-without-altitude"
    CEILING_BELOW_ALTITUDE = "ceiling-below-altitude"
    VALUE_NAME_EMPTY = "value-name-empty"
    WEB_URI = "web-uri"
    RESOURCE_URI = "resource-uri"
    SENT_FUTURE = "sent-future"
    EXPIRED = "expired"
    # Profiles: extra rules a receiving system adds (hub.cap.profiles).
    PROFILE = "profile"


# Where each normative rule is stated in the CAP 1.2 specification.
SECTIONS: dict[Code, str] = {
    Code.IDENTIFIER_CHARS: "3.2.1 identifier",
    Code.SENDER_CHARS: "3.2.1 sender",
    Code.DATETIME_OFFSET: "3.3.2 dateTime",
    Code.REFERENCES_REQUIRED: "3.2.1 references",
    Code.REFERENCES_FORMAT: "3.2.1 references",
    Code.REFERENCES_SELF: "3.2.1 references",
    Code.REFERENCES_FUTURE: "3.2.1 references",
    Code.REFERENCES_ON_ALERT: "3.2.1 msgType",
    Code.RESTRICTION_SCOPE: "3.2.1 restriction",
    Code.RESTRICTION_REQUIRED: "3.2.1 scope",
    Code.ADDRESSES_REQUIRED: "3.2.1 scope",
    Code.ADDRESSES_SCOPE: "3.2.1 addresses",
    Code.ADDRESSES_FORMAT: "3.2.1 addresses",
    Code.INCIDENTS_FORMAT: "3.2.1 incidents",
    Code.EXPIRES_ORDER: "3.2.2 expires",
    Code.LANGUAGE_TAG: "3.2.2 language",
    Code.POLYGON_SYNTAX: "3.2.4 polygon",
    Code.POLYGON_POINTS: "3.2.4 polygon",
    Code.POLYGON_CLOSED: "3.2.4 polygon",
    Code.COORDINATE_RANGE: "3.3.1 WGS 84",
    Code.CIRCLE_SYNTAX: "3.2.4 circle",
    Code.CIRCLE_RADIUS: "3.2.4 circle",
    Code.DEREF_URI_BASE64: "3.2.3 derefUri",
    Code.RESOURCE_SIZE: "3.2.3 size",
    Code.CEILING_WITHOUT_ALTITUDE: "3.2.4 ceiling",
    Code.CEILING_BELOW_ALTITUDE: "3.2.4 ceiling",
    Code.VALUE_NAME_EMPTY: "3.2.2 valueName",
    Code.WEB_URI: "3.2.2 web",
    Code.RESOURCE_URI: "3.2.3 uri",
    Code.SENT_FUTURE: "3.2.1 sent",
    Code.EXPIRED: "3.2.2 expires",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: ``path`` is XPath-like (``/alert/info[1]/area[2]/polygon[1]``)."""

    path: str
    code: Code | str
    level: Level
    message: str
    line: int | None = None

    @property
    def is_error(self) -> bool:
        return self.level is Level.ERROR

    def at_line(self, line: int | None) -> Problem:
        return replace(self, line=line)

    def format(self, source: str = "") -> str:
        """``file:line: path: CODE: message``, the form `cap-hub cap validate` prints."""
        where = f"{source}:{self.line if self.line is not None else '?'}: " if source else ""
        level = "" if self.is_error else "warning: "
        return f"{where}{self.path}: {self.code}: {level}{self.message}"

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "code": str(self.code),
            "level": str(self.level),
            "message": self.message,
        }


def error(path: str, code: Code | str, message: str, line: int | None = None) -> Problem:
    return Problem(path, code, Level.ERROR, message, line)


def warning(path: str, code: Code | str, message: str, line: int | None = None) -> Problem:
    return Problem(path, code, Level.WARNING, message, line)


def has_errors(problems: Iterable[Problem]) -> bool:
    return any(p.is_error for p in problems)
