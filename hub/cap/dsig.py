"""XML-DSig plumbing shared by ``hub.cap.sign`` and ``hub.cap.verify``.

The XML-DSig namespace, finding and removing the ``<Signature>`` elements of an alert,
reading the certificates a signature carries in ``KeyInfo``, and the mix-in that routes
signxml's own (re-)parsing through the hub's hardened parser. Nothing here signs, verifies
or decides trust.
"""

from __future__ import annotations

from base64 import b64decode
from typing import Any

from lxml import etree
from signxml.exceptions import InvalidInput

from hub.cap.problems import Problem
from hub.cap.xmlsafe import parse_xml

__all__ = ["DS_NS", "NS", "SIGNATURE", "HardenedParsing", "detach", "hint_ders", "signatures"]

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
SIGNATURE = f"{{{DS_NS}}}Signature"
NS = {"ds": DS_NS}  # prefix map for find()/findall() paths
# signxml re-parses its own serialisations of a tree that parse_xml already accepted (size
# checked there); canonical XML can be somewhat larger than its source, hence the headroom.
_REPARSE_MAX_BYTES = 64 * 1024 * 1024


class HardenedParsing:
    """Route signxml's own (re-)parsing through the hub's one hardened parser. Mix it in
    before signxml's ``XMLSigner`` or ``XMLVerifier``."""

    def _fromstring(self, xml_string: bytes | str, **kwargs: Any) -> etree._Element:
        data = xml_string.encode("utf-8") if isinstance(xml_string, str) else xml_string
        root = parse_xml(data, max_bytes=_REPARSE_MAX_BYTES)
        if isinstance(root, Problem):
            raise InvalidInput(root.message)
        return root


def signatures(root: etree._Element) -> list[etree._Element]:
    """Every ds:Signature below the root, in document order, not counting any nested in
    another signature."""
    return [
        el for el in root.iter(SIGNATURE)
        if el is not root and next(el.iterancestors(SIGNATURE), None) is None
    ]


def detach(el: etree._Element) -> None:
    """Remove an element, keeping the text that follows it (as the enveloped transform does)."""
    parent = el.getparent()
    if parent is None:
        return
    if el.tail:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + el.tail
        else:
            parent.text = (parent.text or "") + el.tail
    parent.remove(el)


def hint_ders(sig: etree._Element) -> tuple[bytes, ...]:
    """DER of each ``KeyInfo/X509Data/X509Certificate`` of a signature, in order. Raises
    ``binascii.Error`` (a ``ValueError``) when one is not base64."""
    return tuple(
        b64decode("".join((el.text or "").split()), validate=True)
        for el in sig.iterfind("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)
    )
