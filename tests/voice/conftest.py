"""Fixtures of the voice tests: sipp scenarios and a recording baresip as called parties, and
the hub's SIP provider pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from hub.voice.providers import SipSettings, SipVoiceProvider
from tests.services.conftest import hub, keypairs
from tests.voice.peers import Recorder, Sipp

__all__ = ["hub", "keypairs"]  # the stage tests' hub: three voice deliveries per routed alert

CALLER = "+32477777755"


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Callable[[str], Sipp]]:
    """``sipp("busy")`` starts sipp with tests/peers/sip/busy.xml; all stop at the end."""
    started: list[Sipp] = []

    def start(scenario: str) -> Sipp:
        peer = Sipp(scenario, tmp_path).start()
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Callable[[list[str]], Recorder]]:
    started: list[Recorder] = []

    def start(numbers: list[str]) -> Recorder:
        peer = Recorder(numbers, tmp_path).start()
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


def sip_settings(trunk: str, **kw: object) -> SipSettings:
    values: dict[str, object] = dict(caller=CALLER, trunk=trunk, lines=2, ring_timeout=3.0, max_seconds=30.0,
                                     rtp_ports=(30000, 39999))
    values.update(kw)
    return SipSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def provider_for(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """``await provider_for(trunk, lines=...)``: an opened SIP provider; closed at the end."""
    opened: list[SipVoiceProvider] = []

    async def make(trunk: str, **kw: object) -> SipVoiceProvider:
        provider = SipVoiceProvider(sip_settings(trunk, **kw), tmp_path / f"ua-{len(opened)}")
        await provider.open()
        opened.append(provider)
        return provider

    yield make
    for provider in opened:
        await provider.close()
