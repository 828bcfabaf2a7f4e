"""Bytes → CAP 1.2 model, with every finding on the way.

The pipeline is: hardened XML parse (``xmlsafe``) → CAP 1.2 root check → schema → model →
normative rules → profile rules. A document that fails the schema yields no model (its
structure cannot be trusted), so the rules only ever see well-formed alerts. Findings from
the rules get their source line from the element their path names (or its nearest
ancestor, when the rule is about an element that is missing).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from lxml import etree

from hub.cap import rules, schema
from hub.cap.model import (
    NAMESPACE,
    Alert,
    AlertKey,
    Area,
    Category,
    Certainty,
    Circle,
    EventCode,
    Geocode,
    Info,
    MsgType,
    Parameter,
    Polygon,
    Resource,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
    ValuePair,
    parse_datetime,
)
from hub.cap.problems import Code, Problem, error, has_errors
from hub.cap.xmlsafe import DEFAULT_MAX_BYTES, element_path, parse_xml

_PREFIX = f"{{{NAMESPACE}}}"
_CUT = len(_PREFIX)


class Checker(Protocol):
    """Anything that adds findings about a parsed alert: a profile (``hub.cap.profiles``)."""

    def check(self, alert: Alert) -> list[Problem]: ...




@dataclass(frozen=True, slots=True)
class ParseResult:
    """What ``parse`` found: the alert (None when the document is not valid CAP 1.2 at the
    schema level) and every finding, errors and warnings, in document order."""

    alert: Alert | None
    problems: tuple[Problem, ...]
    root: etree._Element | None = None

    @property
    def ok(self) -> bool:
        """True when there is an alert and no finding at error level."""
        return self.alert is not None and not has_errors(self.problems)

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.is_error)


def parse(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    profile: Checker | None = None,
    now: datetime | None = None,
) -> ParseResult:
    """Parse and check a CAP 1.2 document; never raises on bad input."""
    root = parse_xml(data, max_bytes=max_bytes)
    if isinstance(root, Problem):
        return ParseResult(None, (root,))
    return check_tree(root, profile=profile, now=now)


def check_tree(
    root: etree._Element, *, profile: Checker | None = None, now: datetime | None = None
) -> ParseResult:
    """The part of ``parse`` after the XML layer, for a tree parsed by ``xmlsafe``."""
    wrong_root = schema.check_root(root)
    if wrong_root is not None:
        return ParseResult(None, (wrong_root,), root)
    found = schema.validate(root)
    if has_errors(found):
        return ParseResult(None, tuple(found), root)
    try:
        alert = _alert(root)
    except _Unreadable as exc:
        where = element_path(exc.el)
        return ParseResult(None, (*found, error(where, Code.XSD_TYPE, str(exc), _line(exc.el))), root)
    more = rules.check(alert, now=now)
    if profile is not None:
        more.extend(profile.check(alert))
    found.extend(p if p.line is not None else p.at_line(line_of(root, p.path)) for p in more)
    return ParseResult(alert, tuple(found), root)


_STEP = re.compile(r"([A-Za-z]+)(?:\[(\d+)\])?$")


def line_of(root: etree._Element, path: str) -> int | None:
    """The source line of the element a finding's path names, or of its nearest ancestor
    that exists (a rule may be about an element that is missing). Findings are rare, so
    lines are looked up here rather than recorded for every element while building."""
    node, line = root, _line(root)
    for step in path.split("/")[2:]:  # "", "alert", then the steps below the root
        m = _STEP.match(step)
        if m is None:
            break
        name, index = _PREFIX + m.group(1), int(m.group(2) or 1)
        same = [c for c in node if c.tag == name]
        if len(same) < index:
            break
        node = same[index - 1]
        line = _line(node) or line
    return line


def _line(el: etree._Element) -> int | None:
    line = el.sourceline
    return line if isinstance(line, int) else None


# --- tree → model. The schema has already checked structure, enums and datatypes, so the
# builders read the children in one pass and convert without checking again: enums by
# dictionary lookup, times with the C parser of datetime (the schema's pattern guarantees
# the ISO form).

_STATUS = {m.value: m for m in Status}
_MSG_TYPE = {m.value: m for m in MsgType}
_SCOPE = {m.value: m for m in Scope}
_CATEGORY = {m.value: m for m in Category}
_RESPONSE = {m.value: m for m in ResponseType}
_URGENCY = {m.value: m for m in Urgency}
_SEVERITY = {m.value: m for m in Severity}
_CERTAINTY = {m.value: m for m in Certainty}


def _cap_children(parent: etree._Element) -> Iterator[tuple[str, etree._Element]]:
    for el in parent:
        tag = el.tag
        # Comments and PIs have a function as tag; <Signature> has the XML-DSig namespace.
        if tag.__class__ is str and tag.startswith(_PREFIX):
            yield tag[_CUT:], el


def _text(el: etree._Element) -> str:
    if len(el):  # comments or PIs inside the text: join the text around them
        return "".join(t for t in el.itertext() if isinstance(t, str))
    return el.text or ""


class _Unreadable(Exception):
    """A value the schema let through that the model cannot hold (kept rare on purpose)."""

    def __init__(self, el: etree._Element, message: str) -> None:
        super().__init__(message)
        self.el = el


def _time(el: etree._Element) -> datetime:
    text = _text(el).strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    # XML Schema allows 24:00:00, the end of a day, which is 00:00:00 of the next day.
    if text[11:19] == "24:00:00":
        try:
            return datetime.fromisoformat(text[:11] + "00:00:00" + text[19:]) + timedelta(days=1)
        except ValueError:
            pass
    raise _Unreadable(el, f"<{el.tag[_CUT:]}> {text!r} is not a real point in time")


_ALERT_TEXT = {
    "identifier": "identifier", "sender": "sender", "source": "source",
    "restriction": "restriction", "addresses": "addresses", "note": "note",
    "references": "references", "incidents": "incidents",
}


def _alert(root: etree._Element) -> Alert:
    f: dict[str, Any] = {}
    codes: list[str] = []
    infos: list[Info] = []
    for name, el in _cap_children(root):
        field = _ALERT_TEXT.get(name)
        if field is not None:
            f[field] = _text(el)
        elif name == "info":
            infos.append(_info(el))
        elif name == "code":
            codes.append(_text(el))
        elif name == "sent":
            f["sent"] = _time(el)
        elif name == "status":
            f["status"] = _STATUS[_text(el)]
        elif name == "msgType":
            f["msg_type"] = _MSG_TYPE[_text(el)]
        elif name == "scope":
            f["scope"] = _SCOPE[_text(el)]
    return Alert(codes=tuple(codes), infos=tuple(infos), **f)


_INFO_TEXT = {
    "event": "event", "audience": "audience", "senderName": "sender_name",
    "headline": "headline", "description": "description", "instruction": "instruction",
    "contact": "contact",
}
_RESOURCE_TEXT = {
    "resourceDesc": "resource_desc", "mimeType": "mime_type", "derefUri": "deref_uri",
    "digest": "digest",
}


class _AreaParts:
    __slots__ = ("desc", "polygons", "circles", "geocodes", "altitude", "ceiling")

    def __init__(self) -> None:
        self.desc = ""
        self.polygons: list[Polygon] = []
        self.circles: list[Circle] = []
        self.geocodes: list[Geocode] = []
        self.altitude: Decimal | None = None
        self.ceiling: Decimal | None = None

    def build(self) -> Area:
        return Area(self.desc, tuple(self.polygons), tuple(self.circles), tuple(self.geocodes),
                    self.altitude, self.ceiling)


def _info(parent: etree._Element) -> Info:  # noqa: C901 - one branch per element below <info>
    """One flat pass over the CAP elements below <info> (no XML-DSig can be in there): the
    element names below <info> are unique to their level, and the schema has fixed their
    order, so each one says where it belongs. A flat pass makes half the Python objects a
    nested walk would."""
    f: dict[str, Any] = {}
    categories: list[Category] = []
    responses: list[ResponseType] = []
    event_codes: list[EventCode] = []
    parameters: list[Parameter] = []
    resources: list[Resource] = []
    areas: list[Area] = []
    pairs: list[Any] = event_codes
    pair_cls: Callable[[str, str], ValuePair] = EventCode
    pair_name = ""
    resource: dict[str, Any] | None = None
    area: _AreaParts | None = None
    elements = parent.iter()
    next(elements)  # <info> itself
    for el in elements:
        tag = el.tag
        if tag.__class__ is not str:
            continue  # a comment or processing instruction
        name = tag[_CUT:]  # the schema allows only CAP elements below <info>
        field = _INFO_TEXT.get(name)
        if field is not None:
            f[field] = _text(el)
        elif name == "valueName":
            pair_name = _text(el)
        elif name == "value":
            pairs.append(pair_cls(pair_name, _text(el)))
        elif name == "polygon":
            area.polygons.append(Polygon(_text(el)))  # type: ignore[union-attr]
        elif name == "circle":
            area.circles.append(Circle(_text(el)))  # type: ignore[union-attr]
        elif name == "geocode":
            pairs, pair_cls = area.geocodes, Geocode  # type: ignore[union-attr]
        elif name == "area":
            if area is not None:
                areas.append(area.build())
            area = _AreaParts()
        elif name == "areaDesc":
            area.desc = _text(el)  # type: ignore[union-attr]
        elif name == "category":
            categories.append(_CATEGORY[_text(el)])
        elif name in ("effective", "onset", "expires"):
            f[name] = _time(el)
        elif name == "urgency":
            f["urgency"] = _URGENCY[_text(el)]
        elif name == "severity":
            f["severity"] = _SEVERITY[_text(el)]
        elif name == "certainty":
            f["certainty"] = _CERTAINTY[_text(el)]
        elif name == "responseType":
            responses.append(_RESPONSE[_text(el)])
        elif name == "eventCode":
            pairs, pair_cls = event_codes, EventCode
        elif name == "parameter":
            pairs, pair_cls = parameters, Parameter
        elif name in ("language", "web"):  # xs:language and xs:anyURI collapse whitespace
            f[name] = _text(el).strip()
        elif name == "resource":
            if resource is not None:
                resources.append(Resource(**resource))
            resource = {}
        elif name in _RESOURCE_TEXT:
            resource[_RESOURCE_TEXT[name]] = _text(el)  # type: ignore[index]
        elif name == "size":
            resource["size"] = int(_text(el).strip())  # type: ignore[index]
        elif name == "uri":
            resource["uri"] = _text(el).strip()  # type: ignore[index]
        elif name == "altitude":
            area.altitude = Decimal(_text(el).strip())  # type: ignore[union-attr]
        elif name == "ceiling":
            area.ceiling = Decimal(_text(el).strip())  # type: ignore[union-attr]
    if resource is not None:
        resources.append(Resource(**resource))
    if area is not None:
        areas.append(area.build())
    return Info(
        categories=tuple(categories), response_types=tuple(responses),
        event_codes=tuple(event_codes), parameters=tuple(parameters),
        resources=tuple(resources), areas=tuple(areas), **f,
    )


def identify(root: etree._Element) -> AlertKey | None:
    """Best effort: the sender,identifier,sent of a document that may not be valid CAP, so
    that an Error can still name the message it refuses. None when any part is unusable."""
    found: dict[str, str] = {}
    for el in root:
        tag = el.tag
        if isinstance(tag, str):
            name = tag.rpartition("}")[2]
            if name in ("identifier", "sender", "sent") and name not in found:
                found[name] = _text(el).strip()
    try:
        key = AlertKey(found["sender"], found["identifier"], parse_datetime(found["sent"]))
    except (KeyError, ValueError):
        return None
    bad = set(" ,<&\t\r\n")
    if not key.sender or not key.identifier or bad & set(key.sender + key.identifier):
        return None
    return key
