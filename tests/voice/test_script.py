"""The voice script, pure: SSML per language, cleaning, shortening to fit, duration and cost."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from lxml import etree

from hub.cap.model import Category, Certainty, Info, Severity, Urgency
from hub.voice.script import (
    VOICE_PRICE_EUR,
    WPM,
    billed_minutes,
    call_cost,
    clean,
    language_of,
    spoken_words,
    voice_script,
)

SSML = "{http://www.w3.org/2001/10/synthesis}"


def info(language: str = "nl-BE", **fields: str | None) -> Info:
    base = Info(categories=(Category.SAFETY,), event="Brand", urgency=Urgency.IMMEDIATE,
                severity=Severity.SEVERE, certainty=Certainty.OBSERVED, language=language,
                sender_name="Politiezone Brussel-Zuid", headline="Brand in de Zuidstraat",
                description="Er woedt een grote brand in een opslagplaats. De rook drijft naar het noorden.",
                instruction="Blijf binnen en sluit ramen en deuren tot 14:30.")
    return replace(base, **fields)  # type: ignore[arg-type]


def parsed(ssml: str) -> etree._Element:
    return etree.fromstring(ssml.encode())


@pytest.mark.parametrize(("lang", "xml_lang", "announce", "repeat"), [
    ("nl-BE", "nl-BE", "Dit is een bericht van", "Ik herhaal."),
    ("fr-BE", "fr-BE", "Ceci est un message de", "Je répète."),
    ("de-BE", "de-BE", "Dies ist eine Nachricht von", "Ich wiederhole."),
    ("en-US", "en-GB", "This is a message from", "I repeat."),
])
def test_ssml_in_each_language(lang: str, xml_lang: str, announce: str, repeat: str) -> None:
    script = voice_script(info(lang))
    root = parsed(script.ssml)
    assert root.tag == f"{SSML}speak"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == xml_lang
    sentences = ["".join(s.itertext()) for s in root.iter(f"{SSML}s")]
    assert sentences[0] == f"{announce} Politiezone Brussel-Zuid."
    # headline, description, instruction; the repeat phrase; the same three again; the end
    assert sentences[1] == "Brand in de Zuidstraat"
    assert sentences.index(repeat) == 4 and sentences[5:8] == sentences[1:4]
    assert len(root.findall(f"{SSML}break")) >= 8
    assert script.language == lang[:2] and not script.shortened


def test_times_and_numbers_are_marked_up() -> None:
    script = voice_script(info(instruction="Bel 0800 14 000 of 112 voor 9.15 uur, niet na 14:30."))
    say_as = {(e.get("interpret-as"), e.text) for e in parsed(script.ssml).iter(f"{SSML}say-as")}
    assert ("time", "14:30") in say_as and ("time", "09:15") in say_as
    assert ("digits", "0800") in say_as and ("cardinal", "112") in say_as


def test_markup_in_the_text_is_escaped() -> None:
    script = voice_script(info(headline="Brand <b>groot</b> & gevaarlijk"))
    # the signs < > go (an engine reads them as "less than"), & stays and is escaped
    assert "Brand b groot /b & gevaarlijk" in "".join(parsed(script.ssml).itertext())
    assert "&amp;" in script.ssml


def test_text_the_engine_cannot_speak_is_cleaned() -> None:
    dirty = "Brand 🔥🚒 in\u200d de\x07 Zuid\ufe0fstraat\ue000 ★ nu\u0000!"
    assert clean(dirty) == "Brand in de Zuidstraat nu!"
    assert clean("Prijs: 5 € of 10% — ça va") == "Prijs: 5 € of 10% — ça va"
    script = voice_script(info(headline=dirty, description="\x1b[31m☢☢☢", instruction=None))
    text = "".join(parsed(script.ssml).itertext())
    assert "Brand in de Zuidstraat nu!" in text
    assert all(ord(c) >= 32 and not (0x2600 <= ord(c) <= 0x1FAFF) for c in text)


def test_without_a_sender_name_the_setting_is_announced() -> None:
    script = voice_script(info(sender_name=None), sender="Gemeente Ukkel")
    assert script.text.startswith("Dit is een bericht van Gemeente Ukkel.")


def test_confirmation_is_asked_when_wanted() -> None:
    assert "Druk op 1" in voice_script(info(), confirm=True).text
    assert "Druk op 1" not in voice_script(info()).text


def test_duration_cost_and_minutes() -> None:
    script = voice_script(info("fr-BE"))
    assert script.words == spoken_words(script.text)
    assert script.seconds == pytest.approx(script.words * 60 / WPM["fr"] + 8 * 0.4, abs=4)
    assert script.minutes == billed_minutes(script.seconds) == 1
    assert script.cost_eur == VOICE_PRICE_EUR
    assert voice_script(info(), price_per_minute=Decimal("0.08")).cost_eur == Decimal("0.0800")


def test_a_long_description_is_shortened_to_fit_at_a_sentence() -> None:
    long = " ".join(f"Zin nummer {i} gaat over de brand en de rook in de buurt." for i in range(60))
    script = voice_script(info(description=long), max_seconds=60)
    assert script.seconds <= 60 and script.shortened == ("description",)
    kept = "".join(parsed(script.ssml).findall(f"{SSML}s")[2].itertext())
    assert kept.endswith("in de buurt.") and "nummer" in kept  # whole sentences, said twice
    assert script.text.count("Blijf binnen") == 2


def test_when_even_the_instruction_does_not_fit_the_repetition_goes() -> None:
    words = " ".join(["woord"] * 400)
    script = voice_script(info(description=words, instruction=words), max_seconds=20)
    assert script.seconds <= 20
    assert "Ik herhaal." not in script.text or script.shortened[:2] == ("description", "instruction")
    assert script.text.startswith("Dit is een bericht van")


def test_billed_minutes_are_started_minutes() -> None:
    assert [billed_minutes(s) for s in (0, 0.1, 59.9, 60, 60.5, 125)] == [0, 1, 1, 1, 2, 3]
    assert call_cost(3) == Decimal("0.1650")


def test_languages() -> None:
    assert [language_of(t) for t in ("nl-BE", "FR", "de-DE", "en-US", "es-ES", None)] == \
        ["nl", "fr", "de", "en", "en", "en"]
    with pytest.raises(ValueError, match="max_seconds"):
        voice_script(info(), max_seconds=0)
