"""The SMS part of a preview (pure): parts, encoding, what forces UCS-2 and the rewrite."""

from __future__ import annotations

from hub.campaigns.preview import sms_preview, voice_preview
from hub.cap.model import Category, Certainty, Info, Severity, Urgency
from hub.voice.script import voice_script


def info(instruction: str, language: str = "fr-BE") -> Info:
    return Info((Category.SAFETY,), "Feu", Urgency.IMMEDIATE, Severity.SEVERE, Certainty.OBSERVED,
                language=language, headline="Incendie", instruction=instruction)


def test_gsm7_text_needs_no_rewrite() -> None:
    _, out = sms_preview(info("Restez à l'intérieur."), prefix="BE-Alert:", max_parts=3, policy="ucs2")
    assert (out["encoding"], out["parts"], out["ucs2Characters"], out["gsm7Rewrite"]) == ("gsm7", 1, [], None)


def test_the_characters_that_force_ucs2_and_the_rewrite_that_avoids_them() -> None:
    text = "Fermez portes et fenêtres, c’est sûr. " * 3  # 133 characters in all: 2 UCS-2 parts
    sms, out = sms_preview(info(text), prefix="BE-Alert:", max_parts=3, policy="ucs2")
    assert out["encoding"] == "ucs2" and out["parts"] == sms.part_count == 2 and out["characters"] == 133
    assert out["ucs2Characters"] == ["ê", "û", "’"]
    rewrite = out["gsm7Rewrite"]
    assert rewrite["parts"] == 1 and "fenetres, c'est sur." in rewrite["text"]
    assert rewrite["replacements"] == [["ê", "e"], ["’", "'"], ["û", "u"]]


def test_an_emoji_cannot_be_rewritten() -> None:
    _, out = sms_preview(info("Restez chez vous 🏠"), prefix="BE-Alert:", max_parts=3, policy="ucs2")
    assert out["encoding"] == "ucs2" and out["ucs2Characters"] == ["🏠"]
    assert out["gsm7Rewrite"]["text"] is None and out["gsm7Rewrite"]["impossible"] == ["🏠"]


def test_downgrade_policy_already_sends_gsm7() -> None:
    _, out = sms_preview(info("Fermez les fenêtres."), prefix="BE-Alert:", max_parts=3, policy="downgrade")
    assert out["encoding"] == "gsm7" and out["replacements"] == [["ê", "e"]] and out["gsm7Rewrite"] is None


def test_a_call_is_previewed_from_its_script() -> None:
    """The preview's call length and minutes are the voice script's own, so the estimated cost
    is what a call played to the end is billed."""
    long = info("Restez à l'intérieur et fermez portes et fenêtres. " * 40)
    out = voice_preview(voice_script(long, max_seconds=60.0))
    assert out["language"] == "fr" and 0 < out["seconds"] <= 60.0 and out["minutes"] == 1
    assert "instruction" in out["shortened"]
    short = voice_preview(voice_script(info("Restez à l'intérieur.")))
    assert short["minutes"] == 1 and short["seconds"] < out["seconds"] and short["shortened"] == []
