"""Speech: SSML → 8 kHz mono 16-bit telephony WAV, behind a small interface, cached on disk.

:class:`Tts` is the seam: one method that writes the audio of an SSML script to a file.
:class:`EspeakTts` is the offline engine from the system's packages: ``espeak-ng -m`` reads the
SSML (voices ``nl``, ``fr-be``, ``de``, ``en``, at the script's words per minute) and ``sox``
resamples its 22.05 kHz output to what a telephone line carries (8 kHz, mono, 16-bit PCM;
the SIP user agent encodes it to G.711). A better engine replaces it by implementing ``render``.

:class:`AudioCache` renders each campaign × language once: the file is named after the
campaign, the language and a digest of the SSML (a different script is a different file), is
written under a temporary name and renamed, so a reader never sees half a file, and
concurrent callers for the same script wait for the one render.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from hub.errors import HubError
from hub.voice.script import WPM, language_of

SAMPLE_RATE = 8000
VOICES = {"nl": "nl", "fr": "fr-be", "de": "de", "en": "en"}
TTS_TIMEOUT = 60.0  # seconds one render may take (a 90-second script takes ~1 s here)


class TtsError(HubError):
    """The speech engine could not render a script; the message names the engine and why."""


class Tts(Protocol):
    """A speech engine."""

    name: str

    async def render(self, ssml: str, language: str, out: Path) -> None:
        """Write ``ssml`` spoken in ``language`` to ``out`` as 8 kHz mono 16-bit WAV."""
        ...


class EspeakTts:
    """espeak-ng + sox. ``espeak`` and ``sox`` are the commands (names on PATH or paths)."""

    name = "espeak-ng"

    def __init__(self, espeak: str = "espeak-ng", sox: str = "sox") -> None:
        self.espeak, self.sox = espeak, sox

    def available(self) -> bool:
        return shutil.which(self.espeak) is not None and shutil.which(self.sox) is not None

    async def render(self, ssml: str, language: str, out: Path) -> None:
        lang = language_of(language)
        try:
            speak = await asyncio.create_subprocess_exec(
                self.espeak, "-m", "-v", VOICES[lang], "-s", str(WPM[lang]), "--stdout", "--stdin",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise TtsError(f"{self.name}: cannot run {self.espeak!r}: {exc.strerror}") from exc
        try:
            wav, err = await asyncio.wait_for(speak.communicate(ssml.encode()), TTS_TIMEOUT)
        except TimeoutError:
            speak.kill()
            await speak.wait()
            raise TtsError(f"{self.name}: no audio for {lang} within {TTS_TIMEOUT:.0f} s") from None
        if speak.returncode != 0 or not wav:
            raise TtsError(f"{self.name} failed for {lang} (exit {speak.returncode}): "
                           f"{err.decode(errors='replace').strip()[:200]}")
        await self._telephony(wav, out)

    async def _telephony(self, wav: bytes, out: Path) -> None:
        try:
            sox = await asyncio.create_subprocess_exec(
                self.sox, "-q", "-t", "wav", "-", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16",
                "-e", "signed-integer", "-t", "wav", str(out),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise TtsError(f"{self.name}: cannot run {self.sox!r}: {exc.strerror}") from exc
        try:
            _, err = await asyncio.wait_for(sox.communicate(wav), TTS_TIMEOUT)
        except TimeoutError:  # not left running, and a TtsError: the worker fails the deliveries
            sox.kill()
            await sox.wait()
            raise TtsError(f"sox: no conversion within {TTS_TIMEOUT:.0f} s") from None
        if sox.returncode != 0:
            raise TtsError(f"sox could not convert the audio to {SAMPLE_RATE} Hz (exit {sox.returncode}): "
                           f"{err.decode(errors='replace').strip()[:200]}")


def wav_seconds(path: Path) -> float:
    """The length of a WAV file, in seconds."""
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())


class AudioCache:
    """Rendered scripts under ``root`` (DATA_DIR/voice), one file per campaign × language ×
    script."""

    def __init__(self, root: Path, tts: Tts) -> None:
        self.root = root
        self.tts = tts
        self._locks: dict[Path, asyncio.Lock] = {}
        self.renders = 0  # renders done by this cache, for tests and metrics

    def path(self, campaign_id: int, language: str, ssml: str) -> Path:
        digest = hashlib.sha256(ssml.encode()).hexdigest()[:16]
        return self.root / f"campaign-{campaign_id}" / f"{language_of(language)}-{digest}.wav"

    async def audio(self, campaign_id: int, language: str, ssml: str) -> Path:
        """The audio file of this script, rendered on first use."""
        path = self.path(campaign_id, language, ssml)
        if path.exists():
            return path
        lock = self._locks.setdefault(path, asyncio.Lock())
        async with lock:
            if path.exists():
                return path
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            try:
                await self.tts.render(ssml, language, tmp)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            self.renders += 1
        self._locks.pop(path, None)
        return path

    def forget(self, campaign_id: int) -> None:
        """Delete a finished campaign's audio."""
        shutil.rmtree(self.root / f"campaign-{campaign_id}", ignore_errors=True)

    def campaigns(self) -> list[int]:
        """The campaigns that have audio here."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            number = entry.name.removeprefix("campaign-")
            if entry.is_dir() and number != entry.name and number.isdigit():
                found.append(int(number))
        return sorted(found)

    async def sweep(self, finished: Callable[[int], Awaitable[bool]]) -> list[int]:
        """Delete the audio of every campaign here that ``finished`` says is over (done or
        cancelled: no more calls owed); returns those campaigns. A call of a finished campaign
        that still comes (a late retry) renders its script again."""
        gone = []
        for campaign_id in self.campaigns():
            if await finished(campaign_id) and not any(p.parent.name == f"campaign-{campaign_id}"
                                                       for p in self._locks):
                self.forget(campaign_id)
                gone.append(campaign_id)
        return gone
