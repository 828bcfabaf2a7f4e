"""The one hardened XML parser of cap-hub.

Every XML document that reaches the hub from outside (CAP to ingest, CAP to verify, feeds we
read) goes through ``parse_xml``: no DTD at all (so no entity can be declared, hence no
billion-laughs or external-entity trick), no network, no XInclude, and a size limit checked
before a byte is parsed. Byte order marks, declared encodings (ISO-8859-1 included), any
namespace prefix, comments and processing instructions are accepted as XML allows.
"""

from __future__ import annotations

import re
import threading

from lxml import etree

from hub.cap.model import REPEATED
from hub.cap.problems import Code, Problem, error

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
XINCLUDE_NS = "http://www.w3.org/2001/XInclude"

_DTD_REFUSED = error("/", Code.XML_DTD,
                     "document type declarations (<!DOCTYPE>) are not accepted: "
                     "they can declare entities and load external files")
# A DOCTYPE in an ASCII-compatible prologue is refused before libxml2 sees its declarations.
_PROLOGUE_DOCTYPE = re.compile(rb"(?:\xef\xbb\xbf)?\s*(?:<\?.*?\?>\s*|<!--.*?-->\s*)*<!DOCTYPE", re.S)

_local = threading.local()  # lxml parsers must not be shared between threads


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,  # keeps libxml2's own depth and text-size limits
            remove_blank_text=False,
            collect_ids=False,
        )
        _local.parser = parser
    return parser


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element | Problem:
    """Parse untrusted bytes; returns the root element, or the one finding that refuses them."""
    if len(data) > max_bytes:
        return error("/", Code.XML_TOO_LARGE,
                     f"document is {len(data):,} bytes, over the limit of {max_bytes:,} bytes")
    if not data or data.isspace():
        return error("/", Code.XML_EMPTY, "document is empty")
    # In an ASCII-compatible encoding (UTF-8, ISO-8859-x: nearly all CAP) a DOCTYPE or an
    # XInclude namespace shows in the raw bytes; elsewhere (UTF-16) the tree is searched.
    ascii_like = data[:1] not in (b"\xff", b"\xfe", b"\x00") and data[1:2] != b"\x00"
    # Single-byte searches first: they run at memory speed, and '!' and 'X' are rare in CAP.
    doctype = b"!" in data and b"<!DOCTYPE" in data
    if (not ascii_like or doctype) and _PROLOGUE_DOCTYPE.match(data):
        return _DTD_REFUSED
    parser = _parser()
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        return _syntax_problem(exc)
    except (ValueError, LookupError) as exc:  # e.g. an encoding lxml does not know
        return error("/", Code.XML_ENCODING, f"cannot decode document: {exc}")
    if ascii_like and not doctype and (b"X" not in data or b"XInclude" not in data):
        return root
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.doctype:
        return _DTD_REFUSED
    for el in root.iter(f"{{{XINCLUDE_NS}}}*"):
        line = el.sourceline if isinstance(el.sourceline, int) else None
        return error(_plain_path(el), Code.XML_XINCLUDE, "XInclude elements are not accepted", line=line)
    return root


def _syntax_problem(exc: etree.XMLSyntaxError) -> Problem:
    msg = str(exc.msg if exc.msg else exc).strip()
    low = msg.lower()
    line = exc.lineno if exc.lineno else None
    if "entity" in low and ("undefined" in low or "not defined" in low or "reference" in low
                            or "amplification" in low):
        return error("/", Code.XML_ENTITY, f"entity references are not accepted: {msg}", line)
    if "doctype" in low or "dtd" in low:
        return error("/", Code.XML_DTD, f"document type declarations are not accepted: {msg}", line)
    if "encoding" in low or "unsupported" in low and "code" in low:
        return error("/", Code.XML_ENCODING, f"cannot decode document: {msg}", line)
    return error("/", Code.XML_MALFORMED, f"not well-formed XML: {msg}", line)


def _plain_path(el: etree._Element) -> str:
    """The XPath-like path of findings: local names, with a 1-based position on every element
    the schema lets repeat (``/alert/info[1]/area[2]``) and on any other that does repeat."""
    steps: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        name = etree.QName(node).localname
        parent = node.getparent()
        if parent is None:
            steps.append(name)
        else:
            same = [c for c in parent if isinstance(c.tag, str) and c.tag == node.tag]
            indexed = name in REPEATED or len(same) > 1
            steps.append(f"{name}[{same.index(node) + 1}]" if indexed else name)
        node = parent
    return "/" + "/".join(reversed(steps))


element_path = _plain_path
