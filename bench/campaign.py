"""Benchmark of a whole campaign and of its tracking: 100,000 recipients by SMS and e-mail.

    PYTHONPATH=. .venv/bin/python bench/campaign.py [--members 100000] [--amqp]

Set-up (not timed): bench/fanout.py's entity and members in a fresh data directory (unique
mobile numbers for all, e-mail addresses for seven in ten, half Dutch, half French). Every
stage runs in this process (``Hub.start``) on the simulator providers (nothing is sent) with
the rate limits off (``rate = 0``), on the embedded broker or, with ``--amqp``, on RabbitMQ
at ``CAPHUB_AMQP_URL``, in a virtual host of its own (``rabbitmqctl``).

Timed: from ``Ingest.post`` of one alert (channels sms,email) until the campaign is done.
Meanwhile a reader asks for the campaign's progress every 0.5 s, as an SSE stream does.

Measured inside that run by thin wrappers: when each ``delivery.events`` message was
published (the workers' outcomes) and when the tracker finished storing it. Printed: the
end-to-end time; the workers' outcome throughput (the baseline: deliveries per second the
channels produced); the tracker's throughput (deliveries per second it stored, from its
first to its last event) and its ratio to the baseline; the tracker's lag (publish to
stored) per event, mean and max; the time of one progress read. Target (issue 9):
tracking never lags sending by more than 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fanout import alert_xml, ctl, make_vhost, setup
from hub.broker.base import Message
from hub.config import AmqpSettings, EmailSettings, Settings, SignatureSettings, SmsSettings
from hub.domain import CampaignState
from hub.services.ingest import Caller
from hub.services.router import EVENTS_QUEUE
from hub.services.tracker import Tracker
from hub.wiring import Hub

DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/"


class Probe:
    """Publish times of the outcome messages, and what the tracker made of each."""

    def __init__(self) -> None:
        self.published: dict[bytes, list[float]] = {}
        self.stored: list[tuple[float, float, int]] = []  # (publish time, stored time, outcomes)
        self.waits: list[float] = []  # publish -> the tracker takes it
        self.first_publish = 0.0
        self.last_publish = 0.0
        self.outcomes_published = 0

    def wrap_publish(self, broker: Any) -> None:
        original = broker.publish

        async def publish(topic: str, body: bytes, *args: Any, **kw: Any) -> Any:
            if topic == EVENTS_QUEUE:
                now = time.perf_counter()
                self.published.setdefault(body, []).append(now)
                self.first_publish = self.first_publish or now
                self.last_publish = now
                self.outcomes_published += body.count(b'"id":')
            return await original(topic, body, *args, **kw)

        broker.publish = publish

    def wrap_tracker(self) -> None:
        original = Tracker.handle
        probe = self

        async def handle(tracker: Tracker, message: Message) -> None:
            sent = probe.published.get(message.body)
            if sent and message.topic == EVENTS_QUEUE:
                probe.waits.append(time.perf_counter() - sent[0])
            await original(tracker, message)
            if message.topic == EVENTS_QUEUE:
                sent = probe.published.get(message.body)
                if sent:
                    probe.stored.append((sent.pop(0), time.perf_counter(), message.body.count(b'"id":')))

        Tracker.handle = handle  # type: ignore[method-assign, assignment]


async def run(args: argparse.Namespace, data: Path) -> None:
    n = args.members
    t = time.perf_counter()
    await setup(data, n, 10)
    print(f"set-up: {n} members in {time.perf_counter() - t:.1f} s (not timed)")
    vhost = None
    amqp = AmqpSettings()
    if args.amqp:  # a virtual host of its own, deleted afterwards
        vhost, url = make_vhost(os.environ.get("CAPHUB_AMQP_URL", DEFAULT_AMQP))
        amqp = AmqpSettings(url=url)
    settings = Settings(data_dir=str(data), signature=SignatureSettings(required=False), amqp=amqp,
                        sms=SmsSettings(rate=0.0), email=EmailSettings(rate=0.0))
    probe = Probe()
    probe.wrap_tracker()
    try:
        elapsed, states, reads, final_read = await campaign(args, settings, data, probe)
    finally:
        if vhost is not None:
            ctl("delete_vhost", vhost)
    report(n, elapsed, states, probe, reads, final_read, "RabbitMQ" if args.amqp else "embedded broker")


async def campaign(args: argparse.Namespace, settings: Settings, data: Path,
                   probe: Probe) -> tuple[float, dict[tuple[str, str], int], list[float], float]:
    """Post the alert and wait for the end of its campaign, reading its progress meanwhile."""
    hub = await Hub.start(settings, data)
    probe.wrap_publish(hub.broker)
    try:
        account = await hub.store.account_by_name("bench")
        entity = await hub.store.entity_by_name("Bench")
        assert account is not None and entity is not None
        reads: list[float] = []
        t0 = time.perf_counter()
        outcome = await hub.ingest.post(alert_xml("sms,email"), Caller(account, entity))
        assert outcome.status == 201 and outcome.stored is not None, outcome.problems
        found = None
        last_read = 0.0
        while time.perf_counter() - t0 < args.timeout:
            found = await hub.store.campaign_for_alert(outcome.stored.id)
            if found is not None and found.state is CampaignState.DONE:
                break
            if found is not None and time.perf_counter() - last_read >= 0.5:
                last_read = time.perf_counter()
                await hub.store.campaign_tally(found.id, since=datetime.now(UTC) - timedelta(seconds=10))
                reads.append(time.perf_counter() - last_read)
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - t0
        if found is None or found.state is not CampaignState.DONE:
            raise SystemExit(f"the campaign did not finish within {args.timeout} s")
        states = await hub.store.delivery_states(found.id)
        t = time.perf_counter()
        await hub.store.campaign_tally(found.id, since=datetime.now(UTC) - timedelta(seconds=10))
        return elapsed, states, reads, time.perf_counter() - t
    finally:
        await hub.stop()


def report(n: int, elapsed: float, states: dict[tuple[str, str], int], probe: Probe, reads: list[float],
           final_read: float, broker: str) -> None:
    total = sum(states.values())
    stored = sum(k for _, _, k in probe.stored)
    lags = [done - sent for sent, done, _ in probe.stored]
    send_span = max(probe.last_publish - probe.first_publish, 1e-9)
    track_span = max(max(d for _, d, _ in probe.stored) - min(s for s, _, _ in probe.stored), 1e-9)
    sending = probe.outcomes_published / send_span
    tracking = stored / track_span
    print(f"campaign: {n} recipients, sms + e-mail, simulators, rate limits off, {broker}")
    print(f"  deliveries: {total} {json.dumps({f'{c}/{s}': k for (c, s), k in sorted(states.items())})}")
    print(f"  end to end (post -> campaign done): {elapsed:.2f} s ({total / elapsed:,.0f} deliveries/s)")
    print(f"  baseline, the channels' outcomes: {probe.outcomes_published} in {len(probe.stored)} events, "
          f"{sending:,.0f} deliveries/s")
    print(f"  tracker: {stored} tracked, {tracking:,.0f} deliveries/s "
          f"({tracking / sending:.2f}x the channels)")
    print(f"  tracker lag (outcome published -> stored): mean {statistics.mean(lags) * 1000:.0f} ms, "
          f"max {max(lags) * 1000:.0f} ms; target max <= 1 s: {'met' if max(lags) <= 1.0 else 'MISSED'}")
    print(f"    of which waiting for the tracker to take the event: "
          f"mean {statistics.mean(probe.waits) * 1000:.0f} ms, max {max(probe.waits) * 1000:.0f} ms")
    if reads:
        print(f"  progress read while sending (every 0.5 s, {len(reads)}): "
              f"mean {statistics.mean(reads) * 1000:.0f} ms, max {max(reads) * 1000:.0f} ms; "
              f"at the end: {final_read * 1000:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--amqp", action="store_true",
                    help="RabbitMQ at CAPHUB_AMQP_URL instead of the embedded broker")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="caphub-bench-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
