"""Voice providers: who places the calls. One Protocol, a SIP provider and a simulator.

:class:`SipVoiceProvider` keeps ``lines`` baresip user agents (:mod:`hub.voice.baresip`), each
one call at a time, and hands each call to a free line. A line whose process dies is
restarted; the call it was making is reported as it stood: answered (with the seconds
played; it is not made again) or a transient failure (retried later, like a busy line).

:class:`SimulatorVoiceProvider` calls nobody: each call is answered, busy or unanswered by a
seeded draw and "plays" the script's estimated length at once. It needs no audio.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hub.voice.baresip import BaresipLine, LineConfig, UaDied, UaError, account_line
from hub.voice.calls import CallOutcome, CallResult, Gate, classify, dialable, sip_uri
from hub.voice.script import VoiceScript

log = logging.getLogger(__name__)


class VoiceProvider(Protocol):
    """What the voice worker needs from a provider."""

    needs_audio: bool  # whether ``call`` plays a rendered file (else ``audio`` is None)

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def call(self, number: str, script: VoiceScript, audio: Path | None, *,
                   gate: Gate | None = None) -> CallResult:
        """Call ``number`` (E.164) and play the script; returns when the call is over.
        ``gate`` is awaited right before the dial; when it says no, nobody is called."""
        ...


@dataclass(frozen=True)
class SipSettings:
    """The SIP side of the ``[voice]`` settings."""

    caller: str  # E.164
    trunk: str  # host[:port] the calls go to
    registrar: str = ""
    username: str = ""
    password: str = ""
    outbound_proxy: str = ""
    bind: str = "127.0.0.1"
    lines: int = 4
    ring_timeout: float = 30.0
    max_seconds: float = 90.0
    baresip: str = "baresip"
    rtp_ports: tuple[int, int] = (20000, 29999)
    display: str = ""


class SipVoiceProvider:
    needs_audio = True

    def __init__(self, settings: SipSettings, work_dir: Path) -> None:
        if settings.lines < 1:
            raise ValueError("lines must be at least 1")
        self.settings = settings
        account = account_line(settings.caller, domain=settings.trunk, registrar=settings.registrar,
                               username=settings.username, password=settings.password,
                               outbound_proxy=settings.outbound_proxy, display=settings.display)
        config = LineConfig(settings.baresip, settings.bind, account, work_dir, settings.rtp_ports,
                            registrar=settings.registrar)
        self.lines = [BaresipLine(i, config) for i in range(settings.lines)]
        self._free: asyncio.Queue[BaresipLine] = asyncio.Queue()
        self.calls = 0  # dials made, for tests and the bench
        self.restarts = 0

    async def open(self) -> None:
        try:
            await asyncio.gather(*(line.start() for line in self.lines))
        except BaseException:
            await self.close()
            raise
        for line in self.lines:
            self._free.put_nowait(line)

    async def close(self) -> None:
        await asyncio.gather(*(line.stop() for line in self.lines), return_exceptions=True)

    @property
    def active(self) -> int:
        return sum(1 for line in self.lines if line.in_call)

    async def call(self, number: str, script: VoiceScript, audio: Path | None, *,
                   gate: Gate | None = None) -> CallResult:
        why = dialable(number)
        if why is not None:
            return CallResult(CallOutcome.FAILED, reason=why)
        if audio is None:
            raise ValueError("the SIP provider plays a rendered audio file")

        async def dialling() -> bool:
            if gate is not None and not await gate():
                return False
            self.calls += 1
            return True

        line = await self._free.get()
        try:
            raw = await line.call(sip_uri(number, self.settings.trunk), audio,
                                  ring_timeout=self.settings.ring_timeout,
                                  max_seconds=self.settings.max_seconds, gate=dialling)
            if raw.cancelled:
                return CallResult(CallOutcome.CANCELLED, reason="cancelled")
            return classify(raw.reason, established=raw.established, seconds=raw.seconds,
                            timed_out=raw.timed_out, digits=raw.digits)
        except UaDied as died:
            log.warning("line %d: the SIP user agent stopped during a call; restarting it", line.index)
            await self._restart(line)
            if died.established:
                return CallResult(CallOutcome.ANSWERED, died.seconds,
                                  reason=f"answered, {died.seconds:.0f} s played (user agent stopped)")
            return CallResult(CallOutcome.FAILED, reason="user agent stopped before an answer",
                              transient=True)
        except UaError as exc:
            log.warning("line %d: %s; restarting it", line.index, exc)
            await self._restart(line)
            return CallResult(CallOutcome.FAILED, reason=str(exc), transient=True)
        finally:
            self._free.put_nowait(line)

    async def _restart(self, line: BaresipLine) -> None:
        self.restarts += 1
        try:
            await line.restart()
        except UaError:
            log.exception("line %d: could not restart the SIP user agent", line.index)


class SimulatorVoiceProvider:
    """Answers ``answer_ratio`` of the calls, the rest busy or unanswered in equal shares;
    an answered call plays the whole script and is confirmed when ``confirm``."""

    needs_audio = False

    def __init__(self, *, answer_ratio: float = 0.9, confirm: bool = False, seed: int | None = None,
                 latency: float = 0.0, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 keep_called: bool = False) -> None:
        if not 0 <= answer_ratio <= 1:
            raise ValueError("answer_ratio must be in [0, 1]")
        self.answer_ratio, self.confirm, self.latency = answer_ratio, confirm, latency
        self._random = random.Random(seed)
        self._sleep = sleep
        self.calls = 0
        # numbers, for tests only: the simulation environment runs for months in `serve`
        self._keep_called = keep_called
        self.called: list[str] = []

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def call(self, number: str, script: VoiceScript, audio: Path | None, *,
                   gate: Gate | None = None) -> CallResult:
        why = dialable(number)
        if why is not None:
            return CallResult(CallOutcome.FAILED, reason=why)
        if gate is not None and not await gate():
            return CallResult(CallOutcome.CANCELLED, reason="cancelled")
        self.calls += 1
        if self._keep_called:
            self.called.append(number)
        if self.latency:
            await self._sleep(self.latency)
        draw = self._random.random()
        if draw < self.answer_ratio:
            return CallResult(CallOutcome.ANSWERED, script.seconds, self.confirm,
                              reason=f"answered, {script.seconds:.0f} s played (simulated)")
        if draw < self.answer_ratio + (1 - self.answer_ratio) / 2:
            return CallResult(CallOutcome.BUSY, code=486, reason="486 Busy Here (simulated)")
        return CallResult(CallOutcome.NO_ANSWER, code=480, reason="480 Temporarily Unavailable (simulated)")
