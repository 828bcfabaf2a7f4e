"""The voice channel built from settings: wrong values named; `cap-hub serve` calling over SIP
to sipp end to end, with the tracker counting the calls and their cost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from hub.config import Settings, SignatureSettings, VoiceSettings
from hub.domain import CampaignState, Channel, EntityType, Role
from hub.errors import ConfigError
from hub.services import admin
from hub.services.members import ADMIN
from hub.voice.providers import SimulatorVoiceProvider, SipVoiceProvider
from hub.voice.script import voice_script
from hub.voice.setup import check, sip_settings, voice_provider
from hub.voice.worker import VoiceWorker
from hub.wiring import Hub
from tests.services.test_router import MEMBERS, TERRITORY, cap, post
from tests.voice.peers import Sipp
from tests.voice.test_script import info

KEYS = dict[str, tuple[bytes, bytes]]


@pytest.mark.parametrize(("change", "named"), [
    ({"caller_id": "call me"}, "voice.caller_id"),
    ({"trunk": " "}, "voice.trunk"),
    ({"lines": 0}, "voice.lines"),
    ({"rtp_ports": "30000"}, "voice.rtp_ports"),
    ({"rtp_ports": "30000-29000"}, "voice.rtp_ports"),
    ({"rtp_ports": "30000-30100", "lines": 10}, "voice.rtp_ports"),
])
def test_wrong_sip_settings_are_named(change: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        sip_settings(VoiceSettings(provider="sip", **change))  # type: ignore[arg-type]


@pytest.mark.parametrize(("change", "named"), [
    ({"max_concurrent": 0}, "voice.max_concurrent"), ({"attempts": 0}, "voice.attempts"),
    ({"ring_timeout": 0}, "voice.ring_timeout"), ({"max_seconds": -1}, "voice.max_seconds"),
])
def test_wrong_worker_settings_are_named(change: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        check(VoiceSettings(**change))  # type: ignore[arg-type]


def test_the_caller_is_sent_in_e164(tmp_path: Path) -> None:
    assert sip_settings(VoiceSettings(provider="sip")).caller == "+32477777755"
    assert isinstance(voice_provider(Settings(), tmp_path), SimulatorVoiceProvider)
    sip = Settings(voice=VoiceSettings(provider="sip"))
    assert isinstance(voice_provider(sip, tmp_path), SipVoiceProvider)
    assert isinstance(voice_provider(sip, tmp_path, simulation=True), SimulatorVoiceProvider)


async def test_the_simulation_provider_keeps_no_numbers(tmp_path: Path) -> None:
    # `serve` runs the simulator for months: it must not hoard every number it "called"
    provider = voice_provider(Settings(), tmp_path)
    assert isinstance(provider, SimulatorVoiceProvider)
    script = voice_script(info("en-GB"))
    for n in range(3):
        await provider.call(f"+3247712345{n}", script, None)
    assert provider.calls == 3 and list(provider.called) == []


async def test_serve_calls_over_sip(tmp_path: Path, keypairs: KEYS, sipp: Callable[[str], Sipp]) -> None:
    peer = sipp("answer")
    voice = VoiceSettings(provider="sip", trunk=peer.trunk, lines=2, max_concurrent=2,
                          rtp_ports="33000-33999")
    settings = Settings(data_dir=str(tmp_path), signature=SignatureSettings(), voice=voice)
    hub = await Hub.start(settings, tmp_path)
    try:
        worker = hub.workers[Channel.VOICE]
        assert isinstance(worker, VoiceWorker)
        entity, _ = await admin.add_entity(hub.store, "PZ", EntityType.GROUPS, ["pz@example.be"],
                                           certificates=[("t", keypairs["police"][1])])
        await admin.add_account(hub.store, "PZ", "dispatch", Role.COORDINATOR)
        await hub.members.add_group(ADMIN, entity, "plp-a", "PLP A", territory=TERRITORY)
        await hub.members.import_csv(ADMIN, "plp-a", MEMBERS)
        alert_id = await post(hub, keypairs, cap("SIP-1"))
        for _ in range(600):
            campaign = await hub.store.campaign_for_alert(alert_id)
            if campaign is not None and campaign.state is CampaignState.DONE:
                break
            await asyncio.sleep(0.1)
        assert campaign is not None and campaign.state is CampaignState.DONE
        states = await hub.store.delivery_states(campaign.id)
        assert states[("voice", "delivered")] == 3
        assert sum(peer.invites().values()) == 3 and worker.max_active <= 2
        # each answered call of a few seconds is one started minute
        voice_cost = await hub.store.campaign_cost(campaign.id)
        assert voice_cost >= 3 * 0.055
        assert list((tmp_path / "voice" / "audio" / f"campaign-{campaign.id}").glob("*.wav"))
    finally:
        await hub.stop()
