"""Speech with the real engine: espeak-ng + sox to 8 kHz telephony WAV, cached per campaign ×
language; the estimate holds; text the engine cannot speak is cleaned before it gets there."""

from __future__ import annotations

import asyncio
import os
import wave
from pathlib import Path

import pytest

from hub.voice.script import voice_script
from hub.voice.tts import AudioCache, EspeakTts, TtsError, wav_seconds
from tests.voice.test_script import info


@pytest.mark.parametrize("lang", ["nl-BE", "fr-BE", "de-BE", "en-GB"])
async def test_each_language_renders_to_telephony_audio_as_long_as_estimated(
        tmp_path: Path, lang: str) -> None:
    script = voice_script(info(lang))
    out = tmp_path / "a.wav"
    await EspeakTts().render(script.ssml, script.language, out)
    with wave.open(str(out), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    seconds = wav_seconds(out)
    assert script.seconds * 0.7 <= seconds <= script.seconds * 1.3, (seconds, script.seconds)


async def test_audio_is_rendered_once_per_campaign_and_language(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path / "voice", EspeakTts())
    nl, fr = voice_script(info("nl-BE")), voice_script(info("fr-BE"))
    paths = await asyncio.gather(*(cache.audio(7, s.language, s.ssml) for s in (nl, nl, nl, fr, fr)))
    assert cache.renders == 2 and len(set(paths)) == 2
    assert all(p.parent == tmp_path / "voice" / "campaign-7" for p in paths)
    assert await cache.audio(7, "nl", nl.ssml) == paths[0] and cache.renders == 2
    assert await cache.audio(8, "nl", nl.ssml) != paths[0] and cache.renders == 3
    assert not list((tmp_path / "voice").rglob("*.tmp"))
    cache.forget(7)
    assert not (tmp_path / "voice" / "campaign-7").exists()


async def test_text_the_engine_cannot_speak_is_not_spoken(tmp_path: Path) -> None:
    emoji = "🔥🚒☢️🚨" * 5
    dirty = voice_script(info("en-GB", headline=f"Fire {emoji}", description=f"Smoke {emoji}\x07",
                              instruction=f"Stay inside {emoji}"))
    plain = voice_script(info("en-GB", headline="Fire", description="Smoke", instruction="Stay inside"))
    assert dirty.ssml == plain.ssml
    # Unclean, espeak-ng would read the emoji out by name: "fire, fire engine, radioactive..."
    tts = EspeakTts()
    raw = plain.ssml.replace("Fire", f"Fire {emoji}")
    await tts.render(raw, "en", tmp_path / "raw.wav")
    await tts.render(dirty.ssml, "en", tmp_path / "clean.wav")
    assert wav_seconds(tmp_path / "raw.wav") > wav_seconds(tmp_path / "clean.wav") + 5


async def test_a_missing_engine_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="espeak-ng: cannot run '/nonexistent/espeak-ng'"):
        await EspeakTts(espeak="/nonexistent/espeak-ng").render("<speak>x</speak>", "nl", tmp_path / "x.wav")
    with pytest.raises(TtsError, match="sox"):
        await EspeakTts(sox="/nonexistent/sox").render("<speak>x</speak>", "nl", tmp_path / "x.wav")
    cache = AudioCache(tmp_path, EspeakTts(espeak="/nonexistent/espeak-ng"))
    with pytest.raises(TtsError):
        await cache.audio(1, "nl", "<speak>x</speak>")
    assert not list(tmp_path.rglob("*.wav")) and not list(tmp_path.rglob("*.tmp"))


async def test_a_hung_converter_is_stopped_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid_file = tmp_path / "sox.pid"
    sox = tmp_path / "sox"
    sox.write_text(f"#!/bin/sh\necho $$ > {pid_file}\ncat > /dev/null\nexec sleep 30\n")
    sox.chmod(0o755)
    monkeypatch.setattr("hub.voice.tts.TTS_TIMEOUT", 3.0)
    with pytest.raises(TtsError, match="sox: no conversion within"):
        await EspeakTts(sox=str(sox)).render(voice_script(info("en-GB")).ssml, "en", tmp_path / "x.wav")
    with pytest.raises(ProcessLookupError):  # killed, not left behind
        os.kill(int(pid_file.read_text()), 0)
