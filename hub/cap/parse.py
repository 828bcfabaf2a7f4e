"""Bytes → CAP 1.2 model, with every finding on the way.

The pipeline is: hardened XML parse (``xmlsafe``) → CAP 1.2 root check → schema → model →
normative rules → profile rules. A document that fails the schema yields no model (its
structure cannot be trusted), so the rules only ever see well-formed alerts. Findings from
the rules get their source line from the element their path names (or its nearest
ancestor, when the rule is about an element that is missing).

The model is built by ``hub.cap._build`` (compiled from Cython at install, reading libxml2's
nodes directly: about three times faster) and, where it is not installed or leaves a
document to it (an element after a signature, a time it cannot read), by the Python builder
below; ``tests/cap/test_build.py`` holds the two to the same result.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
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
    parse_datetime,
)
from hub.cap.problems import Code, Problem, error, has_errors
from hub.cap.xmlsafe import DEFAULT_MAX_BYTES, element_path, parse_xml

_compiled: Callable[[etree._Element], Alert | None] | None
try:  # the compiled builder, when the package was built with it (setup.py)
    from hub.cap._build import build as _compiled
except ImportError:  # pragma: no cover - a build without a C compiler
    _compiled = None

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
    return _check(root, profile, now, data)


# Encodings in which every ASCII character is its own byte, so markup shows in the raw bytes.
_ASCII_SAFE = re.compile(rb"(?:utf-?8|us-ascii|ascii|iso[-_]?8859-\d+|latin-?1|(?:windows|cp)-?125\d)")
_USUAL_DECLARATIONS = frozenset(
    f"<?xml version={q}1.0{q}{enc}?>".encode() for q in "\"'"
    for enc in ["", *(f" encoding={q}{name}{q}" for name in ("UTF-8", "utf-8", "ISO-8859-1", "iso-8859-1"))]
)
_ENCODING = re.compile(rb"""\s*=\s*["']([^"']*)["']""")


def _plain_bytes(data: bytes) -> bool:
    """True when the raw bytes show that no comment or processing instruction is in the
    document (beyond the XML declaration): then each element's ``.text`` is its whole text.
    Only said of encodings where markup is plain ASCII; anything else: False. Single-byte
    searches first, as they run at memory speed ('!' and '?' are rare in CAP)."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    if data[start:start + 1] != b"<":
        return False
    if data.startswith(b"<?xml", start):
        end = data.find(b"?>", start)
        at = -1 if data[start:end + 2] in _USUAL_DECLARATIONS else data.find(b"encoding", start, end)
        if at != -1:
            declared = _ENCODING.match(data, at + 8, end)
            if declared is None or _ASCII_SAFE.fullmatch(declared.group(1).lower()) is None:
                return False
        start = end + 2
    if data.find(b"!", start) != -1 and data.find(b"<!--", start) != -1:
        return False
    return data.find(b"?", start) == -1 or data.find(b"<?", start) == -1


def check_tree(
    root: etree._Element, *, profile: Checker | None = None, now: datetime | None = None
) -> ParseResult:
    """The part of ``parse`` after the XML layer, for a tree parsed by ``xmlsafe``."""
    return _check(root, profile, now, None)


def _check(root: etree._Element, profile: Checker | None, now: datetime | None,
           data: bytes | None) -> ParseResult:
    """``data``: the bytes the tree was parsed from, when known (they can tell the Python
    builder that no comment or PI is in the document)."""
    wrong_root = schema.check_root(root)
    if wrong_root is not None:
        return ParseResult(None, (wrong_root,), root)
    found = schema.validate_alert(root, signature_order=False)
    if found:  # without the signature order check, only errors are found here
        return ParseResult(None, tuple(found), root)
    try:
        alert = _built(root, data)
    except _LateElement as exc:
        return ParseResult(None, (schema.late_element(exc.el),), root)
    except _Unreadable as exc:
        late = schema.validate_alert(root)  # the order of signatures is reported first
        where = element_path(exc.el)
        return ParseResult(None, tuple(late) or (error(where, Code.XSD_TYPE, str(exc), _line(exc.el)),),
                           root)
    more = rules.check(alert, now=now)
    if profile is not None:
        more.extend(profile.check(alert))
    if more:
        found.extend(p if p.line is not None else p.at_line(line_of(root, p.path)) for p in more)
    return ParseResult(alert, tuple(found), root)


def _built(root: etree._Element, data: bytes | None) -> Alert:
    """The model of a schema-valid tree: by the compiled builder (``hub.cap._build``) when it
    is installed and takes the document, else by the Python one below."""
    if _compiled is not None:
        alert = _compiled(root)
        if alert is not None:
            return alert
    return _alert(root, (data is not None and _plain_bytes(data)) or not _has_misc(root))


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


# --- tree → model, the Python builder (see the module's docstring for the compiled one). The
# schema has already checked structure, order, enums and datatypes, so the builders read each
# element once and convert without checking again: enums by
# dictionary lookup, times with the C parser of datetime (the schema's pattern guarantees
# the ISO form). Each element's full tag is looked up once in a table that says what it is
# (the tag is what an lxml element costs most to read, so the two children of an eventCode,
# parameter or geocode are taken by position); the values are gathered in lists in the
# order of the model's fields and handed over positionally. When the raw bytes show no
# comment or PI, ``.text`` is read directly; otherwise ``_text`` joins the pieces.

_STATUS = {m.value: m for m in Status}
_MSG_TYPE = {m.value: m for m in MsgType}
_SCOPE = {m.value: m for m in Scope}
_CATEGORY = {m.value: m for m in Category}
_RESPONSE = {m.value: m for m in ResponseType}
_URGENCY = {m.value: m for m in Urgency}
_SEVERITY = {m.value: m for m in Severity}
_CERTAINTY = {m.value: m for m in Certainty}


def _text(el: etree._Element) -> str:
    if len(el):  # comments or PIs inside the text: join the text around them
        return "".join(t for t in el.itertext() if isinstance(t, str))
    return el.text or ""


def _has_misc(root: etree._Element) -> bool:
    """Whether a comment or processing instruction stands anywhere below the root (then an
    element's ``.text`` may be only the part before it). One scan in C."""
    return next(root.iter(etree.Comment, etree.ProcessingInstruction), None) is not None


class _LateElement(Exception):
    """A CAP element after an XML-DSig one (see ``_alert``)."""

    def __init__(self, el: etree._Element) -> None:
        super().__init__(el.tag)
        self.el = el


class _Unreadable(Exception):
    """A value the schema let through that the model cannot hold (kept rare on purpose)."""

    def __init__(self, el: etree._Element, message: str) -> None:
        super().__init__(message)
        self.el = el


def _time(el: etree._Element, text: str) -> datetime:
    text = text.strip()
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


# Positions in the argument lists of Alert, Info and Resource (their fields' order).
_A_FIELDS = ("identifier", "sender", "sent", "status", "msg_type", "scope", "source", "restriction",
             "addresses", "codes", "note", "references", "incidents", "infos")
_I_FIELDS = ("categories", "event", "urgency", "severity", "certainty", "language", "response_types",
             "audience", "event_codes", "effective", "onset", "expires", "sender_name", "headline",
             "description", "instruction", "web", "contact", "parameters", "resources", "areas")
_R_FIELDS = ("resource_desc", "mime_type", "size", "uri", "deref_uri", "digest")
assert _A_FIELDS == tuple(f.name for f in fields(Alert))
assert _I_FIELDS == tuple(f.name for f in fields(Info))
assert _R_FIELDS == tuple(f.name for f in fields(Resource))


def _kinds(names: dict[str, Any]) -> dict[str, Any]:
    return {_PREFIX + name: kind for name, kind in names.items()}


# What each element is, by its full tag; comments, PIs and XML-DSig elements are in no table.
# Text kept as it is goes to its position in the argument list (< 100); other kinds are ≥ 100.
_ENUM, _TIME, _STRIPPED, _CATEGORY_K, _RESPONSE_K, _EVENT_CODE, _PARAMETER, _RESOURCE, _AREA, \
    _CODE, _INFO = range(100, 111)
_ALERT_KIND = _kinds({
    "identifier": 0, "sender": 1, "source": 6, "restriction": 7, "addresses": 8, "note": 10,
    "references": 11, "incidents": 12, "sent": _TIME, "status": _ENUM, "msgType": _ENUM,
    "scope": _ENUM, "code": _CODE, "info": _INFO,
})
_INFO_KIND = _kinds({
    "event": 1, "audience": 7, "senderName": 12, "headline": 13, "description": 14,
    "instruction": 15, "contact": 17, "urgency": _ENUM, "severity": _ENUM, "certainty": _ENUM,
    "effective": _TIME, "onset": _TIME, "expires": _TIME, "language": _STRIPPED, "web": _STRIPPED,
    "category": _CATEGORY_K, "responseType": _RESPONSE_K, "eventCode": _EVENT_CODE,
    "parameter": _PARAMETER, "resource": _RESOURCE, "area": _AREA,
})
# Where an enumeration, a time or a whitespace-collapsed text goes in its argument list.
_SLOT = _kinds({
    "sent": 2, "status": 3, "msgType": 4, "scope": 5, "urgency": 2, "severity": 3, "certainty": 4,
    "effective": 9, "onset": 10, "expires": 11, "language": 5, "web": 16,
})
_ENUMS: dict[str, dict[str, Any]] = _kinds({
    "status": _STATUS, "msgType": _MSG_TYPE, "scope": _SCOPE, "urgency": _URGENCY,
    "severity": _SEVERITY, "certainty": _CERTAINTY,
})
# Below <resource>: position in Resource's arguments; size and uri are converted.
_SIZE, _URI = 102, 103
_RESOURCE_KIND = _kinds({"resourceDesc": 0, "mimeType": 1, "size": _SIZE, "uri": _URI,
                         "derefUri": 4, "digest": 5})
_AREA_DESC, _POLYGON, _CIRCLE, _GEOCODE, _ALTITUDE, _CEILING = range(6)
_AREA_KIND = _kinds({"areaDesc": _AREA_DESC, "polygon": _POLYGON, "circle": _CIRCLE,
                     "geocode": _GEOCODE, "altitude": _ALTITUDE, "ceiling": _CEILING})


def _alert(root: etree._Element, clean: bool) -> Alert:
    """``clean``: no comment or PI below the root, so ``.text`` is each element's whole text.

    Raises ``_LateElement`` for a CAP element after an XML-DSig one: libxml2 lets an
    enveloped signature stand before an ``<info>``, the schema does not."""
    a: list[Any] = [None] * 14
    codes: list[str] = []
    infos: list[Info] = []
    kinds = _ALERT_KIND
    signed = False
    for el in root:
        tag = el.tag
        kind = kinds.get(tag)
        if kind is None:
            signed = signed or tag.__class__ is str  # the schema allows only XML-DSig here
            continue
        if signed:
            raise _LateElement(el)
        if kind == _INFO:
            infos.append(_info(el, clean))
            continue
        text = (el.text or "") if clean else _text(el)
        if kind < 100:
            a[kind] = text
        elif kind == _ENUM:
            a[_SLOT[tag]] = _ENUMS[tag][text]
        elif kind == _TIME:
            a[2] = _time(el, text)
        else:
            codes.append(text)
    a[9] = tuple(codes)
    a[13] = tuple(infos)
    return Alert(*a)


def _info(info: etree._Element, clean: bool) -> Info:
    """The children of <info>, each placed by what its tag says (the schema has fixed their
    order and checked their values); the most frequent kinds are tested first."""
    v: list[Any] = [None] * 21
    categories: list[Category] = []
    responses: list[ResponseType] = []
    event_codes: list[EventCode] = []
    parameters: list[Parameter] = []
    resources: list[Resource] = []
    areas: list[Area] = []
    kinds = _INFO_KIND
    for el in info:
        tag = el.tag
        kind = kinds.get(tag)
        if kind is None:  # a comment or PI: the schema allows nothing else
            continue
        if kind < 100:
            v[kind] = (el.text or "") if clean else _text(el)
        elif kind == _ENUM:
            v[_SLOT[tag]] = _ENUMS[tag][(el.text or "") if clean else _text(el)]
        elif kind == _TIME:
            v[_SLOT[tag]] = _time(el, (el.text or "") if clean else _text(el))
        elif kind == _AREA:
            areas.append(_area(el, clean))
        elif kind == _CATEGORY_K:
            categories.append(_CATEGORY[(el.text or "") if clean else _text(el)])
        elif kind == _STRIPPED:  # xs:language and xs:anyURI collapse whitespace
            v[_SLOT[tag]] = ((el.text or "") if clean else _text(el)).strip()
        elif kind == _EVENT_CODE:
            event_codes.append(EventCode(el[0].text or "", el[1].text or "") if clean
                               else EventCode(*_pair(el)))
        elif kind == _PARAMETER:
            parameters.append(Parameter(el[0].text or "", el[1].text or "") if clean
                              else Parameter(*_pair(el)))
        elif kind == _RESOURCE:
            resources.append(_resource(el, clean))
        else:
            responses.append(_RESPONSE[(el.text or "") if clean else _text(el)])
    v[0] = tuple(categories)
    v[6] = tuple(responses)
    v[8] = tuple(event_codes)
    v[18] = tuple(parameters)
    v[19] = tuple(resources)
    v[20] = tuple(areas)
    return Info(*v)


def _pair(el: etree._Element) -> tuple[str, str]:
    """valueName and value (the two elements the schema requires, in that order) when
    comments or PIs may stand between them."""
    name, value = [c for c in el if c.tag.__class__ is str]
    return _text(name), _text(value)


def _resource(el: etree._Element, clean: bool) -> Resource:
    r: list[Any] = [None] * 6
    kinds = _RESOURCE_KIND
    for child in el:
        kind = kinds.get(child.tag)
        if kind is None:
            continue
        text = (child.text or "") if clean else _text(child)
        if kind < 100:
            r[kind] = text
        elif kind == _SIZE:
            r[2] = int(text.strip())
        else:
            r[3] = text.strip()
    return Resource(*r)


def _area(el: etree._Element, clean: bool) -> Area:
    desc = ""
    polygons: list[Polygon] = []
    circles: list[Circle] = []
    geocodes: list[Geocode] = []
    altitude = ceiling = None
    kinds = _AREA_KIND
    for child in el:
        kind = kinds.get(child.tag)
        if kind is None:
            continue
        if kind == _GEOCODE:
            geocodes.append(Geocode(child[0].text or "", child[1].text or "") if clean
                            else Geocode(*_pair(child)))
        elif kind == _POLYGON:
            polygons.append(Polygon((child.text or "") if clean else _text(child)))
        elif kind == _AREA_DESC:
            desc = (child.text or "") if clean else _text(child)
        elif kind == _CIRCLE:
            circles.append(Circle((child.text or "") if clean else _text(child)))
        elif kind == _ALTITUDE:
            altitude = Decimal(_text(child).strip())
        else:
            ceiling = Decimal(_text(child).strip())
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
