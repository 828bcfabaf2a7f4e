"""The SMS text of an <info>: composition, encoding choice, policy, fitting in max_parts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.cap.model import Category, Certainty, Info, Severity, Urgency
from hub.outputs.gsm import decode_gsm7, is_gsm7
from hub.outputs.sms_text import SmsEncoding, sms_cost, sms_text

PREFIX = "BE-Alert:"
WEB_FR = "https://crisiscenter.be/fr/inondations-liege"


def info(**kw: Any) -> Info:
    base: dict[str, Any] = {
        "categories": (Category.MET,), "event": "Inondation", "urgency": Urgency.IMMEDIATE,
        "severity": Severity.SEVERE, "certainty": Certainty.OBSERVED, "language": "fr-BE",
    }
    base.update(kw)
    return Info(**base)


FR = info(
    headline="Inondation à Liège",
    instruction="Montez à l'étage, coupez l'électricité et le gaz. Ne prenez pas votre voiture.",
    web=WEB_FR,
)
FR_CURLY = info(
    headline="Inondation à Liège",
    instruction="Montez à l’étage, coupez l’électricité. Fenêtres fermées, reçu ? Restez à l’écoute.",
    web=WEB_FR,
)
NL = info(
    language="nl-BE", event="Overstroming", headline="Overstroming in Gent",
    instruction="Blijf binnen, ga naar een hogere verdieping en vermijd de kelder.\n"
                "Volg de instructies van de hulpdiensten.",
    web="https://crisiscentrum.be/nl",
)
DE = info(
    language="de-BE", event="Hochwasser", headline="Hochwasser in Eupen!",
    instruction="Begeben Sie sich in höhere Stockwerke. Straßen gesperrt, Brücke über die Weser zu.",
    web="https://krisenzentrum.be/de",
)

LONG_FR = (
    "Montez à l'étage, coupez l'électricité et le gaz. Ne prenez pas votre voiture et ne traversez "
    "pas les zones inondées, ni en voiture ni à pied. Écoutez la radio locale et suivez les consignes des "
    "services de secours. Une ligne d'information est ouverte au 1771. Aidez vos voisins malades ou "
    "isolés si vous pouvez le faire sans danger. Ne descendez pas dans les caves ni les parkings "
    "souterrains. Gardez votre téléphone chargé et limitez vos appels aux urgences. "
) * 2


def _decoded(sms: Any) -> str:
    if sms.encoding is SmsEncoding.GSM7:
        return "".join(decode_gsm7(p) for p in sms.parts)
    return "".join(p.decode("utf-16-be") for p in sms.parts)


@pytest.mark.parametrize(("item", "expected"), [
    (FR, "BE-Alert: Inondation à Liège. Montez à l'étage, coupez l'électricité et le gaz. "
         "Ne prenez pas votre voiture. " + WEB_FR),
    (NL, "BE-Alert: Overstroming in Gent. Blijf binnen, ga naar een hogere verdieping en vermijd "
         "de kelder. Volg de instructies van de hulpdiensten. https://crisiscentrum.be/nl"),
    (DE, "BE-Alert: Hochwasser in Eupen! Begeben Sie sich in höhere Stockwerke. Straßen gesperrt, "
         "Brücke über die Weser zu. https://krisenzentrum.be/de"),
])
def test_plain_fr_nl_de_go_in_gsm7(item: Info, expected: str) -> None:
    sms = sms_text(item, prefix=PREFIX)
    assert sms.text == expected
    assert sms.encoding is SmsEncoding.GSM7 and sms.data_coding == 0
    assert sms.replacements == () and not sms.truncated
    assert _decoded(sms) == sms.text
    assert sms.part_count == (1 if len(expected) <= 160 else 2)


def test_curly_apostrophe_forces_ucs2_by_default() -> None:
    sms = sms_text(FR_CURLY, prefix=PREFIX)
    assert sms.encoding is SmsEncoding.UCS2 and sms.data_coding == 8
    assert "l’étage" in sms.text and "Fenêtres" in sms.text
    assert sms.part_count == 3  # 147 characters: 3 UCS-2 parts, where GSM-7 would need 1
    assert _decoded(sms) == sms.text


def test_downgrade_policy_rewrites_and_reports() -> None:
    sms = sms_text(FR_CURLY, prefix=PREFIX, policy="downgrade")
    assert sms.encoding is SmsEncoding.GSM7
    assert sms.text == ("BE-Alert: Inondation à Liège. Montez à l'étage, coupez l'électricité. "
                        "Fenetres fermées, recu ? Restez à l'écoute. " + WEB_FR)
    assert sms.replacements == (("’", "'"), ("ê", "e"), ("ç", "c"))
    assert sms.part_count == 1
    assert sms_cost(sms.part_count) == Decimal("0.055")


def test_downgrade_that_cannot_reach_gsm7_keeps_the_original_letters() -> None:
    item = info(headline="🚨 Inondation à Liège", instruction="Montez à l’étage.", web=WEB_FR)
    sms = sms_text(item, prefix=PREFIX, policy="downgrade")
    assert sms.encoding is SmsEncoding.UCS2
    assert "l’étage" in sms.text and sms.replacements == ()


def test_extension_characters_cost_two_septets_in_the_text() -> None:
    item = info(headline="Coupure d'eau [Seraing]",
                instruction="Eau en bouteille: 2 € le pack {distribution}.", web=None)
    sms = sms_text(item, prefix=PREFIX)
    assert sms.encoding is SmsEncoding.GSM7
    assert len(sms.parts[0]) == len(sms.text) + 5


def test_emoji_and_surrogates_go_in_ucs2() -> None:
    item = info(headline="🚨 Alerte tempête", instruction="Restez chez vous 👍🏽", web=None)
    sms = sms_text(item, prefix=PREFIX)
    assert sms.encoding is SmsEncoding.UCS2
    assert sms.parts == (sms.text.encode("utf-16-be"),)


def test_headline_falls_back_to_event_and_instruction_to_description() -> None:
    item = info(headline=None, instruction=None, description="Niveau d'eau en hausse.", web=None)
    assert sms_text(item, prefix=PREFIX).text == "BE-Alert: Inondation. Niveau d'eau en hausse."
    assert sms_text(item, prefix="").text == "Inondation. Niveau d'eau en hausse."


def test_whitespace_and_nfc_are_normalised() -> None:
    item = info(headline="Crue  de la\u00a0Meuse", instruction="Evacue\u0301z\n\nle quai.", web=None)
    sms = sms_text(item, prefix=PREFIX)
    assert sms.text == "BE-Alert: Crue de la Meuse. Evacuéz le quai."
    assert sms.encoding is SmsEncoding.GSM7


@pytest.mark.parametrize("max_parts", [1, 2, 3, 4])
def test_long_gsm7_text_is_cut_at_a_word_keeping_the_link(max_parts: int) -> None:
    item = info(headline="Inondation à Liège", instruction=LONG_FR, web=WEB_FR)
    sms = sms_text(item, prefix=PREFIX, max_parts=max_parts)
    assert sms.encoding is SmsEncoding.GSM7 and sms.truncated
    assert sms.part_count <= max_parts
    assert sms.text.startswith("BE-Alert: Inondation à Liège.")
    assert sms.text.endswith("... " + WEB_FR)
    full = "BE-Alert: Inondation à Liège. " + " ".join(LONG_FR.split())
    body = sms.text.removesuffix("... " + WEB_FR)
    assert full.startswith(body + " ")  # cut at a word boundary
    # one more word would not have fitted
    more = full[: full.index(" ", len(body) + 1)] + "... " + WEB_FR
    limit = 160 if max_parts == 1 else 153 * max_parts
    assert len(sms.text) <= limit < len(more)


def test_cut_never_ends_mid_word_nor_on_a_comma() -> None:
    item = info(headline="Inondation à Liège", instruction=LONG_FR, web=WEB_FR)
    sms = sms_text(item, prefix=PREFIX, max_parts=1)
    body = sms.text.removesuffix("... " + WEB_FR)
    assert (body + " ") in ("BE-Alert: Inondation à Liège. " + LONG_FR)
    assert not body.endswith((",", ";", ":"))


def test_long_ucs2_text_uses_the_unicode_ellipsis() -> None:
    item = info(headline="Inondation à Liège", instruction="Fenêtres fermées. " + LONG_FR, web=WEB_FR)
    sms = sms_text(item, prefix=PREFIX, max_parts=3)
    assert sms.encoding is SmsEncoding.UCS2 and sms.truncated
    assert sms.part_count == 3
    assert sms.text.endswith("… " + WEB_FR)
    assert len(sms.text) <= 3 * 67


def test_cutting_off_the_only_non_gsm_character_returns_to_gsm7() -> None:
    item = info(headline="Inondation à Liège", instruction=LONG_FR + " Fenêtres fermées.", web=WEB_FR)
    sms = sms_text(item, prefix=PREFIX, max_parts=2)
    assert sms.encoding is SmsEncoding.GSM7  # the ê was past the cut
    assert sms.part_count == 2 and len(sms.text) > 2 * 67


def test_downgrade_report_only_lists_what_remains_after_the_cut() -> None:
    item = info(headline="Inondation à Liège", instruction="L’eau monte. " + LONG_FR + " Fenêtres fermées.",
                web=WEB_FR)
    sms = sms_text(item, prefix=PREFIX, max_parts=1, policy="downgrade")
    assert sms.encoding is SmsEncoding.GSM7 and sms.part_count == 1
    assert sms.replacements == (("’", "'"),)


def test_link_is_dropped_when_not_one_word_fits_beside_it() -> None:
    web = "https://crisiscenter.be/fr/" + "x" * 120
    item = info(headline="Inondation à Liège", instruction=LONG_FR, web=web)
    sms = sms_text(item, prefix=PREFIX, max_parts=1)
    assert web not in sms.text
    assert sms.text.startswith("BE-Alert: Inondation à Liège.") and sms.text.endswith("...")
    assert sms.part_count == 1


def test_a_single_huge_word_is_cut_by_characters() -> None:
    item = info(headline="x" * 500, instruction=None, web=None)
    sms = sms_text(item, prefix="", max_parts=1)
    assert sms.text == "x" * 157 + "..."
    assert sms.part_count == 1


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        sms_text(FR, prefix=PREFIX, max_parts=0)
    with pytest.raises(ValueError):
        sms_text(FR, prefix=PREFIX, policy="latin1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sms_cost(-1)


def test_cost() -> None:
    assert sms_cost(3) == Decimal("0.165")
    assert sms_cost(1_700_000) == Decimal("93500.000")
    assert sms_cost(2, price_eur="0.07") == Decimal("0.14")


_WORDS = st.sampled_from(
    ["Inondation", "à", "Liège", "fenêtre", "l’eau", "€", "[zone]", "🚨", "👍🏽", "Straße", "ïs", "coupez",
     "https://x.be", "œuvre", "…", "ok", "n’y", "Ελλάδα"])


@settings(max_examples=150, deadline=None)
@given(st.lists(_WORDS, max_size=120), st.lists(_WORDS, max_size=60), st.integers(1, 4),
       st.sampled_from(["ucs2", "downgrade"]))
def test_sms_always_fits(head: list[str], instr: list[str], max_parts: int, policy: str) -> None:
    item = info(headline=" ".join(head) or None, instruction=" ".join(instr) or None, web=WEB_FR)
    sms = sms_text(item, prefix=PREFIX, max_parts=max_parts, policy=policy)  # type: ignore[arg-type]
    assert 1 <= sms.part_count <= max_parts
    assert _decoded(sms) == sms.text
    assert (sms.encoding is SmsEncoding.GSM7) == is_gsm7(sms.text)
    if policy == "ucs2":
        assert sms.replacements == ()
