"""Benchmark of fan-out: an accepted alert to every deliver.<channel> batch confirmed in RabbitMQ.

    .venv/bin/python bench/fanout.py [--members N] [--groups G] [--channels sms,voice,email]

Set-up (not timed): a fresh data directory in a temporary folder; an entity (type 2, groups)
with G groups (default 10) whose territory covers the alert area, and N members (default
100,000) spread over them, each with a location inside the alert polygon, a unique mobile
number, and for seven in ten a unique e-mail address (saved through
``SqliteStore.save_members`` in chunks). One accepted alert (urgent: SMS, voice call and
e-mail by the groups' defaults; ``--channels`` puts a ``channels`` parameter in the alert)
is stored through ``Ingest.post``. RabbitMQ: a virtual host of its own for the run, made and
deleted with ``rabbitmqctl``, at ``CAPHUB_AMQP_URL`` (default amqp://guest:guest@127.0.0.1:5672/).

Timed: ``Router.route(alert_id)`` with an ``AmqpBroker`` on that virtual host; it returns
once every ``deliver.<channel>`` batch is confirmed (``publish_many``) and the campaign is
marked. The split (directory read; store writes: add_deliveries, mark_queued, the rest;
publish) is measured inside that run by thin timing wrappers around the store and broker
methods the router awaits (it awaits them one at a time, so their sum never exceeds the wall
time); "plan and the rest" is what is left (parse, Directory.from_rows, plan_campaign, batch
bodies). The directory read and the
plan are also timed alone before the run, as a check.

Baseline, in the same run, on the same RabbitMQ and machine: aio-pika alone, with the same
topology (a topic exchange, durable ``deliver.<channel>`` queues with the same dead-letter
arguments, bound by their names), publisher confirms, persistent messages, the same
in-flight window (256), publishing the same number of bodies of the same sizes per channel,
one channel after the other as the router does. The ratio is what to compare between runs.
Target (issue 5): < 5 s for a 100,000-recipient campaign.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._servers import finish  # noqa: E402
from hub.broker.amqp import AmqpBroker  # noqa: E402
from hub.broker.memory import MemoryBroker  # noqa: E402
from hub.cap.parse import parse  # noqa: E402
from hub.config import Settings  # noqa: E402
from hub.domain import EntityType, Kind, Language, MemberData, Phone, PhoneKind, Role  # noqa: E402
from hub.routing.directory import Directory  # noqa: E402
from hub.routing.plan import plan_campaign  # noqa: E402
from hub.services import admin  # noqa: E402
from hub.services.ingest import Caller, Ingest  # noqa: E402
from hub.services.members import ADMIN, Members  # noqa: E402
from hub.services.router import CHANNEL_QUEUES, Router  # noqa: E402
from hub.store.sqlite import SqliteStore  # noqa: E402
from hub.wiring import declare_topology, load_identity, open_store  # noqa: E402

T = TypeVar("T")
TARGET_S = 5.0
IN_FLIGHT = 256  # AmqpBroker.publish_many's default window
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
SENDER = "bench@example.be"
CHUNK = 10_000  # members per save_members call
# The alert polygon (lat,lon) and a territory around it (GeoJSON lon,lat) that covers it.
SOUTH, WEST, NORTH, EAST = 50.83, 4.33, 50.87, 4.38
TERRITORY = ('{"type": "Polygon", "coordinates": [[[4.30, 50.80], [4.40, 50.80], [4.40, 50.90], '
             '[4.30, 50.90], [4.30, 50.80]]]}')


def alert_xml(channels: str) -> bytes:
    sent = datetime.now(UTC).replace(microsecond=0)
    expires = (sent + timedelta(hours=2)).isoformat()
    param = (f"<parameter><valueName>channels</valueName><value>{channels}</value></parameter>"
             if channels else "")
    polygon = f"{SOUTH},{WEST} {SOUTH},{EAST} {NORTH},{EAST} {NORTH},{WEST} {SOUTH},{WEST}"
    infos = "".join(
        f"<info><language>{lang}</language><category>Safety</category><event>Brand</event>"
        "<urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>"
        f"<expires>{expires}</expires><headline>Zware rookontwikkeling</headline>{param}"
        f"<area><areaDesc>Centrum</areaDesc><polygon>{polygon}</polygon></area></info>"
        for lang in ("nl-BE", "fr-BE"))
    return (f'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>FANOUT-{uuid.uuid4().hex[:8]}'
            f"</identifier><sender>{SENDER}</sender><sent>{sent.isoformat()}</sent><status>Actual</status>"
            f"<msgType>Alert</msgType><scope>Public</scope>{infos}</alert>").encode()


def members(first: int, count: int) -> list[MemberData]:
    """Members ``first`` .. ``first + count - 1``: unique numbers and addresses, located in
    the alert polygon on a fine grid, half in Dutch and half in French."""
    out = []
    for i in range(first, first + count):
        lat = SOUTH + 0.001 + (NORTH - SOUTH - 0.002) * ((i * 7919) % 1000) / 1000
        lon = WEST + 0.001 + (EAST - WEST - 0.002) * ((i * 104729) % 997) / 997
        out.append(MemberData(
            name=f"Member {i}", language=Language.NL if i % 2 else Language.FR,
            phones=(Phone(f"+32470{i:06d}", PhoneKind.MOBILE),),
            emails=(f"member{i}@example.be",) if i % 10 < 7 else (), lat=lat, lon=lon))
    return out


# --- RabbitMQ virtual host ------------------------------------------------------------------


def ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "--quiet", *args], check=True, capture_output=True, timeout=60)


def make_vhost(base: str) -> tuple[str, str]:
    parts = urlsplit(base)
    vhost = f"caphub-bench-{uuid.uuid4().hex[:10]}"
    ctl("add_vhost", vhost)
    ctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
    return vhost, urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


# --- timing wrappers ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.sizes: dict[str, list[int]] = {}

    async def time(self, what: str, call: Awaitable[T]) -> T:
        t0 = time.perf_counter()
        try:
            return await call
        finally:
            self.spent[what] = self.spent.get(what, 0.0) + time.perf_counter() - t0


class TimedStore(SqliteStore):
    clock: Clock

    async def directory_rows(self, gids: Any) -> Any:
        return await self.clock.time("directory read", super().directory_rows(gids))

    async def add_deliveries(self, *args: Any, **kw: Any) -> Any:
        return await self.clock.time("store add_deliveries", super().add_deliveries(*args, **kw))

    async def mark_queued(self, *args: Any, **kw: Any) -> Any:
        return await self.clock.time("store mark_queued", super().mark_queued(*args, **kw))

    async def open_campaign(self, *args: Any, **kw: Any) -> Any:
        return await self.clock.time("store other", super().open_campaign(*args, **kw))

    async def set_plan(self, *args: Any, **kw: Any) -> Any:
        return await self.clock.time("store other", super().set_plan(*args, **kw))


class TimedBroker(AmqpBroker):
    clock: Clock

    async def publish_many(self, topic: str, bodies: Iterable[bytes], *,
                           headers: Mapping[str, str] | None = None, in_flight: int = 256) -> None:
        bodies = list(bodies)
        self.clock.sizes.setdefault(topic, []).extend(len(b) for b in bodies)
        await self.clock.time("publish", super().publish_many(topic, bodies, headers=headers,
                                                               in_flight=in_flight))

    async def publish(self, topic: str, body: bytes, *, headers: Mapping[str, str] | None = None) -> None:
        await self.clock.time("publish", super().publish(topic, body, headers=headers))


# --- the baseline ---------------------------------------------------------------------------


async def baseline(url: str, sizes: dict[str, list[int]]) -> float:
    """aio-pika alone: the same topology shape, confirms, window and body sizes."""
    prefix = "baseline."
    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.declare_exchange(f"{prefix}caphub", aio_pika.ExchangeType.TOPIC,
                                                  durable=True)
        await channel.declare_exchange(f"{prefix}caphub.dead", aio_pika.ExchangeType.DIRECT, durable=True)
        for topic in sizes:
            queue = await channel.declare_queue(f"{prefix}{topic}", durable=True, arguments={
                "x-dead-letter-exchange": f"{prefix}caphub.dead",
                "x-dead-letter-routing-key": f"{prefix}{topic}"})
            await queue.bind(exchange, routing_key=topic)
        bodies = {topic: [os.urandom(n // 2).hex().encode() + b"x" * (n % 2) for n in ns]
                  for topic, ns in sizes.items()}
        t0 = time.perf_counter()
        for topic, batch in bodies.items():
            window = asyncio.Semaphore(IN_FLIGHT)

            async def one(body: bytes, topic: str = topic, window: asyncio.Semaphore = window) -> None:
                try:
                    await exchange.publish(aio_pika.Message(
                        body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), topic)
                finally:
                    window.release()

            tasks = []
            for body in batch:
                await window.acquire()
                tasks.append(asyncio.create_task(one(body)))
            await asyncio.gather(*tasks)
        return time.perf_counter() - t0


# --- the run --------------------------------------------------------------------------------


async def setup(data: Path, n: int, groups: int) -> None:
    store = open_store(data)
    await store.open()
    try:
        entity, _ = await admin.add_entity(store, "Bench", EntityType.GROUPS, [SENDER],
                                           signature_required=False)
        await admin.add_account(store, "Bench", "bench", Role.COORDINATOR)
        svc = Members(store, store)
        per = -(-n // groups)
        for g in range(groups):
            gid = f"plp-{g}"
            await svc.add_group(ADMIN, entity, gid, f"PLP {g}", territory=TERRITORY)
            start, stop = g * per, min(n, (g + 1) * per)
            for first in range(start, stop, CHUNK):
                await store.save_members(gid, members(first, min(CHUNK, stop - first)), [])
    finally:
        await store.close()


async def post_alert(data: Path, channels: str) -> int:
    settings = Settings(data_dir=str(data))
    identity, _ = load_identity(settings, data)
    store = open_store(data)
    await store.open()
    broker = MemoryBroker()  # nobody routes it here: the timed run does
    await broker.start()
    try:
        ingest = Ingest(store, broker, identity, settings)
        account = await store.account_by_name("bench")
        entity = await store.entity_by_name("Bench")
        assert account is not None and entity is not None
        outcome = await ingest.post(alert_xml(channels), Caller(account, entity))
        if outcome.status != 201 or outcome.stored is None:
            raise SystemExit(f"the alert was not accepted ({outcome.status}): {outcome.problems}")
        return outcome.stored.id
    finally:
        await broker.close()
        await store.close()


async def timed_route(data: Path, url: str, alert_id: int) -> dict[str, Any]:
    clock = Clock()
    store = TimedStore(data / "hub.sqlite3")
    store.clock = clock
    await store.open()
    broker = TimedBroker(url, prefix="hub.")
    broker.clock = clock
    executor = ThreadPoolExecutor(2, thread_name_prefix="cap")
    try:
        await broker.start()
        await declare_topology(broker)
        # The check: directory read and plan alone, before the run (warms SQLite's cache too).
        stored = await store.alert(alert_id)
        assert stored is not None and stored.entity_id is not None
        entity = await store.entity(stored.entity_id)
        assert entity is not None
        groups = await store.groups(entity.id)
        t0 = time.perf_counter()
        rows = await SqliteStore.directory_rows(store, [g.gid for g in groups])
        read_alone = time.perf_counter() - t0
        alert = parse(stored.received, max_bytes=len(stored.received) + 1).alert
        assert alert is not None
        t0 = time.perf_counter()
        directory = Directory.from_rows(members=rows[0], phones=rows[1], emails=rows[2],
                                        memberships=rows[3], groups=groups)
        plan = plan_campaign(alert, entity_type=entity.type, entity_groups=groups, directory=directory,
                             kind=Kind.ALERT, default_language=Language.NL, now=datetime.now(UTC))
        plan_alone = time.perf_counter() - t0
        del rows, directory, plan

        router = Router(store, broker, executor=executor)
        t0 = time.perf_counter()
        campaign = await router.route(alert_id)
        seconds = time.perf_counter() - t0
        assert campaign is not None
        states = await store.delivery_states(campaign.id)
        return {"seconds": seconds, "clock": clock, "states": states, "read_alone": read_alone,
                "plan_alone": plan_alone, "matched": json.loads(campaign.plan).get("members_matched", 0)}
    finally:
        await broker.close()
        await store.close()
        executor.shutdown()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=100_000, metavar="N")
    ap.add_argument("--groups", type=int, default=10, metavar="G")
    ap.add_argument("--channels", default="", help="a channels parameter in the alert, e.g. sms")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = ap.parse_args()
    base = os.environ.get("CAPHUB_AMQP_URL", DEFAULT_URL)
    if shutil.which("rabbitmqctl") is None:
        print("bench/fanout.py needs rabbitmqctl (to make a virtual host of its own)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="caphub-bench-fanout-"))
    vhost = None
    try:
        t0 = time.perf_counter()
        asyncio.run(setup(tmp / "data", args.members, args.groups))
        alert_id = asyncio.run(post_alert(tmp / "data", args.channels))
        print(f"fan-out: {args.members:,} members in {args.groups} groups (set up in "
              f"{time.perf_counter() - t0:.1f} s, not timed), channels: "
              f"{args.channels or 'the groups defaults for an urgent alert (sms, voice, email)'}; "
              f"{os.cpu_count()} CPU(s)")
        vhost, url = make_vhost(base)
        r = asyncio.run(timed_route(tmp / "data", url, alert_id))
        clock: Clock = r["clock"]
        sizes = {topic: ns for topic, ns in clock.sizes.items() if topic in CHANNEL_QUEUES.values()}
        base_s = asyncio.run(baseline(url, sizes))

        deliveries = sum(r["states"].values())
        queued = sum(n for (_, state), n in r["states"].items() if state == "queued")
        batches = sum(len(ns) for ns in sizes.values())
        body = sum(sum(ns) for ns in sizes.values()) / max(1, batches)
        s = r["seconds"]
        print(f"  members matched {r['matched']:,}; deliveries {deliveries:,} (queued {queued:,}): "
              + ", ".join(f"{t.split('.', 1)[1]} {len(ns)} batches"
                          for t, ns in sizes.items())
              + f"; {batches} batches of {body / 1024:.1f} KB on average")
        print(f"  baseline (aio-pika alone)   {batches / base_s:9,.0f} batches/s  {base_s:6.2f} s "
              f"(same {batches} bodies, confirms, window {IN_FLIGHT})")
        print(f"  cap-hub Router.route        {deliveries / s:9,.0f} deliveries/s  {s:6.2f} s")
        print(f"  ratio                       {s / base_s:9.2f}x the baseline's time")
        spent = dict(clock.spent)
        rest = s - sum(spent.values())
        split = ", ".join(f"{k} {v:.2f} s" for k, v in spent.items())
        print(f"  split of the timed run      {split}, plan and the rest {rest:.2f} s")
        print(f"  alone, before the run       directory read {r['read_alone']:.2f} s, "
              f"Directory.from_rows + plan_campaign {r['plan_alone']:.2f} s")
        ok = "met" if s < TARGET_S else "MISSED"
        print(f"  target                      < {TARGET_S:g} s: {ok} ({s:.2f} s)")
        return 0
    finally:
        if vhost is not None:
            try:
                ctl("delete_vhost", vhost)
            except (OSError, subprocess.SubprocessError) as exc:
                print(f"could not delete the virtual host {vhost}: {exc}", file=sys.stderr)
        finish(tmp, args.keep)


if __name__ == "__main__":
    sys.exit(main())
