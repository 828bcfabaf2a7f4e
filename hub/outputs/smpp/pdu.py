"""SMPP 3.4 protocol data units: a pure codec, no I/O.

Only the PDUs an ESME bound as a transceiver needs are modelled, named after the
SMPP v3.4 specification (issue 12-Oct-1999): ``bind_transceiver`` (§4.1.5),
``unbind`` (§4.2), ``generic_nack`` (§4.3), ``submit_sm`` (§4.4), ``deliver_sm`` (§4.6)
and ``enquire_link`` (§4.11), each with its ``_resp``; of ``data_sm`` (§4.7), what a delivery
receipt sent in one carries (:func:`data_sm_fields`). Every PDU is a frozen dataclass
carrying ``sequence_number`` and ``command_status``; :func:`encode` turns one into a
frame (16-octet header + body) and :func:`decode` turns a whole frame back.

Optional parameters (TLVs, §5.3) are kept as ``{tag: value octets}``; the ones we use
have constants below. Concatenation helpers cover the 8-bit-reference UDH
(``05 00 03 ref total seq`` with ``esm_class`` 0x40, 3GPP TS 23.040 §9.2.3.24.1) and the
``sar_*`` TLVs. :class:`FrameReader` cuts a byte stream into frames.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

from hub.errors import HubError

HEADER = struct.Struct(">IIII")
MAX_FRAME = 65536  # far above any PDU we accept; guards against a garbage length


class PduError(HubError):
    """A frame could not be decoded (bad length, missing NUL, truncated body)."""


class CommandId(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    DATA_SM = 0x00000103  # read only for the delivery receipts an SMSC may send in one
    DATA_SM_RESP = 0x80000103


class Status(IntEnum):
    """command_status values (§5.1.3) that an ESME may meet."""

    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RINVPRTFLG = 0x06
    ESME_RINVREGDLVFLG = 0x07
    ESME_RSYSERR = 0x08
    ESME_RINVSRCADR = 0x0A
    ESME_RINVDSTADR = 0x0B
    ESME_RINVMSGID = 0x0C
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RINVSYSID = 0x0F
    ESME_RMSGQFUL = 0x14
    ESME_RINVSERTYP = 0x15
    ESME_RINVNUMDESTS = 0x33
    ESME_RINVESMCLASS = 0x43
    ESME_RSUBMITFAIL = 0x45
    ESME_RINVSRCTON = 0x48
    ESME_RINVSRCNPI = 0x49
    ESME_RINVDSTTON = 0x50
    ESME_RINVDSTNPI = 0x51
    ESME_RINVSYSTYP = 0x53
    ESME_RTHROTTLED = 0x58
    ESME_RINVSCHED = 0x61
    ESME_RINVEXPIRY = 0x62
    ESME_RX_T_APPN = 0x64
    ESME_RX_P_APPN = 0x65
    ESME_RX_R_APPN = 0x66
    ESME_RINVOPTPARSTREAM = 0xC0
    ESME_ROPTPARNOTALLWD = 0xC1
    ESME_RINVPARLEN = 0xC2
    ESME_RMISSINGOPTPARAM = 0xC3
    ESME_RINVOPTPARAMVAL = 0xC4
    ESME_RDELIVERYFAILURE = 0xFE
    ESME_RUNKNOWNERR = 0xFF


def status_name(code: int) -> str:
    """``ESME_RTHROTTLED`` for 0x58; ``0x00000400`` for a vendor-specific code."""
    try:
        return Status(code).name
    except ValueError:
        return f"0x{code:08X}"


# Optional parameter tags (§5.3.2).
TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_SAR_MSG_REF_NUM = 0x020C
TAG_SAR_TOTAL_SEGMENTS = 0x020E
TAG_SAR_SEGMENT_SEQNUM = 0x020F
TAG_SC_INTERFACE_VERSION = 0x0210
TAG_NETWORK_ERROR_CODE = 0x0423
TAG_MESSAGE_PAYLOAD = 0x0424
TAG_MESSAGE_STATE = 0x0427

# esm_class bits (§5.2.12).
ESM_UDHI = 0x40
ESM_DELIVERY_RECEIPT = 0x04
ESM_TYPE_MASK = 0x3C

# data_coding (§5.2.19) values the hub sends.
DC_DEFAULT = 0x00
DC_UCS2 = 0x08

Tlvs = Mapping[int, bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Pdu:
    command_id: ClassVar[int]
    sequence_number: int
    command_status: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericNack(_Pdu):
    command_id: ClassVar[int] = CommandId.GENERIC_NACK


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiver(_Pdu):
    command_id: ClassVar[int] = CommandId.BIND_TRANSCEIVER
    system_id: str
    password: str
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiverResp(_Pdu):
    command_id: ClassVar[int] = CommandId.BIND_TRANSCEIVER_RESP
    system_id: str = ""
    tlvs: Tlvs = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unbind(_Pdu):
    command_id: ClassVar[int] = CommandId.UNBIND


@dataclass(frozen=True, slots=True, kw_only=True)
class UnbindResp(_Pdu):
    command_id: ClassVar[int] = CommandId.UNBIND_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLink(_Pdu):
    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLinkResp(_Pdu):
    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class _Sm(_Pdu):
    """The body shared by submit_sm and deliver_sm (§4.4.1, §4.6.1)."""

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""
    tlvs: Tlvs = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSm(_Sm):
    command_id: ClassVar[int] = CommandId.SUBMIT_SM


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSm(_Sm):
    command_id: ClassVar[int] = CommandId.DELIVER_SM


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSmResp(_Pdu):
    command_id: ClassVar[int] = CommandId.SUBMIT_SM_RESP
    message_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSmResp(_Pdu):
    command_id: ClassVar[int] = CommandId.DELIVER_SM_RESP
    message_id: str = ""


Pdu = (
    GenericNack | BindTransceiver | BindTransceiverResp | Unbind | UnbindResp | EnquireLink
    | EnquireLinkResp | SubmitSm | SubmitSmResp | DeliverSm | DeliverSmResp
)


# -- encoding ------------------------------------------------------------------------------

def _cstr(value: str, limit: int) -> bytes:
    raw = value.encode("latin-1")
    if len(raw) >= limit or b"\0" in raw:
        raise PduError(f"C-octet string too long or with NUL (max {limit - 1}): {value!r}")
    return raw + b"\0"


def encode_tlvs(tlvs: Tlvs) -> bytes:
    return b"".join(struct.pack(">HH", tag, len(v)) + v for tag, v in tlvs.items())


def frame(command_id: int, command_status: int, sequence_number: int, body: bytes = b"") -> bytes:
    """The 16-octet header followed by ``body``."""
    return HEADER.pack(16 + len(body), command_id, command_status, sequence_number) + body


def sm_body(pdu: SubmitSm | DeliverSm) -> bytes:
    """The body of a submit_sm or deliver_sm; kept apart so a retry only re-frames it."""
    if len(pdu.short_message) > 254:
        raise PduError("short_message longer than 254 octets: use message_payload")
    return b"".join((
        _cstr(pdu.service_type, 6),
        bytes((pdu.source_addr_ton, pdu.source_addr_npi)),
        _cstr(pdu.source_addr, 21),
        bytes((pdu.dest_addr_ton, pdu.dest_addr_npi)),
        _cstr(pdu.destination_addr, 21),
        bytes((pdu.esm_class, pdu.protocol_id, pdu.priority_flag)),
        _cstr(pdu.schedule_delivery_time, 17),
        _cstr(pdu.validity_period, 17),
        bytes((pdu.registered_delivery, pdu.replace_if_present_flag, pdu.data_coding,
               pdu.sm_default_msg_id, len(pdu.short_message))),
        pdu.short_message,
        encode_tlvs(pdu.tlvs),
    ))


def _body(pdu: Pdu) -> bytes:
    if isinstance(pdu, SubmitSm | DeliverSm):
        return sm_body(pdu)
    if isinstance(pdu, SubmitSmResp | DeliverSmResp):
        return _cstr(pdu.message_id, 65)
    if isinstance(pdu, BindTransceiver):
        return b"".join((
            _cstr(pdu.system_id, 16), _cstr(pdu.password, 9), _cstr(pdu.system_type, 13),
            bytes((pdu.interface_version, pdu.addr_ton, pdu.addr_npi)), _cstr(pdu.address_range, 41),
        ))
    if isinstance(pdu, BindTransceiverResp):
        return _cstr(pdu.system_id, 16) + encode_tlvs(pdu.tlvs)
    return b""


def encode(pdu: Pdu) -> bytes:
    """One whole frame. A response with a non-zero status carries no body (§3.3)."""
    body = b"" if pdu.command_status and pdu.command_id & 0x80000000 else _body(pdu)
    return frame(pdu.command_id, pdu.command_status, pdu.sequence_number, body)


# -- decoding ------------------------------------------------------------------------------

class _Cursor:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def cstr(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise PduError(f"C-octet string without NUL at offset {self.pos}")
        value = self.data[self.pos:end].decode("latin-1")
        self.pos = end + 1
        return value

    def u8(self) -> int:
        if self.pos >= len(self.data):
            raise PduError(f"body truncated at offset {self.pos}")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def octets(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise PduError(f"body truncated: {n} octets wanted at offset {self.pos}")
        value = self.data[self.pos:self.pos + n]
        self.pos += n
        return value

    def tlvs(self) -> dict[int, bytes]:
        out = read_tlvs(self.data, self.pos)
        self.pos = len(self.data)
        return out


_TLV_HEAD = struct.Struct(">HH")


def data_sm_fields(frame: bytes) -> tuple[int, int, dict[int, bytes], str]:
    """(esm_class, data_coding, TLVs, source_addr) of a whole data_sm frame (§4.7.1), what a
    delivery receipt sent in one needs (§2.11: an SMSC may use data_sm for receipts, the text
    in ``message_payload``); :class:`PduError` if it is cut short."""
    cur = _Cursor(frame, HEADER.size)
    cur.cstr()  # service_type
    cur.octets(2)  # source_addr_ton, source_addr_npi
    source = cur.cstr()
    cur.octets(2)  # dest_addr_ton, dest_addr_npi
    cur.cstr()  # destination_addr
    esm_class, _registered_delivery, data_coding = cur.octets(3)
    return esm_class, data_coding, read_tlvs(frame, cur.pos), source


def read_tlvs(data: bytes, pos: int) -> dict[int, bytes]:
    """The TLVs from ``pos`` to the end of a frame; :class:`PduError` if one is cut short."""
    out: dict[int, bytes] = {}
    size = len(data)
    while pos < size:
        if pos + 4 > size:
            raise PduError("truncated TLV header")
        tag, length = _TLV_HEAD.unpack_from(data, pos)
        pos += 4
        if pos + length > size:
            raise PduError(f"body truncated: {length} octets wanted at offset {pos}")
        out[tag] = data[pos:pos + length]
        pos += length
    return out


def _decode_sm(
    cls: type[SubmitSm] | type[DeliverSm], seq: int, status: int, c: _Cursor,
) -> SubmitSm | DeliverSm:
    service_type = c.cstr()
    s_ton, s_npi = c.u8(), c.u8()
    source = c.cstr()
    d_ton, d_npi = c.u8(), c.u8()
    dest = c.cstr()
    esm, pid, prio = c.u8(), c.u8(), c.u8()
    sched, validity = c.cstr(), c.cstr()
    reg, replace, dc, default_id, sm_length = c.u8(), c.u8(), c.u8(), c.u8(), c.u8()
    short_message = c.octets(sm_length)
    return cls(
        sequence_number=seq, command_status=status, service_type=service_type,
        source_addr_ton=s_ton, source_addr_npi=s_npi, source_addr=source,
        dest_addr_ton=d_ton, dest_addr_npi=d_npi, destination_addr=dest,
        esm_class=esm, protocol_id=pid, priority_flag=prio, schedule_delivery_time=sched,
        validity_period=validity, registered_delivery=reg, replace_if_present_flag=replace,
        data_coding=dc, sm_default_msg_id=default_id, short_message=short_message, tlvs=c.tlvs(),
    )


_EMPTY: dict[int, type[GenericNack | Unbind | UnbindResp | EnquireLink | EnquireLinkResp]] = {
    CommandId.GENERIC_NACK: GenericNack, CommandId.UNBIND: Unbind, CommandId.UNBIND_RESP: UnbindResp,
    CommandId.ENQUIRE_LINK: EnquireLink, CommandId.ENQUIRE_LINK_RESP: EnquireLinkResp,
}


def decode(data: bytes) -> Pdu:
    """A whole frame (header included) → its PDU; :class:`PduError` if it is malformed.

    A response with a non-zero status may have an empty body (§3.3): its fields default.
    """
    if len(data) < 16:
        raise PduError(f"frame shorter than its header: {len(data)} octets")
    length, command_id, status, seq = HEADER.unpack_from(data)
    if length != len(data):
        raise PduError(f"command_length {length} but frame of {len(data)} octets")
    empty = _EMPTY.get(command_id)
    if empty is not None:
        return empty(sequence_number=seq, command_status=status)
    c = _Cursor(data, 16)
    if command_id in (CommandId.SUBMIT_SM_RESP, CommandId.DELIVER_SM_RESP):
        message_id = c.cstr() if length > 16 else ""
        if command_id == CommandId.SUBMIT_SM_RESP:
            return SubmitSmResp(sequence_number=seq, command_status=status, message_id=message_id)
        return DeliverSmResp(sequence_number=seq, command_status=status, message_id=message_id)
    if command_id == CommandId.SUBMIT_SM:
        return _decode_sm(SubmitSm, seq, status, c)
    if command_id == CommandId.DELIVER_SM:
        return _decode_sm(DeliverSm, seq, status, c)
    if command_id == CommandId.BIND_TRANSCEIVER_RESP:
        if length == 16:
            return BindTransceiverResp(sequence_number=seq, command_status=status)
        return BindTransceiverResp(sequence_number=seq, command_status=status, system_id=c.cstr(),
                                   tlvs=c.tlvs())
    if command_id == CommandId.BIND_TRANSCEIVER:
        system_id, password, system_type = c.cstr(), c.cstr(), c.cstr()
        version, ton, npi = c.u8(), c.u8(), c.u8()
        return BindTransceiver(sequence_number=seq, command_status=status, system_id=system_id,
                               password=password, system_type=system_type, interface_version=version,
                               addr_ton=ton, addr_npi=npi, address_range=c.cstr())
    raise PduError(f"unsupported command_id 0x{command_id:08X}")


_U32 = struct.Struct(">I")


class FrameReader:
    """Cuts a TCP byte stream into whole frames, whatever the read boundaries."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        if buf:  # the rest of a frame cut by the last read comes first
            buf += data
            data = bytes(buf)
            buf.clear()
        frames: list[bytes] = []
        pos, end = 0, len(data)
        unpack = _U32.unpack_from
        while end - pos >= 4:
            (length,) = unpack(data, pos)
            if length < 16 or length > MAX_FRAME:
                buf += data[pos:]  # kept as read: a caller may look at it after the error
                raise PduError(f"implausible command_length {length}")
            if end - pos < length:
                break
            frames.append(data[pos:pos + length])  # one copy, straight from the read
            pos += length
        if pos < end:
            buf += data[pos:]
        return frames


# -- concatenation -------------------------------------------------------------------------

def udh_concat(ref: int, total: int, seq: int) -> bytes:
    """User data header with one 8-bit-reference concatenation element: 05 00 03 ref total seq."""
    if not (0 <= ref <= 0xFF and 1 <= seq <= total <= 0xFF):
        raise ValueError(f"bad concatenation ref={ref} total={total} seq={seq}")
    return bytes((5, 0, 3, ref, total, seq))


def split_udh(short_message: bytes) -> tuple[dict[int, bytes], bytes]:
    """A short_message whose esm_class has UDHI → ({IEI: data}, the user data after it)."""
    if not short_message:
        raise PduError("UDHI set on an empty short_message")
    udhl = short_message[0]
    if udhl + 1 > len(short_message):
        raise PduError(f"UDH length {udhl} beyond the message")
    ies: dict[int, bytes] = {}
    pos, end = 1, udhl + 1
    while pos + 2 <= end:
        iei, iel = short_message[pos], short_message[pos + 1]
        if pos + 2 + iel > end:
            raise PduError("information element beyond the UDH")
        ies[iei] = short_message[pos + 2:pos + 2 + iel]
        pos += 2 + iel
    return ies, short_message[end:]


def concat_info(pdu: SubmitSm | DeliverSm) -> tuple[int, int, int] | None:
    """(ref, total, seq) from a UDH (8- or 16-bit reference) or the sar_* TLVs; None if single."""
    if pdu.esm_class & ESM_UDHI:
        ies, _ = split_udh(pdu.short_message)
        if 0x00 in ies and len(ies[0x00]) == 3:
            ref, total, seq = ies[0x00]
            return ref, total, seq
        if 0x08 in ies and len(ies[0x08]) == 4:
            ref16, total, seq = struct.unpack(">HBB", ies[0x08])
            return ref16, total, seq
    t = pdu.tlvs
    if TAG_SAR_MSG_REF_NUM in t and TAG_SAR_TOTAL_SEGMENTS in t and TAG_SAR_SEGMENT_SEQNUM in t:
        (ref,) = struct.unpack(">H", t[TAG_SAR_MSG_REF_NUM])
        return ref, t[TAG_SAR_TOTAL_SEGMENTS][0], t[TAG_SAR_SEGMENT_SEQNUM][0]
    return None


def sar_tlvs(ref: int, total: int, seq: int) -> dict[int, bytes]:
    """The sar_msg_ref_num (16-bit), sar_total_segments and sar_segment_seqnum TLVs."""
    return {
        TAG_SAR_MSG_REF_NUM: struct.pack(">H", ref),
        TAG_SAR_TOTAL_SEGMENTS: bytes((total,)),
        TAG_SAR_SEGMENT_SEQNUM: bytes((seq,)),
    }


def cstring_tlv(value: str) -> bytes:
    """A C-octet string TLV value such as receipted_message_id."""
    return value.encode("latin-1") + b"\0"
