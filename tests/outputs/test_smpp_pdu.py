"""The SMPP codec and receipt logic, on hand-built byte strings: no event loop, no network."""

from __future__ import annotations

import struct

import pytest

from hub.outputs.smpp import pdu as p
from hub.outputs.smpp.receipts import Correlator, Receipt, canonical_id, id_forms, parse_receipt, parse_text


def hdr(length: int, command_id: int, status: int, seq: int) -> bytes:
    return b"".join(x.to_bytes(4, "big") for x in (length, command_id, status, seq))


def test_bind_transceiver_bytes() -> None:
    pdu = p.BindTransceiver(sequence_number=1, system_id="hub", password="pw", system_type="CAP")
    body = b"hub\0pw\0CAP\0" + b"\x34\x00\x00" + b"\0"
    assert p.encode(pdu) == hdr(16 + len(body), 0x00000009, 0, 1) + body
    assert p.decode(p.encode(pdu)) == pdu


def test_bind_resp_with_tlv_and_refused_bind_without_body() -> None:
    frame = hdr(16 + 10 + 5, 0x80000009, 0, 1) + b"node-smsc\0" + b"\x02\x10\x00\x01\x34"
    resp = p.decode(frame)
    assert resp == p.BindTransceiverResp(sequence_number=1, system_id="node-smsc",
                                         tlvs={p.TAG_SC_INTERFACE_VERSION: b"\x34"})
    refused = p.decode(hdr(16, 0x80000009, 0x0E, 1))
    assert refused.command_status == p.Status.ESME_RINVPASWD
    refused_frame = p.encode(p.BindTransceiverResp(sequence_number=1, command_status=0x0E))
    assert refused_frame == hdr(16, 0x80000009, 0x0E, 1)


def test_submit_sm_bytes_with_udh() -> None:
    udh = p.udh_concat(0x2A, 3, 2)
    assert udh == bytes.fromhex("0500032a0302")
    pdu = p.SubmitSm(sequence_number=7, source_addr_ton=3, source_addr="1789", dest_addr_ton=1,
                     dest_addr_npi=1, destination_addr="32470000001", esm_class=0x40,
                     registered_delivery=1, data_coding=0, short_message=udh + b"Hi")
    body = (b"\0" + b"\x03\x00" + b"1789\0" + b"\x01\x01" + b"32470000001\0" + b"\x40\x00\x00"
            + b"\0\0" + b"\x01\x00\x00\x00" + b"\x08" + udh + b"Hi")
    frame = p.encode(pdu)
    assert frame == hdr(16 + len(body), 4, 0, 7) + body
    back = p.decode(frame)
    assert back == pdu
    assert isinstance(back, p.SubmitSm)
    assert p.concat_info(back) == (0x2A, 3, 2)
    assert p.split_udh(back.short_message) == ({0: b"\x2a\x03\x02"}, b"Hi")


def test_sar_tlvs_and_payload_round_trip() -> None:
    tlvs = {**p.sar_tlvs(0x1234, 2, 1), p.TAG_MESSAGE_PAYLOAD: b"x" * 300}
    pdu = p.SubmitSm(sequence_number=9, destination_addr="1", data_coding=8, tlvs=tlvs)
    back = p.decode(p.encode(pdu))
    assert isinstance(back, p.SubmitSm)
    assert back.tlvs == tlvs
    assert p.concat_info(back) == (0x1234, 2, 1)


@pytest.mark.parametrize("pdu", [
    p.Unbind(sequence_number=3), p.UnbindResp(sequence_number=3), p.EnquireLink(sequence_number=4),
    p.EnquireLinkResp(sequence_number=4), p.GenericNack(sequence_number=5, command_status=3),
    p.SubmitSmResp(sequence_number=6, message_id="abc123"), p.DeliverSmResp(sequence_number=8),
    p.DeliverSm(sequence_number=2, esm_class=4, short_message=b"id:1 stat:DELIVRD"),
])
def test_round_trip(pdu: p.Pdu) -> None:
    assert p.decode(p.encode(pdu)) == pdu


def test_submit_sm_resp_bytes_and_throttled_without_body() -> None:
    assert p.decode(hdr(23, 0x80000004, 0, 12) + b"0a1b2c\0") == p.SubmitSmResp(sequence_number=12,
                                                                                message_id="0a1b2c")
    throttled = p.decode(hdr(16, 0x80000004, 0x58, 13))
    assert throttled.command_status == p.Status.ESME_RTHROTTLED
    assert p.status_name(0x58) == "ESME_RTHROTTLED"
    assert p.status_name(0x14) == "ESME_RMSGQFUL"
    assert p.status_name(0x400) == "0x00000400"


@pytest.mark.parametrize("frame, message", [
    (b"\0\0\0\x10", "shorter than its header"),
    (hdr(20, 0x80000004, 0, 1) + b"abc", "command_length"),
    (hdr(19, 0x80000004, 0, 1) + b"abc", "without NUL"),
    (hdr(17, 0x00000005, 0, 1) + b"\0", "truncated"),
    (hdr(16, 0x00000099, 0, 1), "unsupported"),
])
def test_malformed_frames(frame: bytes, message: str) -> None:
    with pytest.raises(p.PduError, match=message):
        p.decode(frame)


def test_encode_refuses_long_short_message_and_long_addresses() -> None:
    with pytest.raises(p.PduError, match="message_payload"):
        p.encode(p.SubmitSm(sequence_number=1, short_message=b"x" * 255))
    with pytest.raises(p.PduError, match="too long"):
        p.encode(p.SubmitSm(sequence_number=1, destination_addr="1" * 21))


def test_frame_reader_any_boundaries() -> None:
    frames = [p.encode(p.EnquireLink(sequence_number=i)) for i in range(1, 4)]
    frames.append(p.encode(p.SubmitSmResp(sequence_number=9, message_id="x" * 40)))
    stream = b"".join(frames)
    for cut in range(1, 12):
        reader = p.FrameReader()
        got: list[bytes] = []
        for i in range(0, len(stream), cut):
            got += reader.feed(stream[i:i + cut])
        assert got == frames
    with pytest.raises(p.PduError, match="implausible"):
        p.FrameReader().feed(b"\0\0\0\x05")


def test_udh_16_bit_reference_and_bad_udh() -> None:
    sm = p.DeliverSm(sequence_number=1, esm_class=0x40, short_message=bytes.fromhex("0608041234030148"))
    assert p.concat_info(sm) == (0x1234, 3, 1)
    with pytest.raises(p.PduError):
        p.split_udh(bytes.fromhex("0900"))
    with pytest.raises(ValueError):
        p.udh_concat(1, 2, 3)


# -- receipts ------------------------------------------------------------------------------

TEXT = ("id:0A1B2C sub:001 dlvrd:001 submit date:2406011200 done date:2406011201 "
        "stat:DELIVRD err:000 text:Alerte inondation")


def receipt_pdu(short_message: bytes = b"", tlvs: dict[int, bytes] | None = None, dc: int = 0) -> p.DeliverSm:
    frame = p.encode(p.DeliverSm(sequence_number=5, source_addr="32470000001", destination_addr="1789",
                                 esm_class=0x04, data_coding=dc, short_message=short_message,
                                 tlvs=tlvs or {}))
    pdu = p.decode(frame)
    assert isinstance(pdu, p.DeliverSm)
    return pdu


def test_text_receipt() -> None:
    r = parse_receipt(receipt_pdu(TEXT.encode()))
    assert r == Receipt(message_id="0A1B2C", state="DELIVRD", error="000", submit_date="2406011200",
                        done_date="2406011201", destination="32470000001")
    assert r.final and r.delivered
    assert parse_text(TEXT)["text"] == "Alerte inondation"


def test_tlv_receipt_wins_over_text_and_network_error() -> None:
    tlvs = {p.TAG_RECEIPTED_MESSAGE_ID: p.cstring_tlv("42"), p.TAG_MESSAGE_STATE: b"\x05",
            p.TAG_NETWORK_ERROR_CODE: b"\x03\x00\x0b"}
    r = parse_receipt(receipt_pdu(b"", tlvs))
    assert r is not None
    assert (r.message_id, r.state, r.error, r.final, r.delivered) == ("42", "UNDELIV", "3:11", True, False)


def test_receipt_with_non_gsm_text_and_ucs2_coding_never_fails() -> None:
    text = "id:77 stat:EXPIRED err:0 text:Évacuez l’école ☂"
    r = parse_receipt(receipt_pdu(text.encode("utf-16-be"), dc=8))
    assert r is not None and (r.message_id, r.state) == ("77", "EXPIRED")
    r = parse_receipt(receipt_pdu(b"id:78 stat:ACCEPTD text:\xff\xfe\x00"))
    assert r is not None and (r.state, r.final) == ("ACCEPTD", False)
    r = parse_receipt(receipt_pdu(b"garbage"))
    assert r is not None and (r.message_id, r.state) == ("", "UNKNOWN")


def test_mobile_originated_is_not_a_receipt() -> None:
    mo = p.DeliverSm(sequence_number=1, esm_class=0, short_message=b"STOP")
    assert parse_receipt(mo) is None


def test_ids_hex_and_decimal() -> None:
    assert canonical_id(" 000ABC ") == "abc"
    assert canonical_id("000") == "0"
    assert id_forms("4000000000") == ("4000000000", "ee6b2800", "274877906944")
    assert id_forms("EE6B2800") == ("ee6b2800", "4000000000")
    assert id_forms("msg-1") == ("msg-1",)


def test_correlator_hex_decimal_early_and_unknown() -> None:
    c = Correlator(hold=1.0)
    assert c.sent("4000000000", "d1", 1, 2, now=0.0) == []
    got = c.received(Receipt(message_id="EE6B2800", state="DELIVRD"), now=0.1)
    assert got is not None and (got.tag, got.part, got.parts) == ("d1", 1, 2)
    assert len(c) == 0  # a final receipt forgets its id
    # a receipt before its submit_sm_resp is held, then matched
    assert c.received(Receipt(message_id="4000000001", state="DELIVRD"), now=0.2) is None
    matched = c.sent("EE6B2801", "d2", 2, 2, now=0.3)
    assert [(r.tag, r.part) for r in matched] == [("d2", 2)]
    # an id nobody sent comes out uncorrelated after the hold
    assert c.received(Receipt(message_id="999", state="UNDELIV"), now=0.4) is None
    assert c.expire(now=1.0) == []
    assert [(r.message_id, r.tag) for r in c.expire(now=1.5)] == [("999", None)]


def test_correlator_keeps_ids_until_final_and_is_bounded() -> None:
    c = Correlator(capacity=2)
    c.sent("1", "a", 1, 1, now=0)
    got = c.received(Receipt(message_id="1", state="ENROUTE"), now=0)
    assert got is not None and got.tag == "a" and len(c) == 1
    c.sent("2", "b", 1, 1, now=0)
    c.sent("3", "c", 1, 1, now=0)
    assert len(c) == 2
    assert c.received(Receipt(message_id="1", state="DELIVRD"), now=0) is None  # evicted: held


def _data_sm(esm_class: int, tlvs: dict[int, bytes]) -> bytes:
    body = (b"\0" + b"\x01\x01" + b"32470000001\0" + b"\x00\x00" + b"1789\0"
            + bytes([esm_class, 0, 0]) + p.encode_tlvs(tlvs))
    return p.frame(p.CommandId.DATA_SM, 0, 9, body)


def test_receipt_in_a_data_sm() -> None:
    from hub.outputs.smpp.receipts import receipt_from_data_sm

    text = b"id:7 sub:001 dlvrd:001 submit date:2611241200 done date:2611241201 stat:DELIVRD err:000"
    r = receipt_from_data_sm(_data_sm(0x04, {p.TAG_MESSAGE_PAYLOAD: text}))
    assert r is not None and (r.message_id, r.state, r.destination) == ("7", "DELIVRD", "32470000001")
    r = receipt_from_data_sm(_data_sm(0x04, {p.TAG_RECEIPTED_MESSAGE_ID: b"ee6b2800\0",
                                             p.TAG_MESSAGE_STATE: b"\x05"}))
    assert r is not None and (r.message_id, r.state) == ("ee6b2800", "UNDELIV")
    assert receipt_from_data_sm(_data_sm(0x00, {p.TAG_MESSAGE_PAYLOAD: b"hello"})) is None  # not a receipt
    frame = _data_sm(0x04, {p.TAG_MESSAGE_PAYLOAD: text})
    cut = frame[:30]
    with pytest.raises(p.PduError):
        receipt_from_data_sm(struct.pack(">I", len(cut)) + cut[4:])
