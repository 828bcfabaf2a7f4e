"""SIP calls through real baresip user agents to real called parties: sipp scenarios for each
outcome, and a recording baresip that must hear exactly the rendered speech."""

from __future__ import annotations

import asyncio
import os
import signal
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hub.voice.baresip import UaError
from hub.voice.calls import CallOutcome
from hub.voice.providers import SipVoiceProvider
from hub.voice.script import VoiceScript, voice_script
from hub.voice.tts import AudioCache, EspeakTts, wav_seconds
from tests.voice.peers import Recorder, Sipp
from tests.voice.test_script import info

NUMBER = "+32477123456"
Provider = Callable[..., Any]


@pytest.fixture
async def speech(tmp_path: Path) -> tuple[VoiceScript, Path]:
    """A script and a few seconds of speech to play (calls here need not last a whole script)."""
    script = voice_script(info(description=None, instruction=None))
    audio = tmp_path / "short.wav"
    await EspeakTts().render('<speak xml:lang="nl-BE">Brand in de Zuidstraat. Blijf binnen.</speak>', "nl",
                             audio)
    return script, audio


@pytest.mark.parametrize(("scenario", "outcome", "code"), [
    ("busy", CallOutcome.BUSY, 486),
    ("unavailable", CallOutcome.NO_ANSWER, 480),
    ("decline", CallOutcome.DECLINED, 603),
])
async def test_a_refused_call_has_its_outcome(sipp: Callable[[str], Sipp], provider_for: Provider,
                                             speech: tuple[VoiceScript, Path], scenario: str,
                                             outcome: CallOutcome, code: int) -> None:
    peer = sipp(scenario)
    provider: SipVoiceProvider = await provider_for(peer.trunk)
    result = await provider.call(NUMBER, *speech)
    assert (result.outcome, result.code, result.seconds) == (outcome, code, 0.0)
    assert peer.invites() == {NUMBER: 1}


async def test_an_answered_call_plays_the_whole_message(sipp: Callable[[str], Sipp], provider_for: Provider,
                                                        speech: tuple[VoiceScript, Path]) -> None:
    peer = sipp("answer")
    provider: SipVoiceProvider = await provider_for(peer.trunk)
    result = await provider.call(NUMBER, *speech)
    length = wav_seconds(speech[1])
    assert result.outcome is CallOutcome.ANSWERED and not result.confirmed
    assert length - 0.5 <= result.seconds <= length + 2.0, (result.seconds, length)
    assert peer.invites() == {NUMBER: 1}


async def test_a_ringing_call_nobody_picks_up_is_cancelled(
        sipp: Callable[[str], Sipp], provider_for: Provider, speech: tuple[VoiceScript, Path]) -> None:
    peer = sipp("ringing")
    provider: SipVoiceProvider = await provider_for(peer.trunk, ring_timeout=1.5)
    result = await provider.call(NUMBER, *speech)
    assert result.outcome is CallOutcome.NO_ANSWER
    for _ in range(100):  # the CANCEL follows the hang-up; sipp logs it a moment later
        if "CANCEL sip:" in peer.messages.read_text():
            break
        await asyncio.sleep(0.05)
    assert "CANCEL sip:" in peer.messages.read_text()


async def test_a_peer_that_never_answers(sipp: Callable[[str], Sipp], provider_for: Provider,
                                         speech: tuple[VoiceScript, Path]) -> None:
    peer = sipp("silent")  # not even 100 Trying
    provider: SipVoiceProvider = await provider_for(peer.trunk, ring_timeout=1.5)
    result = await provider.call(NUMBER, *speech)
    assert result.outcome is CallOutcome.NO_ANSWER
    assert result.reason == "no answer within the ring timeout"
    # the line is free and works again
    assert (await provider.call(NUMBER, *speech)).outcome is CallOutcome.NO_ANSWER


async def test_a_peer_that_hangs_up_after_one_second(sipp: Callable[[str], Sipp], provider_for: Provider,
                                                     speech: tuple[VoiceScript, Path]) -> None:
    peer = sipp("hangup")
    provider: SipVoiceProvider = await provider_for(peer.trunk)
    result = await provider.call(NUMBER, *speech)
    assert result.outcome is CallOutcome.ANSWERED
    assert 0.7 <= result.seconds <= 1.8, result.seconds
    assert wav_seconds(speech[1]) > 2.2  # it did not hear the whole message


@pytest.mark.parametrize("scenario", ["confirm", "confirm_rtp"])  # SIP INFO, RFC 4733 events
async def test_pressing_1_confirms(sipp: Callable[[str], Sipp], provider_for: Provider,
                                   speech: tuple[VoiceScript, Path], scenario: str) -> None:
    peer = sipp(scenario)
    provider: SipVoiceProvider = await provider_for(peer.trunk)
    result = await provider.call(NUMBER, *speech)
    assert result.outcome is CallOutcome.ANSWERED and result.confirmed


@pytest.mark.parametrize("number", ["0477123456", "+32 477 12 34 56", "+0477123456", "sip:x@evil",
                                    "+3247712345678901"])
async def test_a_number_that_is_not_dialable_is_not_called(
        sipp: Callable[[str], Sipp], provider_for: Provider, speech: tuple[VoiceScript, Path],
        number: str) -> None:
    peer = sipp("answer")
    provider: SipVoiceProvider = await provider_for(peer.trunk, lines=1)
    result = await provider.call(number, *speech)
    assert result.outcome is CallOutcome.FAILED and result.reason.startswith("not dialable:")
    assert number not in result.reason  # personal data stays out of reasons and logs
    assert provider.calls == 0 and peer.invites() == {}


async def test_the_user_agent_dying_during_a_call_is_restarted(
        sipp: Callable[[str], Sipp], provider_for: Provider, speech: tuple[VoiceScript, Path]) -> None:
    peer = sipp("answer")
    provider: SipVoiceProvider = await provider_for(peer.trunk, lines=1)
    [line] = provider.lines
    first_pid = line.pid
    call = asyncio.create_task(provider.call(NUMBER, *speech))
    for _ in range(200):
        if line.in_call and peer.invites():
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)  # answered, playing
    assert first_pid is not None
    os.kill(first_pid, signal.SIGKILL)
    result = await call
    # answered before it died: reported as such and not called again
    assert result.outcome is CallOutcome.ANSWERED and "user agent stopped" in result.reason
    assert provider.restarts == 1 and line.pid != first_pid and line.alive
    assert (await provider.call("+32478000000", *speech)).outcome is CallOutcome.ANSWERED
    assert peer.invites() == {NUMBER: 1, "+32478000000": 1}


def _samples(path: Path) -> np.ndarray[Any, np.dtype[np.float64]]:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def correlation(heard: Path, said: Path) -> float:
    """Pearson correlation of what was said with the same stretch of what was heard, at the
    lag where they line up best (found by FFT cross-correlation)."""
    rec, ref = _samples(heard), _samples(said)
    n = 1 << (len(rec) + len(ref)).bit_length()
    cross = np.fft.irfft(np.fft.rfft(rec, n) * np.conj(np.fft.rfft(ref, n)), n)
    lag = int(np.argmax(cross[:len(rec)]))
    seg = rec[lag:lag + len(ref)]
    ref = ref[:len(seg)]
    return float(np.corrcoef(seg, ref)[0, 1])


@pytest.mark.parametrize("lang", ["fr-BE", "nl-BE", "de-BE"])
async def test_the_called_party_hears_the_rendered_speech(
        tmp_path: Path, recorder: Callable[[list[str]], Recorder], provider_for: Provider, lang: str) -> None:
    script = voice_script(info(lang, headline="Alerte incendie" if lang == "fr-BE" else "Brand",
                               description=None, instruction=None))
    audio = await AudioCache(tmp_path / "voice", EspeakTts()).audio(1, script.language, script.ssml)
    peer = recorder([NUMBER])
    provider: SipVoiceProvider = await provider_for(peer.trunk)
    result = await provider.call(NUMBER, script, audio)
    assert result.outcome is CallOutcome.ANSWERED
    [heard] = peer.heard()
    assert correlation(heard, audio) > 0.95


async def test_lines_register_at_the_registrar_with_digest(
        sipp: Callable[[str], Sipp], provider_for: Provider, speech: tuple[VoiceScript, Path]) -> None:
    registrar, trunk = sipp("registrar"), sipp("answer")
    provider: SipVoiceProvider = await provider_for(trunk.trunk, lines=1, registrar=registrar.trunk,
                                                    username="hub", password="s3cret")
    log = registrar.messages.read_text()
    assert "Authorization: Digest" in log and 'username="hub"' in log
    assert (await provider.call(NUMBER, *speech)).outcome is CallOutcome.ANSWERED
    invite = trunk.messages.read_text()
    assert "From: <sip:+32477777755@" in invite  # the caller identity, in E.164


async def test_a_refused_registration_is_an_error_naming_the_registrar(
        sipp: Callable[[str], Sipp], provider_for: Provider) -> None:
    registrar = sipp("registrar")
    with pytest.raises(UaError, match=f"line 0: not registered at {registrar.trunk}"):
        await provider_for("127.0.0.1:9", lines=1, registrar=registrar.trunk, username="hub",
                           password="wrong")


async def test_calls_go_through_the_outbound_proxy(sipp: Callable[[str], Sipp], provider_for: Provider,
                                                    speech: tuple[VoiceScript, Path]) -> None:
    proxy = sipp("busy")
    provider: SipVoiceProvider = await provider_for("trunk.invalid", lines=1, outbound_proxy=proxy.trunk)
    result = await provider.call(NUMBER, *speech)
    assert (result.outcome, result.code) == (CallOutcome.BUSY, 486)
    assert proxy.invites() == {NUMBER: 1}
    assert f"INVITE sip:{NUMBER}@trunk.invalid;user=phone" in proxy.messages.read_text()


async def test_a_gate_that_says_no_dials_nobody(sipp: Callable[[str], Sipp], provider_for: Provider,
                                                speech: tuple[VoiceScript, Path]) -> None:
    peer = sipp("answer")
    provider: SipVoiceProvider = await provider_for(peer.trunk, lines=1)
    opened: list[bool] = []

    async def closed() -> bool:
        opened.append(False)
        return False

    result = await provider.call(NUMBER, *speech, gate=closed)
    assert result.outcome is CallOutcome.CANCELLED and opened == [False]
    assert provider.calls == 0 and peer.invites() == {}
    assert (await provider.call(NUMBER, *speech)).outcome is CallOutcome.ANSWERED  # the line is free


async def test_a_call_whose_caller_stops_waiting_is_hung_up(
        sipp: Callable[[str], Sipp], provider_for: Provider, speech: tuple[VoiceScript, Path]) -> None:
    # The worker's call task cancelled (a failed batch, a stop): the call must end, not ring on
    # (or play on) while the line is handed to the next number.
    peer = sipp("ringing")
    provider: SipVoiceProvider = await provider_for(peer.trunk, ring_timeout=30)
    task = asyncio.create_task(provider.call(NUMBER, *speech))
    for _ in range(200):
        if peer.invites():
            break
        await asyncio.sleep(0.05)
    assert peer.invites() == {NUMBER: 1}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(60):
        if "CANCEL sip:" in peer.messages.read_text():
            break
        await asyncio.sleep(0.05)
    assert "CANCEL sip:" in peer.messages.read_text()
    assert not provider.lines[0].in_call
