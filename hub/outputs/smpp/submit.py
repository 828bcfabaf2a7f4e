"""The submit_sm bodies of one message, pure: addresses (see :mod:`hub.outputs.smpp.session`
for the TON/NPI rules), concatenation by UDH, SAR TLVs or message_payload, and a per-text
template so that an alert sent to many numbers is encoded once, with only the destination
changing (the same bytes as :func:`hub.outputs.smpp.pdu.sm_body`, checked by the tests)."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Literal

from hub.outputs.smpp import pdu as p
from hub.outputs.smpp.errors import SubmitRefused

Concat = Literal["udh", "sar", "payload"]

_E164 = re.compile(r"\+?([1-9][0-9]{6,14})")
_TEMPLATES = 1024  # texts whose encoding is kept; an alert has a handful


def source_ton_npi(source_addr: str) -> tuple[int, int]:
    """TON/NPI for a source address: ``+`` or more than 8 digits → 1/1, a short code → 3/0,
    letters → 5/0."""
    if source_addr.startswith("+") or (source_addr.isdigit() and len(source_addr) > 8):
        return 1, 1
    if source_addr.isdigit():
        return 3, 0
    return 5, 0


def destination_addr(dest_e164: str) -> str:
    """``+32470123456`` → ``32470123456``; :class:`SubmitRefused` (permanent) if not E.164."""
    m = _E164.fullmatch(dest_e164.strip())
    if m is None:
        raise SubmitRefused(p.Status.ESME_RINVDSTADR, f"not an E.164 number: {dest_e164!r}")
    return m.group(1)


class SubmitBodies:
    """Builds submit_sm bodies for one bind: its source TON/NPI override and its rolling
    8-bit concatenation reference."""

    def __init__(self, source_ton: int | None = None, source_npi: int | None = None) -> None:
        self.source_ton, self.source_npi = source_ton, source_npi
        self._ref = random.randrange(256)
        self._templates: dict[tuple[str, int, int, int, bool, bytes, int], tuple[bytes, bytes]] = {}

    def bodies(self, dest_e164: str, parts: Sequence[bytes], data_coding: int, source_addr: str,
               registered_delivery: bool = True, *, concat: Concat = "udh",
               ref: int | None = None) -> tuple[list[bytes], int | None]:
        """The encoded submit_sm bodies of one message (see :meth:`submit`) and its
        concatenation ref; :class:`SubmitRefused` (permanent) if the number is not E.164."""
        if not parts:
            raise ValueError("nothing to submit")
        dest = destination_addr(dest_e164)
        if self.source_ton is not None and self.source_npi is not None:
            s_ton, s_npi = self.source_ton, self.source_npi
        else:
            s_ton, s_npi = source_ton_npi(source_addr)
        source = source_addr.lstrip("+") if s_ton == 1 else source_addr
        if concat == "payload" or len(parts) == 1:
            bodies = [self._body(dest, source, s_ton, s_npi, data_coding, registered_delivery,
                                 b"".join(parts), 0, {}, payload=concat == "payload" or len(parts[0]) > 254)]
        else:
            if ref is None:
                self._ref = (self._ref + 1) & 0xFF
                ref = self._ref
            n = len(parts)
            bodies = [
                self._body(dest, source, s_ton, s_npi, data_coding, registered_delivery,
                           p.udh_concat(ref, n, i + 1) + part if concat == "udh" else part,
                           p.ESM_UDHI if concat == "udh" else 0,
                           p.sar_tlvs(ref, n, i + 1) if concat == "sar" else {})
                for i, part in enumerate(parts)
            ]
        return bodies, ref

    def many(self, dests: Sequence[str], parts: Sequence[bytes], data_coding: int, source_addr: str,
             registered_delivery: bool = True, *, concat: Concat = "udh",
             ) -> list[tuple[list[bytes], int | None] | SubmitRefused]:
        """:meth:`bodies` for each of ``dests`` (one text to many numbers), the text's part of
        the work done once: a one-part text is the template with each destination set in."""
        if len(parts) != 1 or concat == "payload" or len(parts[0]) > 254:
            return [self._or_refused(d, parts, data_coding, source_addr, registered_delivery, concat)
                    for d in dests]
        head, tail = self._template(parts[0], data_coding, source_addr, registered_delivery)
        out: list[tuple[list[bytes], int | None] | SubmitRefused] = []
        for dest in dests:
            m = _E164.fullmatch(dest.strip())
            out.append(([head + m.group(1).encode() + tail], None) if m is not None else
                       self._or_refused(dest, parts, data_coding, source_addr, registered_delivery, concat))
        return out

    def _or_refused(self, dest: str, parts: Sequence[bytes], data_coding: int, source_addr: str,
                    registered_delivery: bool, concat: Concat,
                    ) -> tuple[list[bytes], int | None] | SubmitRefused:
        try:
            return self.bodies(dest, parts, data_coding, source_addr, registered_delivery, concat=concat)
        except SubmitRefused as exc:
            return exc

    def _template(self, message: bytes, data_coding: int, source_addr: str,
                  registered: bool) -> tuple[bytes, bytes]:
        """A one-part submit_sm body around its destination: (before it, after it)."""
        if self.source_ton is not None and self.source_npi is not None:
            s_ton, s_npi = self.source_ton, self.source_npi
        else:
            s_ton, s_npi = source_ton_npi(source_addr)
        source = source_addr.lstrip("+") if s_ton == 1 else source_addr
        key = (source, s_ton, s_npi, data_coding, registered, message, 0)
        template = self._templates.get(key)
        if template is None:
            self._body("0", source, s_ton, s_npi, data_coding, registered, message, 0, {})
            template = self._templates[key]
        return template

    def _body(self, dest: str, source: str, s_ton: int, s_npi: int, data_coding: int, registered: bool,
              message: bytes, esm_class: int, tlvs: dict[int, bytes], payload: bool = False) -> bytes:
        if payload:
            tlvs = {**tlvs, p.TAG_MESSAGE_PAYLOAD: message}
            message = b""
        elif not tlvs:
            # An alert goes to many numbers with the same text: everything but the destination
            # is encoded once (the same bytes as sm_body, checked by the tests).
            key = (source, s_ton, s_npi, data_coding, registered, message, esm_class)
            template = self._templates.get(key)
            if template is None:
                if len(self._templates) >= _TEMPLATES:
                    self._templates.clear()
                empty = p.sm_body(p.SubmitSm(
                    sequence_number=0, source_addr_ton=s_ton, source_addr_npi=s_npi, source_addr=source,
                    dest_addr_ton=1, dest_addr_npi=1, destination_addr="", esm_class=esm_class,
                    registered_delivery=1 if registered else 0, data_coding=data_coding,
                    short_message=message))
                at = 1 + 2 + len(source.encode("latin-1")) + 1 + 2  # service_type, source, TON/NPI
                template = self._templates[key] = (empty[:at], empty[at:])
            if dest.isdigit() and len(dest) < 21:
                return template[0] + dest.encode() + template[1]
        return p.sm_body(p.SubmitSm(
            sequence_number=0, source_addr_ton=s_ton, source_addr_npi=s_npi, source_addr=source,
            dest_addr_ton=1, dest_addr_npi=1, destination_addr=dest, esm_class=esm_class,
            registered_delivery=1 if registered else 0, data_coding=data_coding,
            short_message=message, tlvs=tlvs,
        ))
