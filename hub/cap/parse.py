"""Bytes → CAP 1.2 model, with every finding on the way.

The pipeline is: hardened XML parse (``xmlsafe``) → CAP 1.2 root check → schema → model →
normative rules → profile rules. A document that fails the schema yields no model (its
structure cannot be trusted), so the rules only ever see well-formed alerts. Findings from
the rules get their source line from the element their path names (or its nearest
ancestor, when the rule is about an element that is missing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, TypeVar

from lxml import etree

from hub.cap import rules, schema
from hub.cap.model import (
    NAMESPACE,
    REPEATED,
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
from hub.cap.problems import Problem, has_errors
from hub.cap.xmlsafe import DEFAULT_MAX_BYTES, parse_xml

_PREFIX = f"{{{NAMESPACE}}}"
_CUT = len(_PREFIX)

Lines = dict[str, int]


class Checker(Protocol):
    """Anything that adds findings about a parsed alert: a profile (``hub.cap.profiles``)."""

    def check(self, alert: Alert) -> list[Problem]: ...


_P = TypeVar("_P", bound=ValuePair)


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
    lines: Lines = {}
    alert = _alert(root, "/alert", lines)
    more = rules.check(alert, now=now)
    if profile is not None:
        more.extend(profile.check(alert))
    found.extend(p if p.line is not None else p.at_line(_line_for(p.path, lines)) for p in more)
    return ParseResult(alert, tuple(found), root)


def _line_for(path: str, lines: Lines) -> int | None:
    while path:
        line = lines.get(path)
        if line is not None:
            return line
        path = path.rpartition("/")[0]
    return None


# --- tree → model. The schema has already checked structure, enums and datatypes, so the
# builders read children in one pass and convert without re-checking. Positions in paths
# follow model.REPEATED, the convention the rules use.


def _children(
    parent: etree._Element, path: str, lines: Lines
) -> Iterable[tuple[str, etree._Element, str]]:
    counts: dict[str, int] = {}
    for el in parent:
        tag = el.tag
        if not isinstance(tag, str) or not tag.startswith(_PREFIX):
            continue  # comments, processing instructions, the XML-DSig <Signature>
        name = tag[_CUT:]
        if name in REPEATED:
            n = counts[name] = counts.get(name, 0) + 1
            child_path = f"{path}/{name}[{n}]"
        else:
            child_path = f"{path}/{name}"
        line = el.sourceline
        if isinstance(line, int):
            lines[child_path] = line
        yield name, el, child_path


def _text(el: etree._Element) -> str:
    if len(el):  # comments or PIs inside the text: join the text around them
        return "".join(t for t in el.itertext() if isinstance(t, str))
    return el.text or ""


def _pair(cls: Callable[[str, str], _P], el: etree._Element) -> _P:
    name = value = ""
    for child in el:
        tag = child.tag
        if isinstance(tag, str):
            if tag.endswith("}valueName"):
                name = _text(child)
            elif tag.endswith("}value"):
                value = _text(child)
    return cls(name, value)


def _alert(root: etree._Element, path: str, lines: Lines) -> Alert:
    line = root.sourceline
    if isinstance(line, int):
        lines[path] = line
    f: dict[str, object] = {}
    codes: list[str] = []
    infos: list[Info] = []
    for name, el, child_path in _children(root, path, lines):
        if name == "info":
            infos.append(_info(el, child_path, lines))
        elif name == "code":
            codes.append(_text(el))
        elif name == "sent":
            f["sent"] = parse_datetime(_text(el))
        elif name == "status":
            f["status"] = Status(_text(el))
        elif name == "msgType":
            f["msg_type"] = MsgType(_text(el))
        elif name == "scope":
            f["scope"] = Scope(_text(el))
        else:
            f[_ALERT_TEXT[name]] = _text(el)
    return Alert(codes=tuple(codes), infos=tuple(infos), **f)  # type: ignore[arg-type]


_ALERT_TEXT = {
    "identifier": "identifier", "sender": "sender", "source": "source",
    "restriction": "restriction", "addresses": "addresses", "note": "note",
    "references": "references", "incidents": "incidents",
}


def _info(parent: etree._Element, path: str, lines: Lines) -> Info:
    f: dict[str, object] = {}
    categories: list[Category] = []
    responses: list[ResponseType] = []
    event_codes: list[EventCode] = []
    parameters: list[Parameter] = []
    resources: list[Resource] = []
    areas: list[Area] = []
    for name, el, child_path in _children(parent, path, lines):
        if name == "area":
            areas.append(_area(el, child_path, lines))
        elif name == "category":
            categories.append(Category(_text(el)))
        elif name == "responseType":
            responses.append(ResponseType(_text(el)))
        elif name == "eventCode":
            event_codes.append(_pair(EventCode, el))
        elif name == "parameter":
            parameters.append(_pair(Parameter, el))
        elif name == "resource":
            resources.append(_resource(el, child_path, lines))
        elif name in ("effective", "onset", "expires"):
            f[name] = parse_datetime(_text(el))
        elif name == "urgency":
            f["urgency"] = Urgency(_text(el))
        elif name == "severity":
            f["severity"] = Severity(_text(el))
        elif name == "certainty":
            f["certainty"] = Certainty(_text(el))
        elif name in ("language", "web"):  # xs:language and xs:anyURI collapse whitespace
            f[name] = _text(el).strip()
        else:
            f[_INFO_TEXT[name]] = _text(el)
    return Info(
        categories=tuple(categories), response_types=tuple(responses),
        event_codes=tuple(event_codes), parameters=tuple(parameters),
        resources=tuple(resources), areas=tuple(areas), **f,  # type: ignore[arg-type]
    )


_INFO_TEXT = {
    "event": "event", "audience": "audience", "senderName": "sender_name",
    "headline": "headline", "description": "description", "instruction": "instruction",
    "contact": "contact",
}


def _resource(parent: etree._Element, path: str, lines: Lines) -> Resource:
    f: dict[str, object] = {}
    for name, el, _ in _children(parent, path, lines):
        if name == "size":
            f["size"] = int(_text(el).strip())
        elif name == "uri":
            f["uri"] = _text(el).strip()
        else:
            f[_RESOURCE_TEXT[name]] = _text(el)
    return Resource(**f)  # type: ignore[arg-type]


_RESOURCE_TEXT = {
    "resourceDesc": "resource_desc", "mimeType": "mime_type", "derefUri": "deref_uri",
    "digest": "digest",
}


def _area(parent: etree._Element, path: str, lines: Lines) -> Area:
    desc = ""
    polygons: list[Polygon] = []
    circles: list[Circle] = []
    geocodes: list[Geocode] = []
    altitude: Decimal | None = None
    ceiling: Decimal | None = None
    for name, el, _ in _children(parent, path, lines):
        if name == "polygon":
            polygons.append(Polygon(_text(el)))
        elif name == "circle":
            circles.append(Circle(_text(el)))
        elif name == "geocode":
            geocodes.append(_pair(Geocode, el))
        elif name == "areaDesc":
            desc = _text(el)
        elif name == "altitude":
            altitude = Decimal(_text(el).strip())
        elif name == "ceiling":
            ceiling = Decimal(_text(el).strip())
    return Area(desc, tuple(polygons), tuple(circles), tuple(geocodes), altitude, ceiling)


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
