"""The receipt fast paths held to the general ones: a receipt comes for every SMS sent, so
``receipt_from_frame`` reads a deliver_sm frame without building the PDU and ``parse_text``
reads Appendix B's usual form with one regular expression; both must give exactly what the
general readings give (``parse_receipt(decode(frame))``, the key search), or fall back to them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.outputs.smpp import pdu as p
from hub.outputs.smpp.receipts import _parse_text_general, parse_receipt, parse_text, receipt_from_frame

token = st.text(st.characters(codec="latin-1", exclude_categories=("Cc",)), max_size=12)
value = st.one_of(st.from_regex(r"[0-9A-Za-z]{0,10}", fullmatch=True), token)


@st.composite
def receipt_texts(draw: st.DrawFn) -> str:
    """Appendix B's form, and variants of it that the regular expression must leave alone or
    read alike: other spacing, upper-case keys, keys missing, odd values, a text with keys."""
    fields = [("id", draw(value)), ("sub", draw(value)), ("dlvrd", draw(value)),
              ("submit date", draw(value)), ("done date", draw(value)), ("stat", draw(value)),
              ("err", draw(value))]
    if draw(st.booleans()):
        fields = [f for f in fields if draw(st.integers(0, 6))]
    sep = draw(st.sampled_from([" ", " ", " ", "  ", "\t"]))
    upper = draw(st.integers(0, 8)) == 0
    text = sep.join(f"{k.upper() if upper else k}:{v}" for k, v in fields)
    if draw(st.booleans()):
        text += f"{sep}text:{draw(st.sampled_from(['', 'id:9 stat:X', 'Alerte ', draw(token)]))}"
    return text + draw(st.sampled_from(["", "", " ", "\n"]))


@settings(max_examples=400, deadline=None)
@given(receipt_texts())
def test_parse_text_reads_as_the_general_reading(text: str) -> None:
    assert parse_text(text) == _parse_text_general(text)


def test_the_usual_form_takes_the_regular_expression() -> None:
    usual = ("id:0A1B2C sub:001 dlvrd:001 submit date:2406011200 done date:2406011201 "
             "stat:DELIVRD err:000 text:Alerte inondation")
    from hub.outputs.smpp.receipts import _STANDARD

    assert _STANDARD.match(usual) is not None
    assert parse_text(usual) == _parse_text_general(usual)


tlv_values = st.binary(max_size=12)
tlvs = st.dictionaries(st.sampled_from([p.TAG_RECEIPTED_MESSAGE_ID, p.TAG_MESSAGE_STATE,
                                        p.TAG_NETWORK_ERROR_CODE, p.TAG_MESSAGE_PAYLOAD, 0x1400]),
                       tlv_values, max_size=4)
address = st.text(st.characters(codec="ascii", exclude_characters="\0"), max_size=20)
cstr = st.text(st.characters(codec="ascii", exclude_characters="\0"), max_size=16)


@st.composite
def deliver_sms(draw: st.DrawFn) -> p.DeliverSm:
    return p.DeliverSm(
        sequence_number=draw(st.integers(1, 2**31 - 1)), service_type=draw(st.sampled_from(["", "CMT"])),
        source_addr_ton=draw(st.integers(0, 255)), source_addr_npi=draw(st.integers(0, 255)),
        source_addr=draw(address), dest_addr_ton=draw(st.integers(0, 255)),
        dest_addr_npi=draw(st.integers(0, 255)), destination_addr=draw(address),
        esm_class=draw(st.sampled_from([0x04, 0x00, 0x44, 0x08, 0x24])),
        protocol_id=draw(st.integers(0, 255)),
        priority_flag=draw(st.integers(0, 3)), schedule_delivery_time=draw(cstr), validity_period=draw(cstr),
        registered_delivery=draw(st.integers(0, 255)), data_coding=draw(st.sampled_from([0, 3, 8])),
        short_message=draw(st.one_of(st.binary(max_size=40), receipt_texts().map(
            lambda t: t.encode("latin-1"))))[:254],
        tlvs=draw(tlvs),
    )


@settings(max_examples=400, deadline=None)
@given(deliver_sms())
def test_receipt_from_frame_is_parse_receipt_of_decode(pdu: p.DeliverSm) -> None:
    frame = p.encode(pdu)
    decoded = p.decode(frame)
    assert isinstance(decoded, p.DeliverSm)
    assert receipt_from_frame(frame) == parse_receipt(decoded)


@settings(max_examples=300, deadline=None)
@given(deliver_sms(), st.data())
def test_a_damaged_frame_fails_as_decode_fails(pdu: p.DeliverSm, data: st.DataObject) -> None:
    """Cut or with its length changed: ``receipt_from_frame`` raises PduError exactly when
    ``decode`` does, and otherwise agrees with it."""
    frame = p.encode(pdu)
    cut = data.draw(st.integers(0, len(frame)))
    damaged = frame[:cut]
    if data.draw(st.booleans()) and len(damaged) >= 4:  # the header's length says the cut length
        damaged = len(damaged).to_bytes(4, "big") + damaged[4:]
    try:
        decoded = p.decode(damaged)
    except p.PduError:
        with pytest.raises(p.PduError):
            receipt_from_frame(damaged)
        return
    if not isinstance(decoded, p.DeliverSm):
        with pytest.raises(p.PduError):
            receipt_from_frame(damaged)
        return
    assert receipt_from_frame(damaged) == parse_receipt(decoded)
