"""CAP 1.2 schema validation: the bundled ``schemas/cap-1.2.xsd`` run by lxml, findings as data.

``check_root`` says whether a parsed document is a CAP 1.2 alert at all (and names the CAP
version when it is an older one). ``validate`` runs the XSD and turns every libxml2 error into a
``Problem`` with a path in the hub's convention (``/alert/info[1]/resource[1]/size``), the source
line, a ``Code`` and a message that names the CAP element. A valid document costs one libxml2
validation and a glance at the root's children; the translation only runs for invalid ones.

The XSD file is read once, from this package's checkout; each thread compiles its own validator
from those bytes, because lxml trees and validators (which keep their error log on the object) must
not be shared between threads.
"""

from __future__ import annotations

import copy
import functools
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

from lxml import etree

from hub.cap.model import NAMESPACE
from hub.cap.problems import Code, Problem, error
from hub.cap.xmlsafe import element_path

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "cap-1.2.xsd"

CAP10_NAMESPACE = "http://www.incident.com/cap/1.0"
CAP11_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.1"
DSIG_NAMESPACE = "http://www.w3.org/2000/09/xmldsig#"
XSD_NAMESPACE = "http://www.w3.org/2001/XMLSchema"

_KNOWN_VERSIONS = {CAP10_NAMESPACE: "1.0", CAP11_NAMESPACE: "1.1"}
_CAP_URN = re.compile(r"urn:oasis:names:tc:emergency:cap:(\d+(?:\.\d+)*)")
_CAP_PREFIX = f"{{{NAMESPACE}}}"
_DSIG_PREFIX = f"{{{DSIG_NAMESPACE}}}"
_ALERT_TAG = f"{_CAP_PREFIX}alert"
_XS = f"{{{XSD_NAMESPACE}}}"
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

# "Element '{ns}name', attribute 'attr': rest" — how libxml2 words its schema errors.
_ENTRY = re.compile(r"Element '(?:\{(?P<ns>[^}]*)\})?(?P<name>[^']*)'(?:, attribute '(?P<attr>[^']*)')?: "
                    r"(?P<rest>.*)", re.DOTALL)
_EXPECTED = re.compile(r"Expected is (?:one of )?\( (?P<names>.*) \)")
_QNAME_IN_TEXT = re.compile(r"\{([^}]*)\}([\w.*-]+)")
_KNOWN_PREFIXES = {
    "http://www.w3.org/2001/XMLSchema-instance": "xsi",
    XSD_NAMESPACE: "xs",
    "http://www.w3.org/XML/1998/namespace": "xml",
}
_LIBXML2_EXPECTED_LIMIT = 10  # libxml2 lists at most this many expected elements

# CAP 1.2 §3.3.2: what a dateTime looks like, and the usual ways of getting it wrong.
DATETIME_EXAMPLE = "2026-11-24T10:15:00+01:00"
_CAP_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}", re.ASCII)
_FRACTION = re.compile(r"T\d{2}:\d{2}:\d{2}\.\d")
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")

_TYPE_HINTS = {
    "xs:integer": "a whole number",
    "xs:decimal": "a decimal number such as 1500 or -12.5",
    "xs:language": "a language tag such as en-US or fr-BE (RFC 3066)",
    "xs:anyURI": "a URI",
}
_ELEMENT_HINTS = {
    "size": "a whole number of bytes",
    "altitude": "a decimal number of feet above mean sea level",
    "ceiling": "a decimal number of feet above mean sea level",
}


class _LogEntry(Protocol):
    """The parts of an lxml error-log entry we read (lxml-stubs does not describe them)."""

    message: str
    type_name: str
    path: str
    line: int


def _line(el: etree._Element) -> int | None:
    line = el.sourceline  # lxml-stubs leaves it untyped
    return line if isinstance(line, int) else None


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the messages need to know about the schema, read from the XSD itself."""

    enumerations: dict[str, tuple[str, ...]]  # element → allowed values
    datatypes: dict[str, str]  # element → built-in type ("xs:integer")
    datetimes: frozenset[str]  # elements holding a CAP dateTime
    required: dict[str, frozenset[str]]  # parent → children with minOccurs ≥ 1
    single: dict[str, frozenset[str]]  # parent → children with maxOccurs = 1
    children: dict[str, frozenset[str]]  # parent → every child element it may hold


@functools.cache
def _schema_bytes() -> bytes:
    return SCHEMA_PATH.read_bytes()


def _schema_document() -> etree._Element:
    """A fresh tree of the XSD: lxml trees and validators must not be shared between threads."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(_schema_bytes(), parser)


_local = threading.local()
# libxml2's one-time set-up of its built-in types is not thread-safe: two threads compiling
# a schema at once can leave every later compile in the process broken. One at a time.
_compile = threading.Lock()


def _schema() -> etree.XMLSchema:
    schema: etree.XMLSchema | None = getattr(_local, "schema", None)
    if schema is None:
        with _compile:
            schema = etree.XMLSchema(_schema_document())
        _local.schema = schema
    return schema


@functools.cache
def _facts() -> _Facts:
    xsd = _schema_document()
    groups = {g.get("name"): g for g in xsd.iter(f"{_XS}group") if g.get("name")}
    enumerations: dict[str, tuple[str, ...]] = {}
    datatypes: dict[str, str] = {}
    datetimes: set[str] = set()
    required: dict[str, frozenset[str]] = {}
    single: dict[str, frozenset[str]] = {}
    children_of: dict[str, frozenset[str]] = {}
    for decl in xsd.iter(f"{_XS}element"):
        name = decl.get("name")
        if name is None:
            continue
        if decl.get("type"):
            datatypes[name] = str(decl.get("type"))
        facets = decl.iterfind(f"{_XS}simpleType/{_XS}restriction/{_XS}enumeration")
        values = tuple(str(e.get("value")) for e in facets)
        if values:
            enumerations[name] = values
        if decl.find(f"{_XS}simpleType/{_XS}restriction[@base='xs:dateTime']") is not None:
            datetimes.add(name)
        children = list(_particles(decl, groups))
        if children:
            required[name] = frozenset(n for n, lo, _ in children if lo != "0")
            single[name] = frozenset(n for n, _, hi in children if hi == "1")
            children_of[name] = frozenset(n for n, _, _ in children)
    return _Facts(enumerations, datatypes, frozenset(datetimes), required, single, children_of)


def _particles(decl: etree._Element, groups: dict[str | None, etree._Element]) -> list[tuple[str, str, str]]:
    """The (name, minOccurs, maxOccurs) of the elements a declaration's sequence allows."""
    out: list[tuple[str, str, str]] = []
    sequence = decl.find(f"{_XS}complexType/{_XS}sequence")
    if sequence is None:
        group = decl.find(f"{_XS}complexType/{_XS}group")
        ref = group.get("ref", "") if group is not None else ""
        target = groups.get(ref.partition(":")[2] or ref)
        sequence = target.find(f"{_XS}sequence") if target is not None else None
    if sequence is None:
        return out
    for item in sequence.iterchildren(f"{_XS}element"):
        name = item.get("name") or item.get("ref", "").partition(":")[2]
        out.append((name, item.get("minOccurs", "1"), item.get("maxOccurs", "1")))
    return out


def check_root(root: etree._Element) -> Problem | None:
    """Refuse a document whose root is not a CAP 1.2 ``<alert>`` (any prefix is fine)."""
    if root.tag == _ALERT_TAG:
        return None
    qname = etree.QName(root)
    ns, local = qname.namespace, qname.localname
    path, line = f"/{local}", _line(root)
    version = _KNOWN_VERSIONS.get(ns or "")
    match = _CAP_URN.fullmatch(ns or "")
    if version is None and match is not None and ns != NAMESPACE:
        version = match.group(1)
    if version is not None:
        return error(path, Code.CAP_VERSION,
                     f"this is a CAP {version} document (<{local}> in namespace {ns}); "
                     f"the hub accepts CAP 1.2 only (namespace {NAMESPACE})", line)
    if ns == NAMESPACE:
        found = f"<{local}> in the CAP 1.2 namespace (not a whole message)"
    elif ns:
        found = f"<{local}> in namespace {ns}"
    else:
        found = f"<{local}> in no namespace"
    return error(path, Code.CAP_ROOT,
                 f"the root element is {found}; a CAP 1.2 message is an <alert> element "
                 f"in namespace {NAMESPACE}", line)


def validate(root: etree._Element) -> list[Problem]:
    """Validate a parsed document against CAP 1.2; returns the findings (none when valid).

    A root that is not a CAP 1.2 ``<alert>`` gives the one finding of ``check_root`` (the bare
    schema would also accept a lone ``<valueName>``, which is no message)."""
    root_problem = check_root(root)
    if root_problem is not None:
        return [root_problem]
    return validate_alert(root)


def validate_alert(root: etree._Element, *, signature_order: bool = True) -> list[Problem]:
    """``validate`` for a root that ``check_root`` has accepted. ``signature_order=False``
    leaves out the check that XML-DSig elements come last, for a caller that walks the
    root's children anyway (``hub.cap.parse``) and reports ``late_element`` itself."""
    if root.getparent() is not None:  # an alert inside another document: paths start at it
        root = copy.deepcopy(root)
    schema = _schema()
    if schema.validate(root):
        return _signature_order(root) if signature_order else []
    by_path = {}
    tree = root.getroottree()
    for el in root.iter():
        if isinstance(el.tag, str):
            by_path[tree.getpath(el)] = el
    problems: list[Problem] = []
    for entry in cast(Iterable[_LogEntry], schema.error_log):
        problem = _translate(entry, by_path.get(entry.path), root)
        if problem not in problems:
            problems.append(problem)
    return problems


def _signature_order(root: etree._Element) -> list[Problem]:
    """libxml2 lets an XML-DSig element stand before an ``<info>``; the schema does not."""
    for signature in root.iterchildren(f"{_DSIG_PREFIX}*"):
        for late in signature.itersiblings(f"{_CAP_PREFIX}*"):
            return [late_element(late)]
        break  # only the first signature matters: whatever follows it is checked above
    return []


def late_element(late: etree._Element) -> Problem:
    """The finding for a CAP element that comes after an XML-DSig element in ``<alert>``."""
    name = etree.QName(late).localname
    return error(element_path(late), Code.XSD_UNEXPECTED,
                 f"<{name}> comes after a signature element; in <alert> the XML-DSig "
                 "<Signature> must come last", _line(late))


def _translate(entry: _LogEntry, el: etree._Element | None, root: etree._Element) -> Problem:
    message = str(entry.message)
    m = _ENTRY.match(message)
    if m is None:  # not about one element: keep libxml2's words, say where
        return error(element_path(root), Code.XSD_INVALID, f"the document does not match CAP 1.2: {message}",
                     entry.line)
    name, attr, rest = m.group("name"), m.group("attr"), m.group("rest")
    if el is None:  # should not happen; fall back on the first element with that name and line
        el = next((e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname == name
                   and _line(e) == entry.line), root)
    path, line = element_path(el), _line(el) or entry.line
    if attr is not None or entry.type_name == "SCHEMAV_CVC_ELT_3_1":
        return error(path, Code.XSD_ATTRIBUTE, _attribute_message(name, attr, rest), line)
    kind = entry.type_name
    if kind == "SCHEMAV_ELEMENT_CONTENT":
        return _content_problem(el, rest, path, line)
    if kind == "SCHEMAV_CVC_ENUMERATION_VALID":
        return error(path, Code.XSD_ENUM, _enum_message(name, el.text), line)
    bad_value = kind.startswith(("SCHEMAV_CVC_PATTERN", "SCHEMAV_CVC_DATATYPE"))
    if bad_value and name in _facts().datetimes and el.get(_XSI_TYPE) is None:
        return error(path, Code.XSD_PATTERN, _datetime_message(name, el.text), line)
    if kind.startswith("SCHEMAV_CVC_DATATYPE_VALID"):
        return error(path, Code.XSD_TYPE, _type_message(name, el.text, el.get(_XSI_TYPE)), line)
    if kind == "SCHEMAV_CVC_TYPE_3_1_2":
        return error(path, Code.XSD_UNEXPECTED, f"<{name}> must contain text only, not child elements",
                     line)
    if kind == "SCHEMAV_CVC_COMPLEX_TYPE_2_3":
        return error(path, Code.XSD_UNEXPECTED,
                     f"<{name}> must contain elements only; text directly inside it is not allowed", line)
    return error(path, Code.XSD_INVALID, f"<{name}> does not match CAP 1.2: {_plain(rest)}", line)


def _content_problem(el: etree._Element, rest: str, path: str, line: int | None) -> Problem:
    """Missing, unknown, duplicated or misplaced child elements."""
    facts = _facts()
    name = etree.QName(el).localname
    expected = _expected_names(rest)
    if rest.startswith("Missing child"):  # reported on the parent, at its end
        wanted = [n for n in expected if n in facts.required.get(name, ())] or expected
        what = _names(wanted[:1]) if wanted else "a required element"
        return error(path, Code.XSD_MISSING, f"<{name}> is missing the required element {what}", line)
    parent = el.getparent()
    parent_name = etree.QName(parent).localname if parent is not None else ""
    present = {etree.QName(c).localname for c in parent if _is_cap(c)} if parent is not None else set()
    absent = [n for n in expected if n in facts.required.get(parent_name, ()) and n not in present]
    if absent:
        return error(element_path(parent) if parent is not None else path, Code.XSD_MISSING,
                     f"<{parent_name}> is missing the required element <{absent[0]}> "
                     f"(found {_describe(el)} where <{absent[0]}> was expected)", line)
    here = (f"; expected {_names(expected)} here" if expected
            else f"; nothing more may follow in <{parent_name}>")
    if _is_cap(el) and name in facts.single.get(parent_name, ()) and _earlier_twin(el):
        return error(path, Code.XSD_UNEXPECTED, f"<{parent_name}> may contain only one <{name}>", line)
    if _is_cap(el) and name in facts.children.get(parent_name, ()):
        return error(path, Code.XSD_UNEXPECTED,
                     f"<{name}> is out of order in <{parent_name}>{here} "
                     "(CAP 1.2 fixes the order of elements)", line)
    return error(path, Code.XSD_UNEXPECTED,
                 f"{_describe(el)} is not an element of <{parent_name}> in CAP 1.2{here}"
                 f"{_did_you_mean(el, facts.children.get(parent_name, frozenset()))}", line)


def _did_you_mean(el: etree._Element, children: frozenset[str]) -> str:
    name = etree.QName(el).localname
    if name == "Signature":
        return f" (an XML-DSig <Signature> is in namespace {DSIG_NAMESPACE})"
    near = next((c for c in sorted(children) if c.lower() == name.lower() and c != name), None)
    if near is not None:
        return f" (did you mean <{near}>? element names are case-sensitive)"
    if not _is_cap(el) and name in children:
        return f" (did you mean <{name}> in namespace {NAMESPACE}?)"
    return ""


def _earlier_twin(el: etree._Element) -> bool:
    return any(s.tag == el.tag for s in el.itersiblings(preceding=True))


def _is_cap(el: etree._Element) -> bool:
    return isinstance(el.tag, str) and el.tag.startswith(_CAP_PREFIX)


def _describe(el: etree._Element) -> str:
    qname = etree.QName(el)
    if qname.namespace == NAMESPACE:
        return f"<{qname.localname}>"
    if qname.namespace is None:
        return f"<{qname.localname}> (in no namespace: CAP elements are in {NAMESPACE})"
    return f"<{qname.localname}> (namespace {qname.namespace})"


def _expected_names(rest: str) -> list[str]:
    m = _EXPECTED.search(rest)
    if m is None:
        return []
    return [_local_name(item.strip()) for item in m.group("names").split(",")]


def _local_name(item: str) -> str:
    if item.startswith(_CAP_PREFIX):
        return item[len(_CAP_PREFIX):]
    if DSIG_NAMESPACE in item:
        return "*dsig"
    return item


def _names(names: list[str]) -> str:
    shown = ["an XML-DSig <Signature>" if n == "*dsig" else f"<{n}>" for n in names]
    more = ", …" if len(names) >= _LIBXML2_EXPECTED_LIMIT else ""
    if len(shown) == 1:
        return shown[0]
    return "one of " + ", ".join(shown) + more


def _enum_message(name: str, text: str | None) -> str:
    allowed = _facts().enumerations.get(name, ())
    found = text or ""
    hint = next((f" (did you mean {v!r}?)" for v in allowed if v.lower() == found.strip().lower()), "")
    return (f"<{name}> must be exactly one of {', '.join(allowed)} (case and spaces count); "
            f"found {found!r}{hint}")


def _datetime_message(name: str, text: str | None) -> str:
    found = (text or "").strip()
    if found.endswith(("Z", "z")):
        hint = "; 'Z' is not allowed, write UTC as -00:00"
    elif _FRACTION.search(found):
        hint = "; fractions of a second are not allowed"
    elif "T" in found and not _OFFSET.search(found):
        hint = "; it needs an offset from UTC such as +01:00 or -00:00"
    elif _CAP_DATETIME.fullmatch(found):
        hint = "; that date or time does not exist"
    else:
        hint = ""
    return (f"<{name}> must be a date and time like {DATETIME_EXAMPLE}, with an explicit offset "
            f"(never Z) and no fractions of a second; found {text or ''!r}{hint}")


def _type_message(name: str, text: str | None, xsi_type: str | None = None) -> str:
    if xsi_type is not None:
        return (f"<{name}> is not a valid {xsi_type}, the type its xsi:type attribute asks for; "
                f"found {text or ''!r}")
    datatype = _facts().datatypes.get(name, "")
    what = _ELEMENT_HINTS.get(name) or _TYPE_HINTS.get(datatype) or f"a valid {datatype or 'value'}"
    return f"<{name}> must be {what}; found {text or ''!r}"


def _attribute_message(name: str, attr: str | None, rest: str) -> str:
    if attr is None:  # xsi:nil on an element that cannot be nil
        return f"<{name}> cannot be nil (xsi:nil): CAP 1.2 elements are never nillable"
    shown = _plain(attr)
    if shown == "xsi:type":
        return (f"<{name}> has an xsi:type attribute the CAP 1.2 schema does not allow here "
                f"({_plain(rest)}); CAP elements need no xsi:type")
    if "not allowed" in rest:
        return f"<{name}> may not carry the attribute {shown}: CAP 1.2 elements take no attributes"
    return f"<{name}> has an unacceptable attribute {shown}: {_plain(rest)}"


def _plain(text: str) -> str:
    """libxml2's ``{namespace}name`` written the way a CAP author reads it."""
    def one(m: re.Match[str]) -> str:
        ns, local = m.group(1), m.group(2)
        if ns == NAMESPACE:
            return f"<{local}>"
        prefix = _KNOWN_PREFIXES.get(ns)
        if prefix is not None:
            return f"{prefix}:{local}"
        return f"{local} (namespace {ns})"
    return _QNAME_IN_TEXT.sub(one, text).strip()
