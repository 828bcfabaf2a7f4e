"""Delivery receipts: parsing a receipt deliver_sm, normalising ids, correlating them.

Pure, no I/O; the clock is passed in.

**Two forms.** A receipt is a deliver_sm (or a data_sm, §2.11) with esm_class message type
0x04 (SMPP 3.4 §5.2.12).
Its message id and final state come in the ``receipted_message_id`` and ``message_state``
TLVs, or in the short_message (or ``message_payload``) as the de-facto text of Appendix B:
``id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD
err:E text:...``. TLVs win when both are present. The text is decoded leniently (UTF-16
for data_coding 8, Latin-1 otherwise) since only its ASCII keys matter: a receipt with an
odd ``text:`` never fails.

**Ids.** SMSCs often answer submit_sm_resp with a decimal id and put it in the receipt in hex,
or the other way round, sometimes with leading zeros or in capitals. :func:`id_forms` gives a
canonical form (lower case, no leading zeros) and the other reading (decimal ↔ hex); matching
tries the exact canonical form first, then the other reading.

**Correlation.** :class:`Correlator` maps recent submit ids to the caller's tag (e.g. a
delivery id) and part number. A receipt can overtake the submit_sm_resp that carries its id
(the SMSC answered both at once): such a receipt is held for ``hold`` seconds and matched
when the resp arrives; past that it is reported with ``tag=None`` (unknown here: the caller
then looks in its store index, which is where receipts arriving hours later, after a restart,
are matched).
"""

from __future__ import annotations

import re
import struct
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from hub.outputs.smpp.pdu import (
    DC_UCS2,
    ESM_DELIVERY_RECEIPT,
    ESM_TYPE_MASK,
    TAG_MESSAGE_PAYLOAD,
    TAG_MESSAGE_STATE,
    TAG_NETWORK_ERROR_CODE,
    TAG_RECEIPTED_MESSAGE_ID,
    CommandId,
    DeliverSm,
    PduError,
    data_sm_fields,
    decode,
    read_tlvs,
)

# message_state TLV values (§5.2.28) → the stat words of the text form.
MESSAGE_STATES = {
    1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED",
    5: "UNDELIV", 6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD",
}
FINAL_STATES = frozenset({"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "REJECTD", "UNKNOWN"})
_STAT_ALIASES = {"DELIVERED": "DELIVRD", "UNDELIVERABLE": "UNDELIV", "ACCEPTED": "ACCEPTD",
                 "REJECTED": "REJECTD"}

_HEX = re.compile(r"[0-9a-f]+")


@dataclass(slots=True)
class Receipt:
    """One delivery receipt. ``tag`` and ``part`` are filled in by the correlator. Not frozen:
    one is built for every SMS sent, and a frozen dataclass's ``__init__`` costs several times
    more; nothing changes one once built."""

    message_id: str          # as the SMSC wrote it in the receipt
    state: str               # DELIVRD, UNDELIV, EXPIRED, ... (the text form's stat words)
    error: str = ""          # err: field or network_error_code, as text
    submit_date: str = ""
    done_date: str = ""
    destination: str = ""    # the handset (source_addr of the receipt)
    tag: object = None       # the caller's key for the submit; None when not correlated here
    part: int = 0            # 1-based part number of a multipart message; 0 when unknown
    parts: int = 0
    submit_id: str = ""      # the submit's id as the correlator matched it, canonical; "" if not

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def delivered(self) -> bool:
        return self.state == "DELIVRD"

    @property
    def reason(self) -> str | None:
        """What a failed delivery records: the state and the error ("UNDELIV err:001")."""
        return None if self.state == "DELIVRD" else self.state + (f" err:{self.error}" if self.error else "")


def _text_of(short_message: bytes, data_coding: int, tlvs: Mapping[int, bytes]) -> str:
    raw = short_message or tlvs.get(TAG_MESSAGE_PAYLOAD, b"")
    if data_coding == DC_UCS2 and len(raw) % 2 == 0:
        return raw.decode("utf-16-be", errors="replace")
    return raw.decode("latin-1")


_KEYS = ("id", "sub", "dlvrd", "submit date", "done date", "stat", "err")


def _find_key(low: str, key: str, end: int) -> int:
    """Where ``key:`` starts in ``low[:end]`` at a word boundary; -1 if absent."""
    i = low.find(key + ":", 0, end)
    while i > 0 and not low[i - 1].isspace():
        i = low.find(key + ":", i + 1, end)
    return i


# Appendix B's form as SMSCs write it (one space between fields, lower-case keys): read by one
# regular expression, with the same result as the general reading below, which takes the rest.
_STANDARD = re.compile(r"id:(\S*) sub:(\S*) dlvrd:(\S*) submit date:(\S*) done date:(\S*) stat:(\S*) "
                       r"err:(\S*)(?: text:(.*))?\Z", re.DOTALL)


def parse_text(text: str) -> dict[str, str]:
    """The ``key:value`` fields of a text receipt, keys lower case; ``text`` is the rest."""
    m = _STANDARD.match(text)
    if m is not None:
        fields = dict(zip(_KEYS, m.groups(), strict=False))
        if m.group(8) is not None:
            fields["text"] = m.group(8)
        return fields
    return _parse_text_general(text)


def _parse_text_general(text: str) -> dict[str, str]:
    """Keys found anywhere at a word boundary, in any case, whatever the spacing."""
    low = text.lower()
    end = _find_key(low, "text", len(low))
    limit = end if end >= 0 else len(low)
    found = sorted((i, key) for key in _KEYS if (i := _find_key(low, key, limit)) >= 0)
    fields: dict[str, str] = {}
    stop = end if end >= 0 else len(text)
    for n, (i, key) in enumerate(found):
        value_end = found[n + 1][0] if n + 1 < len(found) else stop
        fields[key] = text[i + len(key) + 1:value_end].strip()
    if end >= 0:
        fields["text"] = text[end + 5:]
    return fields


def parse_receipt(pdu: DeliverSm) -> Receipt | None:
    """The receipt carried by a deliver_sm, or None if it is not one (a mobile-originated SMS)."""
    return _receipt(pdu.esm_class, pdu.data_coding, pdu.short_message, pdu.tlvs, pdu.source_addr)


def _receipt(esm_class: int, data_coding: int, short_message: bytes, tlvs: Mapping[int, bytes],
             source_addr: str) -> Receipt | None:
    if esm_class & ESM_TYPE_MASK != ESM_DELIVERY_RECEIPT:
        return None
    text = _text_of(short_message, data_coding, tlvs)
    m = _STANDARD.match(text)  # parse_text's first reading, without building its dict
    if m is not None:
        text_id, submitted, done, stat, error = m.group(1, 4, 5, 6, 7)
    else:
        fields = _parse_text_general(text)
        text_id, stat, error = fields.get("id", ""), fields.get("stat", ""), fields.get("err", "")
        submitted, done = fields.get("submit date", ""), fields.get("done date", "")
    tlv_id = tlvs.get(TAG_RECEIPTED_MESSAGE_ID) if tlvs else None
    message_id = tlv_id.rstrip(b"\0").decode("latin-1") if tlv_id else text_id
    tlv_state = tlvs.get(TAG_MESSAGE_STATE) if tlvs else None
    if tlv_state:
        state = MESSAGE_STATES.get(tlv_state[0], "UNKNOWN")
    else:
        stat = stat.upper()
        state = _STAT_ALIASES.get(stat, stat) or "UNKNOWN"
    if not error and tlvs:
        net = tlvs.get(TAG_NETWORK_ERROR_CODE)
        if net and len(net) == 3:
            error = f"{net[0]}:{int.from_bytes(net[1:], 'big')}"
    return Receipt(message_id.strip(), state, error, submitted, done, source_addr)


def receipt_from_frame(frame: bytes) -> Receipt | None:
    """``parse_receipt(decode(frame))`` for a whole deliver_sm frame, reading only the fields a
    receipt needs instead of building the PDU (a receipt comes for every SMS sent); anything
    unusual (a malformed frame: :class:`PduError`, as ``decode`` raises) goes through ``decode``."""
    found = _read_deliver_sm(frame)
    if found is None:
        pdu = decode(frame)
        if not isinstance(pdu, DeliverSm):
            raise PduError(f"not a deliver_sm: command 0x{pdu.command_id:08X}")
        return parse_receipt(pdu)
    return _receipt(*found)


def receipt_from_data_sm(frame: bytes) -> Receipt | None:
    """The receipt a whole data_sm frame carries, or None if it is no receipt (mobile-originated
    data); :class:`PduError` if the frame is cut short."""
    esm_class, data_coding, tlvs, source = data_sm_fields(frame)
    return _receipt(esm_class, data_coding, b"", tlvs, source)


_LENGTH_COMMAND = struct.Struct(">II")
# A deliver_sm's body up to its short_message (§4.6.1), as SMSCs write it (every C-octet string
# within its size): source_addr, esm_class, data_coding and sm_length in one match.
_DELIVER_HEAD = re.compile(
    rb"[^\0]{0,5}\0..([^\0]{0,20})\0..[^\0]{0,20}\0(.)..[^\0]{0,16}\0[^\0]{0,16}\0..(.).(.)", re.DOTALL)


def _read_deliver_sm(frame: bytes) -> tuple[int, int, bytes, dict[int, bytes], str] | None:
    """(esm_class, data_coding, short_message, tlvs, source_addr) of a well-formed deliver_sm
    (§4.6.1); None when anything before the TLVs is amiss (then ``decode`` says what);
    :class:`PduError` from :func:`read_tlvs` for a cut TLV, as ``decode`` raises."""
    size = len(frame)
    if size < 16 or _LENGTH_COMMAND.unpack_from(frame) != (size, CommandId.DELIVER_SM):
        return None
    m = _DELIVER_HEAD.match(frame, 16)
    if m is not None:
        source, esm_class, data_coding, sm_length = m.group(1, 2, 3, 4)
        at = m.end()
        end = at + sm_length[0]
        if end <= size:
            return (esm_class[0], data_coding[0], frame[at:end], read_tlvs(frame, end),
                    source.decode("latin-1"))
    end = frame.find(b"\0", 16)  # service_type
    if end < 0:
        return None
    start = end + 3  # source_addr_ton, source_addr_npi
    end = frame.find(b"\0", start)
    if end < 0:
        return None
    source = frame[start:end].decode("latin-1")
    end = frame.find(b"\0", end + 3)  # destination_addr, after its ton and npi
    if end < 0:
        return None
    at = end + 1
    if at + 3 > size:
        return None
    esm_class = frame[at]
    end = frame.find(b"\0", at + 3)  # schedule_delivery_time, after protocol_id, priority_flag
    if end < 0:
        return None
    end = frame.find(b"\0", end + 1)  # validity_period
    if end < 0 or end + 6 > size:
        return None
    data_coding, length = frame[end + 3], frame[end + 5]
    at = end + 6
    if at + length > size:
        return None
    short_message = frame[at:at + length]
    return esm_class, data_coding, short_message, read_tlvs(frame, at + length), source


def canonical_id(message_id: str) -> str:
    """Lower case, no surrounding blanks, no leading zeros ("0" stays "0")."""
    s = message_id.strip().lower()
    return s.lstrip("0") or ("0" if s else "")


def id_forms(message_id: str) -> tuple[str, ...]:
    """The canonical id, then its other reading: decimal → hex, hex (or decimal) → decimal."""
    s = canonical_id(message_id)
    if not s or not _HEX.fullmatch(s) or len(s) > 32:
        return (s,)
    other = [format(int(s), "x"), str(int(s, 16))] if s.isdigit() else [str(int(s, 16))]
    return (s, *dict.fromkeys(o for o in other if o != s))


@dataclass(slots=True)
class _Sent:
    tag: object
    part: int
    parts: int


class Correlator:
    """Recent submit ids → (tag, part); holds early receipts; bounded in memory.

    ``capacity`` bounds the ids kept (oldest dropped first; a final receipt drops its id);
    ``hold`` is how long a receipt whose id is not known yet waits for its submit_sm_resp.
    """

    def __init__(self, *, capacity: int = 500_000, hold: float = 2.0) -> None:
        self.capacity = capacity
        self.hold = hold
        self._sent: OrderedDict[str, _Sent] = OrderedDict()
        self._early: OrderedDict[str, tuple[float, Receipt]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sent)

    def sent(self, message_id: str, tag: object, part: int, parts: int, now: float) -> list[Receipt]:
        """Record a submit id; returns receipts that had arrived before it, now correlated."""
        info = _Sent(tag, part, parts)
        key = canonical_id(message_id)
        matched: list[Receipt] = []
        if self._early:  # a receipt rarely overtakes its submit's answer
            for form in id_forms(message_id):
                early = self._early.pop(form, None)
                if early is not None:
                    matched.append(self._tagged(early[1], info, key))
        if not matched or not matched[-1].final:
            self._sent[key] = info
            if len(self._sent) > self.capacity:
                self._sent.popitem(last=False)
        return matched

    def received(self, receipt: Receipt, now: float) -> Receipt | None:
        """A receipt → itself correlated, or None when held until its submit id shows up."""
        key = canonical_id(receipt.message_id)
        info = self._sent.get(key)
        if info is None:  # the other reading of the id (hex for decimal, or back)
            for form in id_forms(key)[1:]:
                info = self._sent.get(form)
                if info is not None:
                    key = form
                    break
            else:
                self._early[key] = (now + self.hold, receipt)
                return None
        if receipt.final:
            del self._sent[key]
        return self._tagged(receipt, info, key)

    def expire(self, now: float) -> list[Receipt]:
        """Held receipts whose time is up, reported uncorrelated (``tag=None``)."""
        out: list[Receipt] = []
        while self._early:
            key, (deadline, receipt) = next(iter(self._early.items()))
            if deadline > now:
                break
            del self._early[key]
            out.append(receipt)
        return out

    @staticmethod
    def _tagged(receipt: Receipt, info: _Sent, key: str) -> Receipt:
        r = receipt
        return Receipt(r.message_id, r.state, r.error, r.submit_date, r.done_date, r.destination,
                       info.tag, info.part, info.parts, key)
