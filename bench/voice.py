"""Benchmark of the voice channel's pacing: calls started per minute against sipp answering at once.

    .venv/bin/python bench/voice.py [--seconds 120] [--rate 600] [--lines 80]

The whole hub runs (`cap-hub serve` in-process: ingest, router, workers, tracker) with the SIP
provider: ``--lines`` baresip user agents calling a sipp UAS that answers every call at once
(``--scenario``: tests/peers/sip/hangup.xml by default, which hangs up after one second, so
that the number of lines, not the length of the message, sets the concurrency this 2-core
machine must carry; ``answer`` listens to the whole message, ~7 s here, and then needs about
100 lines for 600 calls/min). One alert goes to ``rate × seconds / 60`` members, so the
campaign lasts about ``--seconds``.

Figures, from the worker's record of when each call started (admitted to dial), and the same
from sipp's log of when each INVITE arrived:
* calls started per minute over the campaign, against the setting (target: within 2%);
* the most calls started in any 10-second window (target: never above rate / 6);
* the most calls in progress at once (target: never above ``max_concurrent`` = ``--lines``);
* baseline, measured in the same run first: the same lines calling sipp unthrottled for
  ``--baseline`` seconds (the ceiling this machine and these lines reach), and the setting's
  share of it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
import tempfile
import time
from bisect import bisect_left
from dataclasses import replace
from pathlib import Path

from hub.cap.parse import parse
from hub.config import Settings, SignatureSettings, VoiceSettings
from hub.domain import CampaignState, Channel, EntityType, Role
from hub.services import admin
from hub.services.members import ADMIN
from hub.voice.providers import SipVoiceProvider
from hub.voice.script import voice_script
from hub.voice.setup import sip_settings
from hub.voice.tts import AudioCache, EspeakTts
from hub.voice.worker import VoiceWorker
from hub.wiring import Hub

# The tests' peers and fixtures (sipp, the test alert): importable however this is started.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.api.conftest import keypairs
from tests.services.test_router import TERRITORY, cap, post
from tests.voice.peers import Sipp


def members_csv(count: int) -> bytes:
    rows = [f"M{i};0470 {i // 1000:03d} {i % 1000:03d};nl" for i in range(count)]
    return ("naam;gsm;taal\n" + "\n".join(rows) + "\n").encode()


def max_in_window(starts: list[float], window: float) -> int:
    starts = sorted(starts)
    return max((bisect_left(starts, t + window) - i for i, t in enumerate(starts)), default=0)


async def baseline(voice: VoiceSettings, scenario: str, work: Path, seconds: float) -> float:
    """Calls per minute the same lines reach unthrottled, against a sipp of their own."""
    peer = Sipp(scenario, work / "baseline")
    (work / "baseline").mkdir()
    peer.start()
    provider = SipVoiceProvider(sip_settings(replace(voice, trunk=peer.trunk)), work / "baseline-ua")
    try:
        await provider.open()
    except BaseException:
        peer.stop()
        raise
    try:
        alert = parse(cap("BENCH-BASELINE")).alert
        assert alert is not None
        script = voice_script(alert.infos[0])  # the campaign's own message
        audio = await AudioCache(work / "baseline-audio", EspeakTts()).audio(0, script.language, script.ssml)
        end = time.monotonic() + seconds
        started = 0

        async def line_loop(n: int) -> None:
            nonlocal started
            while time.monotonic() < end:
                started += 1
                await provider.call(f"+3247{n:03d}{started:05d}", script, audio)

        t0 = time.monotonic()
        await asyncio.gather(*(line_loop(n) for n in range(voice.lines)))
        return started / (time.monotonic() - t0) * 60
    finally:
        await provider.close()
        peer.stop()


async def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench-voice-"))
    peer = Sipp(args.scenario, work).start()
    try:
        voice = VoiceSettings(provider="sip", trunk=peer.trunk, lines=args.lines, max_concurrent=args.lines,
                              calls_per_minute=args.rate, rtp_ports="20000-39999", ring_timeout=10.0)
        ceiling = await baseline(voice, args.scenario, work, args.baseline)
        calls = math.ceil(args.rate * args.seconds / 60)
        keys = keypairs.__wrapped__()  # type: ignore[attr-defined]
        settings = Settings(data_dir=str(work / "data"), signature=SignatureSettings(), voice=voice)
        hub = await Hub.start(settings, work / "data")
        try:
            entity, _ = await admin.add_entity(hub.store, "PZ", EntityType.GROUPS, ["pz@example.be"],
                                               certificates=[("t", keys["police"][1])])
            await admin.add_account(hub.store, "PZ", "dispatch", Role.COORDINATOR)
            await hub.members.add_group(ADMIN, entity, "plp-a", "PLP A", territory=TERRITORY)
            await hub.members.import_csv(ADMIN, "plp-a", members_csv(calls))
            worker = hub.workers[Channel.VOICE]
            assert isinstance(worker, VoiceWorker)
            alert_id = await post(hub, keys, cap("BENCH-VOICE"))
            deadline = time.monotonic() + args.seconds * 2 + 120
            while time.monotonic() < deadline:
                campaign = await hub.store.campaign_for_alert(alert_id)
                if campaign is not None and campaign.state is CampaignState.DONE:
                    break
                await asyncio.sleep(0.5)
            starts = sorted(worker.starts)
            states = await hub.store.delivery_states(campaign.id) if campaign is not None else {}
        finally:
            await hub.stop()
    finally:
        peer.stop()
    seen = peer.invite_times()  # the same starts as the called party saw them
    seen_span = seen[-1] - seen[0] if len(seen) > 1 else 0.0
    seen_per_minute = (len(seen) - 1) / seen_span * 60 if seen_span else 0.0
    seen_window = max_in_window(seen, 10.0)
    span = starts[-1] - starts[0] if len(starts) > 1 else 0.0
    per_minute = (len(starts) - 1) / span * 60 if span else 0.0
    window = max_in_window(starts, 10.0)
    voice_states = {s: n for (c, s), n in states.items() if c == "voice"}
    print(f"calls started      {len(starts)} of {calls} in {span:.1f} s; outcomes {voice_states}")
    print(f"calls per minute   {per_minute:.1f} (setting {args.rate:.0f}; "
          f"ratio {per_minute / args.rate:.3f}; target 0.98-1.00)")
    print(f"max in any 10 s    {window} (limit {args.rate / 6:.0f})")
    print(f"max concurrent     {worker.max_active} (limit {args.lines})")
    print(f"as sipp saw them   {len(seen)} INVITEs, {seen_per_minute:.1f} per minute "
          f"(ratio {seen_per_minute / args.rate:.3f}), max in any 10 s {seen_window}")
    print(f"baseline           {ceiling:.0f} calls/min unthrottled on {args.lines} lines; "
          f"setting / baseline = {args.rate / ceiling:.2f}")
    ok = (len(starts) == calls and abs(per_minute / args.rate - 1) <= 0.02 and window <= args.rate / 6
          and worker.max_active <= args.lines and len(seen) == calls)
    print("OK" if ok else "TARGET MISSED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the campaign (default 120)")
    parser.add_argument("--rate", type=float, default=600.0, help="calls per minute (default 600)")
    parser.add_argument("--lines", type=int, default=40, help="lines = max concurrent calls (default 40)")
    parser.add_argument("--scenario", default="hangup", help="sipp scenario in tests/peers/sip (hangup)")
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of the unthrottled run")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
