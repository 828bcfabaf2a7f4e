"""GSM 03.38 and UCS-2: encoding, splitting into parts, downgrading, on real fr/nl/de texts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.outputs.gsm import (
    ESC,
    decode_gsm7,
    downgrade,
    encode_gsm7,
    gsm7_length,
    is_gsm7,
    pack_septets,
    split_gsm7,
    split_ucs2,
    ucs2_units,
    unpack_septets,
)

FR = ("Inondation à Liège: montez à l'étage, coupez l'électricité et le gaz. "
      "Ne prenez pas votre voiture. Infos: https://crisiscenter.be/fr")
NL = ("Overstroming in Gent: blijf binnen, ga naar een hogere verdieping en vermijd de kelder. "
      "Volg de instructies van de hulpdiensten.")
DE = ("Hochwasser in Eupen: Begeben Sie sich in höhere Stockwerke, schalten Sie den Strom ab. "
      "Straßen gesperrt, Brücke über die Weser geschlossen. Müll nicht draußen lassen, Gefahr!")
FR_ACCENTS = ("Fuite de gaz à Namur : fenêtres fermées, ne fumez pas, évacuez le bâtiment. "
              "Reçu l’ordre ? Restez à l’écoute, île du Bôme comprise.")
NL_ACCENTS = ("Chemisch incident in Zeebrugge: sluit ramen. Coördinatie door de gouverneur; "
              "geïnformeerd blijven, ideeën welkom.")


# --- the table ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", [FR, NL, DE])
def test_common_fr_nl_de_texts_are_gsm7(text: str) -> None:
    septets = encode_gsm7(text)
    assert septets is not None
    assert len(septets) == len(text)  # no extension characters in these
    assert decode_gsm7(septets) == text


def test_known_code_points() -> None:
    assert encode_gsm7("@£$¥èéùìòÇ") == bytes(range(10))
    assert encode_gsm7("\u0394_ßÉ") == bytes([0x10, 0x11, 0x1E, 0x1F])
    assert encode_gsm7("¤¡Ä§¿äà") == bytes([0x24, 0x40, 0x5B, 0x5F, 0x60, 0x7B, 0x7F])
    assert encode_gsm7("€[]{}|\\^~") == bytes([
        ESC, 0x65, ESC, 0x3C, ESC, 0x3E, ESC, 0x28, ESC, 0x29, ESC, 0x40, ESC, 0x2F, ESC, 0x14, ESC, 0x3D,
    ])


@pytest.mark.parametrize("ch", list("êâîôûçëïÿœŒ’‘“”–—…`\t") + ["\u00a0", "🚨", "\x1b", "\u2126", "ё"])
def test_characters_outside_the_table(ch: str) -> None:
    assert encode_gsm7(f"a{ch}b") is None
    assert not is_gsm7(ch)
    assert gsm7_length(ch) is None


def test_capital_c_cedilla_is_in_the_table_small_is_not() -> None:
    # 3GPP TS 23.038 draws Ç at 0x09 (Unicode's GSM0338.TXT says ç): we follow 3GPP.
    assert encode_gsm7("Ç") == b"\x09"
    assert encode_gsm7("ç") is None
    assert decode_gsm7(b"\x09") == "Ç"


def test_extension_characters_count_two_septets() -> None:
    text = "Coût estimé [provisoire]: 20 € par ménage"
    assert gsm7_length(text.replace("û", "u")) == len(text) + 3
    t = "Kosten [vorläufig]: 20 € pro Haushalt {siehe Anhang} | Stand ~ 12 Uhr"
    assert gsm7_length(t) == len(t) + 7  # [ ] € { } | ~
    assert decode_gsm7(encode_gsm7(t) or b"") == t


def test_decode_odd_escapes() -> None:
    assert decode_gsm7(bytes([ESC, 0x41])) == "A"  # undefined extension: the basic character
    assert decode_gsm7(b"ab" + bytes([ESC])) == "ab"  # a lone trailing ESC is dropped


def test_pack_known_vector() -> None:
    # "hellohello", the classic example of 3GPP TS 23.038 packing
    assert pack_septets(encode_gsm7("hellohello") or b"").hex() == "e8329bfd4697d9ec37"
    assert pack_septets(b"") == b""


@given(st.binary(max_size=200).map(lambda b: bytes(x & 0x7F for x in b)), st.integers(0, 6))
def test_pack_round_trip(septets: bytes, fill: int) -> None:
    packed = pack_septets(septets, fill)
    assert len(packed) == (len(septets) * 7 + fill + 7) // 8
    assert unpack_septets(packed, len(septets), fill) == septets


def test_pack_refuses_bad_fill() -> None:
    with pytest.raises(ValueError):
        pack_septets(b"a", 7)


# --- GSM-7 parts -------------------------------------------------------------------------


def test_160_septets_is_one_part_161_is_two() -> None:
    assert [len(p) for p in split_gsm7("x" * 160)] == [160]
    assert [len(p) for p in split_gsm7("x" * 161)] == [153, 8]
    assert [len(p) for p in split_gsm7("x" * 306)] == [153, 153]
    assert [len(p) for p in split_gsm7("x" * 307)] == [153, 153, 1]


def test_extension_character_pushes_over_160() -> None:
    assert [len(p) for p in split_gsm7("x" * 158 + "€")] == [160]
    assert [len(p) for p in split_gsm7("x" * 159 + "€")] == [153, 8]


def test_escape_pair_is_never_split_at_a_part_boundary() -> None:
    text = "a" * 152 + "€" + "b" * 20  # € would take septets 153 and 154
    parts = split_gsm7(text)
    assert [len(p) for p in parts] == [152, 22]
    assert parts[0][-1] != ESC
    assert parts[1][:2] == bytes([ESC, 0x65])
    assert "".join(decode_gsm7(p) for p in parts) == text


def test_escape_pair_exactly_filling_a_part_stays() -> None:
    parts = split_gsm7("a" * 151 + "[" + "b" * 20)
    assert [len(p) for p in parts] == [153, 20]
    assert parts[0][-2:] == bytes([ESC, 0x3C])


def test_split_gsm7_refuses_non_gsm() -> None:
    with pytest.raises(ValueError):
        split_gsm7("fenêtre")


def test_empty_text_is_one_empty_part() -> None:
    assert split_gsm7("") == [b""]
    assert split_ucs2("") == [b""]


_GSM_CHARS = st.sampled_from(list("abcXYZ 019.,:éèàüöäßÇÉ€[]{}|^~\\\n"))


@given(st.text(_GSM_CHARS, max_size=700))
def test_gsm7_parts_property(text: str) -> None:
    parts = split_gsm7(text)
    total = gsm7_length(text)
    assert total is not None
    assert b"".join(parts) == encode_gsm7(text)
    limit = 160 if len(parts) == 1 else 153
    assert all(len(p) <= limit for p in parts)
    assert all(not p.endswith(bytes([ESC])) or p.endswith(bytes([ESC, ESC])) for p in parts)
    assert "".join(decode_gsm7(p) for p in parts) == text


# --- UCS-2 parts -------------------------------------------------------------------------


def test_70_units_is_one_part_71_is_two() -> None:
    assert [len(p) // 2 for p in split_ucs2("ê" * 70)] == [70]
    assert [len(p) // 2 for p in split_ucs2("ê" * 71)] == [67, 4]


def test_ucs2_is_utf16_big_endian() -> None:
    assert split_ucs2("ê🚨") == ["ê🚨".encode("utf-16-be")]
    assert split_ucs2("ê")[0] == b"\x00\xea"


def test_emoji_count_two_units() -> None:
    assert ucs2_units("🚨 Alerte") == 9
    assert [len(p) // 2 for p in split_ucs2("🚨" * 35)] == [70]
    assert [len(p) // 2 for p in split_ucs2("🚨" * 36)] == [66, 6]  # 67 would split a pair


def test_surrogate_pair_is_never_split() -> None:
    text = "ê" * 66 + "🚨" + "ô" * 10
    parts = split_ucs2(text)
    assert [len(p) // 2 for p in parts] == [66, 12]
    assert parts[1].decode("utf-16-be").startswith("🚨")
    assert "".join(p.decode("utf-16-be") for p in parts) == text


def test_skin_tone_stays_with_its_base() -> None:
    text = "ê" * 65 + "👍🏽" + "ô" * 10  # 👍 would fit in part 1 but not its modifier
    parts = split_ucs2(text)
    assert [len(p) // 2 for p in parts] == [65, 14]
    assert parts[1].decode("utf-16-be").startswith("👍🏽")


def test_zwj_sequence_stays_together() -> None:
    family = "👩\u200d👩\u200d👧"  # 8 units
    parts = split_ucs2("x" * 62 + family + "y" * 10)
    assert parts[1].decode("utf-16-be").startswith(family)


def test_pathological_cluster_still_splits_between_code_points() -> None:
    text = "e" + "\u0301" * 200  # one base, 200 combining marks
    parts = split_ucs2(text)
    assert all(len(p) // 2 <= 67 for p in parts)
    assert "".join(p.decode("utf-16-be") for p in parts) == text


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=300))
def test_ucs2_parts_property(text: str) -> None:
    parts = split_ucs2(text)
    limit = 140 if len(parts) == 1 else 134
    assert all(len(p) <= limit for p in parts)
    # every part decodes on its own: no surrogate pair was split
    assert "".join(p.decode("utf-16-be") for p in parts) == text


# --- downgrade ---------------------------------------------------------------------------


def test_downgrade_french() -> None:
    text, repl = downgrade(FR_ACCENTS)
    assert text == ("Fuite de gaz à Namur : fenetres fermées, ne fumez pas, évacuez le batiment. "
                    "Recu l'ordre ? Restez à l'écoute, ile du Bome comprise.")
    assert repl == [("ê", "e"), ("â", "a"), ("ç", "c"), ("’", "'"), ("î", "i"), ("ô", "o")]
    assert is_gsm7(text)


def test_downgrade_dutch() -> None:
    text, repl = downgrade(NL_ACCENTS)
    assert "Coördinatie" in text  # ö is in the table: kept
    assert "geinformeerd" in text and "ideeen" in text
    assert repl == [("ï", "i"), ("ë", "e")]
    assert is_gsm7(text)


def test_downgrade_keeps_letters_the_table_has() -> None:
    assert downgrade(DE) == (DE, [])
    assert downgrade("Ça déborde à Huy") == ("Ça déborde à Huy", [])


@pytest.mark.parametrize(("src", "dst"), [
    ("œuvre", "oeuvre"), ("Œuf", "OEuf"), ("L’Haÿ", "L'Hay"), ("“Attention”", '"Attention"'),
    ("„Achtung“", '"Achtung"'), ("« Alerte »", '" Alerte "'), ("10–12 h", "10-12 h"),
    ("pluie — vent", "pluie - vent"), ("Restez…", "Restez..."), ("12\u00a0km", "12 km"),
    ("Attention\u202f!", "Attention !"), ("Île", "Ile"), ("Être", "Etre"), ("Ôter", "Oter"),
    ("Ûr", "Ur"), ("ná", "na"), ("ÿ", "y"), ("Dvořák", "Dvorak"),
])
def test_downgrade_pairs(src: str, dst: str) -> None:
    out, repl = downgrade(src)
    assert out == dst
    assert repl


def test_downgrade_leaves_what_has_no_gsm_form() -> None:
    text, repl = downgrade("🚨 Crue: montez à l’étage 👍🏽 Ελλάδα")
    assert text == "🚨 Crue: montez à l'étage 👍🏽 Ελλάδα"
    assert repl == [("’", "'")]
    assert not is_gsm7(text)


def test_downgrade_reports_each_replacement_once() -> None:
    _, repl = downgrade("fenêtre, fenêtres, tête")
    assert repl == [("ê", "e")]
