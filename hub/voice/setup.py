"""The voice channel built from the ``[voice]`` settings: its provider and worker, started.

``hub.wiring`` calls :func:`start_voice` for the voice worker (``cap-hub worker voice``, and
inside ``cap-hub serve``) and for the simulation environment's. Every ``[voice]`` value is
checked here, and a wrong one is a ``ConfigError`` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from hub.broker.base import Broker
from hub.config import Settings, VoiceSettings
from hub.errors import ConfigError
from hub.voice.calls import caller_number
from hub.voice.providers import SimulatorVoiceProvider, SipSettings, SipVoiceProvider, VoiceProvider
from hub.voice.tts import AudioCache, EspeakTts
from hub.voice.worker import VoiceStore, VoiceWorker

VOICE_DIR = "voice"  # under the data directory: rendered audio, the user agents' config


def rtp_range(text: str) -> tuple[int, int]:
    """``"20000-29999"`` → (20000, 29999); ConfigError naming the setting otherwise."""
    low, sep, high = text.partition("-")
    try:
        first, last = int(low), int(high)
    except ValueError:
        first = last = -1
    if not sep or not 1024 <= first < last <= 65535:
        raise ConfigError(f"voice.rtp_ports = {text!r}: must be FIRST-LAST, two ports between 1024 and 65535")
    return first, last


def sip_settings(voice: VoiceSettings) -> SipSettings:
    """The SIP provider's settings, checked."""
    try:
        caller = caller_number(voice.caller_id)
    except ValueError as exc:
        raise ConfigError(f"voice.caller_id: {exc}") from None
    if not voice.trunk.strip():
        raise ConfigError("voice.trunk is empty: the SIP trunk's host[:port] the calls go to")
    if voice.lines < 1:
        raise ConfigError(f"voice.lines = {voice.lines}: must be at least 1")
    first, last = rtp_range(voice.rtp_ports)
    if (last - first + 1) < 20 * voice.lines:
        raise ConfigError(f"voice.rtp_ports = {voice.rtp_ports!r}: {voice.lines} lines need "
                          f"{20 * voice.lines} ports (20 each)")
    return SipSettings(caller=caller, trunk=voice.trunk.strip(), registrar=voice.registrar,
                       username=voice.username, password=voice.password, outbound_proxy=voice.outbound_proxy,
                       bind=voice.bind, lines=voice.lines, ring_timeout=voice.ring_timeout,
                       max_seconds=voice.max_seconds, baresip=voice.baresip, rtp_ports=(first, last),
                       display=voice.display_name)


def voice_provider(settings: Settings, data_dir: Path, *, simulation: bool = False) -> VoiceProvider:
    """The provider ``[voice] provider`` chooses; the simulator in the simulation environment."""
    voice = settings.voice
    if simulation or settings.simulation.enabled or voice.provider == "simulator":
        # Every simulated call is answered: a busy draw would hold the campaign open for the
        # retry interval (minutes) with nothing to learn from it.
        return SimulatorVoiceProvider(answer_ratio=1.0, confirm=voice.confirm,
                                      seed=settings.simulation.seed or None)
    return SipVoiceProvider(sip_settings(voice), data_dir / VOICE_DIR / "ua")


def check(voice: VoiceSettings) -> None:
    for key, value, least in (("max_concurrent", voice.max_concurrent, 1), ("attempts", voice.attempts, 1),
                              ("calls_per_minute", voice.calls_per_minute, 0),
                              ("retry_interval", voice.retry_interval, 0)):
        if value < least:
            raise ConfigError(f"voice.{key} = {value}: must be at least {least}")
    for key, value in (("ring_timeout", voice.ring_timeout), ("max_seconds", voice.max_seconds)):
        if value <= 0:
            raise ConfigError(f"voice.{key} = {value}: must be positive")


@dataclass
class Voice:
    provider: VoiceProvider
    worker: VoiceWorker


async def start_voice(settings: Settings, data_dir: Path, store: VoiceStore, broker: Broker, *,
                      sole: bool, simulation: bool = False, queue: str | None = None) -> Voice:
    """The voice provider (opened) and its worker; the caller consumes ``worker.queue``."""
    voice = settings.voice
    check(voice)
    provider = voice_provider(settings, data_dir, simulation=simulation)
    cache = AudioCache(data_dir / VOICE_DIR / "audio", EspeakTts()) if provider.needs_audio else None
    # A claim lives as long as one call at most: ringing, the longest message, and a margin.
    grace = timedelta(seconds=voice.ring_timeout + voice.max_seconds + 60)
    # No more calls at once than there are lines: a call waiting for a line would start late.
    concurrent = min(voice.max_concurrent, voice.lines) if provider.needs_audio else voice.max_concurrent
    worker = VoiceWorker(store, broker, provider, cache=cache, calls_per_minute=voice.calls_per_minute,
                         max_concurrent=concurrent, attempts=voice.attempts,
                         retry_interval=voice.retry_interval, confirm=voice.confirm,
                         max_seconds=voice.max_seconds,
                         price_per_minute=Decimal(str(settings.cost.voice_minute_eur)),
                         sender=voice.sender_name, sending_grace=grace, sole=sole, queue=queue)
    await provider.open()
    return Voice(provider, worker)
