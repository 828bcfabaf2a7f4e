"""SMS text encodings: the GSM 03.38 default alphabet (3GPP TS 23.038 §6.2.1) and UCS-2.

Pure functions, no I/O.

**Septets, unpacked.** :func:`encode_gsm7` returns one septet value per byte (0x00–0x7F),
*unpacked*. That is what our SMPP path sends: with ``data_coding`` 0 an SMSC expects the
default alphabet one septet per octet in ``short_message`` (or ``message_payload``) and packs
it for the air interface itself; node-smpp, our test peer, decodes ``data_coding`` 0 the same
way. A concatenated part is the UDH octets (``05 00 03 ref total seq``) followed by the part's
unpacked septets; no fill bits are needed since nothing is packed. :func:`pack_septets` and
:func:`unpack_septets` exist for the links that do want packed 7-bit (some SMSCs, SMS-SUBMIT
TPDUs, cell broadcast), with ``fill_bits`` to align text after a UDH (1 after the 6-octet
concatenation UDH).

**Part sizes.** One part holds 160 septets or 70 UTF-16 units. A concatenated message loses
6 octets per part to the UDH, which leaves 153 septets (160 − ⌈48/7⌉) or 67 units. An
extension character (``^ { } \\ [ ~ ] | €`` and form feed) costs two septets, ESC and its code,
and the two are never split across parts; a UTF-16 surrogate pair is never split either.

**0x09.** 3GPP TS 23.038 draws capital Ç at 0x09; the Unicode mapping (GSM0338.TXT) maps it
to small ç and notes the ambiguity, and handsets differ. We follow 3GPP, as node-smpp does:
Ç is 0x09 and small ç is *not* representable (it forces UCS-2, or becomes c when downgraded),
so no phone ever shows "FRANÇAIS" for "français".
"""

from __future__ import annotations

import unicodedata

ESC = 0x1B

# The default alphabet in code order, 0x00 to 0x7F (0x1B, ESC, is a placeholder).
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(_BASIC) == 128

# The extension table, reached with ESC: character → code after the ESC.
_EXTENSION = {
    "\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F,
    "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65,
}

# character → its septets (one, or ESC and one).
_ENCODE: dict[str, bytes] = {ch: bytes([i]) for i, ch in enumerate(_BASIC) if i != ESC}
_ENCODE.update({ch: bytes([ESC, code]) for ch, code in _EXTENSION.items()})
_DECODE_EXT = {code: ch for ch, code in _EXTENSION.items()}

GSM7_SINGLE = 160
GSM7_MULTI = 153
UCS2_SINGLE = 70
UCS2_MULTI = 67


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the default alphabet or its extension."""
    return all(ch in _ENCODE for ch in text)


def gsm7_length(text: str) -> int | None:
    """Septets needed for ``text`` (extension characters count 2); None if it does not fit."""
    n = 0
    for ch in text:
        code = _ENCODE.get(ch)
        if code is None:
            return None
        n += len(code)
    return n


def encode_gsm7(text: str) -> bytes | None:
    """``text`` as unpacked septets, one per byte; None if a character is not representable."""
    out = bytearray()
    for ch in text:
        code = _ENCODE.get(ch)
        if code is None:
            return None
        out += code
    return bytes(out)


def decode_gsm7(septets: bytes) -> str:
    """Unpacked septets back to text. An ESC before a code the extension table lacks shows the
    basic character (TS 23.038 §6.2.1.1); a lone trailing ESC is dropped."""
    out: list[str] = []
    i, n = 0, len(septets)
    while i < n:
        b = septets[i] & 0x7F
        if b == ESC:
            if i + 1 < n:
                nxt = septets[i + 1] & 0x7F
                out.append(_DECODE_EXT.get(nxt, " " if nxt == ESC else _BASIC[nxt]))
            i += 2
            continue
        out.append(_BASIC[b])
        i += 1
    return "".join(out)


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets 8 into 7 octets, least significant bit first (TS 23.038 §6.1.2.1.1).

    ``fill_bits`` zero bits come first, to start the text on a septet boundary after a UDH
    (1 for the 6-octet concatenation header). Our SMPP path does not use this: it sends
    unpacked septets with ``data_coding`` 0 (see the module docstring).
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError("fill_bits must be 0 to 6")
    out = bytearray()
    acc, nbits = 0, fill_bits
    for s in septets:
        acc |= (s & 0x7F) << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack_septets(data: bytes, count: int, fill_bits: int = 0) -> bytes:
    """The inverse of :func:`pack_septets`: ``count`` septets from packed ``data``."""
    acc = int.from_bytes(data, "little") >> fill_bits
    return bytes((acc >> (7 * i)) & 0x7F for i in range(count))


def split_gsm7(text: str) -> list[bytes]:
    """``text`` as unpacked septets in SMS parts: one part of at most 160 septets, or parts of
    at most 153 each, never splitting an ESC pair. Raises ``ValueError`` if ``text`` is not
    GSM-7 (see :func:`is_gsm7`). The UDH is the sender's business."""
    codes = []
    for ch in text:
        code = _ENCODE.get(ch)
        if code is None:
            raise ValueError(f"{ch!r} is not in the GSM 03.38 default alphabet")
        codes.append(code)
    if sum(len(c) for c in codes) <= GSM7_SINGLE:
        return [b"".join(codes)]
    parts: list[bytes] = []
    current = bytearray()
    for code in codes:
        if len(current) + len(code) > GSM7_MULTI:
            parts.append(bytes(current))
            current = bytearray()
        current += code
    parts.append(bytes(current))
    return parts


def ucs2_units(text: str) -> int:
    """UTF-16 code units of ``text`` (a character outside the BMP takes two)."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def _joins_previous(ch: str) -> bool:
    """Whether ``ch`` belongs with the character before it on screen: combining marks,
    variation selectors, zero width joiner, emoji skin tone modifiers."""
    cp = ord(ch)
    return (
        unicodedata.combining(ch) != 0
        or 0xFE00 <= cp <= 0xFE0F
        or cp == 0x200D
        or 0x1F3FB <= cp <= 0x1F3FF
        or 0xE0020 <= cp <= 0xE007F  # emoji tag sequences (subdivision flags)
    )


def _clusters(text: str) -> list[str]:
    """Characters grouped so that a modifier stays with its base (a light approximation of
    grapheme clusters: enough for accents, 👍🏽 and ZWJ sequences)."""
    out: list[str] = []
    joined = False
    for ch in text:
        if out and (joined or _joins_previous(ch)):
            out[-1] += ch
        else:
            out.append(ch)
        joined = ord(ch) == 0x200D
    return out


def split_ucs2(text: str) -> list[bytes]:
    """``text`` as UTF-16BE in SMS parts: one part of at most 70 units, or parts of at most 67
    each. A surrogate pair is never split; a character with its modifiers (accent, skin tone,
    ZWJ sequence) is kept in one part when the sequence fits in a part."""
    if ucs2_units(text) <= UCS2_SINGLE:
        return [text.encode("utf-16-be")]
    parts: list[bytes] = []
    current: list[str] = []
    used = 0

    def flush() -> None:
        nonlocal current, used
        if current:
            parts.append("".join(current).encode("utf-16-be"))
        current, used = [], 0

    for cluster in _clusters(text):
        size = ucs2_units(cluster)
        if size > UCS2_MULTI:  # a pathological sequence: break it between code points
            for ch in cluster:
                if used + ucs2_units(ch) > UCS2_MULTI:
                    flush()
                current.append(ch)
                used += ucs2_units(ch)
            continue
        if used + size > UCS2_MULTI:
            flush()
        current.append(cluster)
        used += size
    flush()
    return parts


# Rewrites for the "downgrade" policy, beyond stripping accents (see downgrade()).
_DOWNGRADE = {
    "ç": "c", "œ": "oe", "Œ": "OE", "ĳ": "ij", "Ĳ": "IJ", "ÿ": "y", "Ÿ": "Y",
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'", "´": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "«": '"', "»": '"',
    "\u2039": "'", "\u203a": "'",
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u2026": "...", "\u2022": "-",
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " ", "\t": " ",
    "\u200b": "", "\u00ad": "",  # zero width space, soft hyphen
}


def _downgrade_char(ch: str) -> str | None:
    """The GSM-7 stand-in for ``ch``, or None if there is none that keeps its meaning."""
    if ch in _DOWNGRADE:
        return _DOWNGRADE[ch]
    # A letter with diacritics the table lacks (ê â î ô û ë ï á í ó ú È Ê Ô ...): keep the
    # base letter, provided the rest is only combining marks.
    decomposed = unicodedata.normalize("NFD", ch)
    base, marks = decomposed[0], decomposed[1:]
    if marks and base in _ENCODE and all(unicodedata.combining(m) for m in marks):
        return base
    return None


def downgrade(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Rewrite characters that are not GSM-7 to their nearest GSM-7 form, as GOV.UK Notify
    does: accented letters the table lacks lose the accent (ê→e, ç→c, ë→e, ï→i, ô→o), œ→oe,
    typographic quotes, dashes, ellipsis and special spaces become their ASCII forms. Letters
    the table has (é è à ù ä ö ü ß Ç É ...) are kept. Characters with no such form (emoji,
    other scripts) stay, so the caller sees that the text still needs UCS-2.

    Returns the text and the replacements made, each ``(original, replacement)`` pair once,
    in order of first occurrence (for the plan report).
    """
    out: list[str] = []
    made: dict[tuple[str, str], None] = {}
    for ch in text:
        if ch in _ENCODE:
            out.append(ch)
            continue
        repl = _downgrade_char(ch)
        if repl is None:
            out.append(ch)
        else:
            out.append(repl)
            made[(ch, repl)] = None
    return "".join(out), list(made)
