"""Push to partners and WebSub pings end to end: a real Hub (its push stage on the embedded broker
and on RabbitMQ), alerts posted through ingest, and real HTTP receivers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from aiohttp import web

from hub.broker.base import Message
from hub.broker.memory import MemoryBroker
from hub.cap.trust import TrustStore
from hub.cap.verify import SignaturePolicy, verify
from hub.cli import main
from hub.config import AmqpSettings, FeedsSettings, PushSettings, Settings, SignatureSettings
from hub.domain import EntityType, Role
from hub.partners import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, PushState, verify_signature
from hub.services import admin
from hub.services import subscriptions as subs
from hub.services.push import Push, delivery_body
from hub.wiring import STORE_FILE, Hub
from tests.broker.conftest import Rabbit, rabbit
from tests.services.test_router import post

__all__ = ["rabbit"]

Keys = dict[str, tuple[bytes, bytes]]
SECRET = "s3cret-shared-with-the-partner"
SENDER = "pz@example.be"
LIEGE = ("<area><areaDesc>Luik</areaDesc><circle>50.63,5.57 3</circle>"
         "<geocode><valueName>postcode</valueName><value>4000</value></geocode></area>")
BRUSSELS = ("<area><areaDesc>Centrum</areaDesc><polygon>50.83,4.33 50.83,4.38 50.87,4.38 50.87,4.33 "
            "50.83,4.33</polygon></area>")


def cap(ident: str, *, msg_type: str = "Alert", references: str = "", status: str = "Actual",
        severity: str = "Severe", area: str = BRUSSELS, scope: str = "Public",
        expires_in: timedelta = timedelta(hours=1)) -> tuple[bytes, str]:
    sent = datetime.now(UTC).replace(microsecond=0)
    refs = f"<references>{references}</references>" if references else ""
    info = "" if msg_type == "Cancel" else (
        f"<info><language>nl-BE</language><category>Safety</category><event>Brand</event>"
        f"<urgency>Immediate</urgency><severity>{severity}</severity><certainty>Observed</certainty>"
        f"<expires>{(sent + expires_in).isoformat()}</expires><headline>Rook</headline>{area}</info>")
    extra = "<addresses>plp-x</addresses>" if scope == "Private" else ""
    doc = (f'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>{ident}</identifier>'
           f"<sender>{SENDER}</sender><sent>{sent.isoformat()}</sent><status>{status}</status>"
           f"<msgType>{msg_type}</msgType><scope>{scope}</scope>{extra}{refs}{info}</alert>")
    return doc.encode(), f"{SENDER},{ident},{sent.isoformat()}"


@dataclass
class Receiver:
    """A partner's callback: answers ``fail_first`` requests with 503, then 200 (or never, when
    ``hang``); keeps what it was sent."""

    fail_first: int = 0
    hang: bool = False
    status: int = 200
    delay: float = 0.0  # seconds each answer takes
    in_flight: int = 0
    most_in_flight: int = 0
    got: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    tries: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.tries += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if self.hang:
            await asyncio.Event().wait()
        if self.tries <= self.fail_first:
            return web.Response(status=503)
        if self.status >= 300:
            return web.Response(status=self.status)
        self.got.append((body, dict(request.headers)))
        self.arrived.set()
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    made: list[Receiver] = []

    async def make(**kw: object) -> Receiver:
        r = Receiver(**kw)  # type: ignore[arg-type]
        await r.start()
        made.append(r)
        return r

    yield make
    for r in made:
        await r.stop()


@pytest.fixture(params=["memory", "amqp"])
def broker_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


HubFactory = Callable[..., Awaitable[Hub]]


@pytest.fixture
async def make_hub(broker_kind: str, request: pytest.FixtureRequest, tmp_path: Path,
                   keypairs: Keys) -> AsyncIterator[HubFactory]:
    started: list[Hub] = []

    async def make(*, push: PushSettings | None = None, feeds: FeedsSettings | None = None) -> Hub:
        amqp = AmqpSettings()
        if broker_kind == "amqp":
            r: Rabbit = request.getfixturevalue("rabbit")
            amqp = AmqpSettings(url=r.url, prefix=f"p{uuid.uuid4().hex[:8]}.")
        settings = Settings(data_dir=str(tmp_path), signature=SignatureSettings(), amqp=amqp,
                            push=push or PushSettings(first_retry=0.1, max_retry=0.5, timeout=3.0,
                                                      allow_private=True),  # receivers on 127.0.0.1
                            feeds=feeds or FeedsSettings())
        hub = await Hub.start(settings, tmp_path, roles=frozenset({"api", "push"}))
        started.append(hub)
        await admin.add_entity(hub.store, "PZ", EntityType.GROUPS, [SENDER],
                               certificates=[("t", keypairs["police"][1])])
        await admin.add_account(hub.store, "PZ", "dispatch", Role.COORDINATOR)
        return hub

    yield make
    for hub in started:
        await hub.stop()


async def subscribe(hub: Hub, name: str, url: str, **filters: str) -> int:
    found = await subs.add(hub.store, name, url, SECRET, filters, entity_id=None, actor="admin",
                           allow_private=True)  # the receivers listen on 127.0.0.1
    return found.id


async def settled(hub: Hub, subscription_id: int, count: int = 1, timeout: float = 15.0) -> list[PushState]:
    """Wait until ``count`` deliveries of the subscription have ended; their states."""
    async with asyncio.timeout(timeout):
        while True:
            rows = await hub.store.push_deliveries(subscription_id=subscription_id)
            done = [r.state for r in rows if r.state is not PushState.PENDING]
            if len(done) >= count:
                return done
            await asyncio.sleep(0.05)


async def test_a_receiver_that_fails_twice_gets_the_alert_once_with_a_valid_hmac(
        make_hub: HubFactory, receivers: Callable[..., Awaitable[Receiver]], keypairs: Keys) -> None:
    hub = await make_hub()
    partner = await receivers(fail_first=2)
    sid = await subscribe(hub, "media", partner.url)
    alert_id = await post(hub, keypairs, cap("PUSH-1")[0])
    assert await settled(hub, sid) == [PushState.DELIVERED]
    await asyncio.sleep(0.3)  # nothing more comes
    assert partner.tries == 3 and len(partner.got) == 1
    body, headers = partner.got[0]
    assert headers["Content-Type"].startswith("application/cap+xml")
    assert verify_signature(SECRET, body, headers[SIGNATURE_HEADER])
    assert headers[SIGNATURE_HEADER].startswith("sha256=")
    assert not verify_signature("another-secret-entirely", body, headers[SIGNATURE_HEADER])
    assert headers[EVENT_HEADER] == "new"
    stored = await hub.store.alert(alert_id)
    assert stored is not None and body == stored.signed  # the hub-signed CAP document
    hub_trust = TrustStore.from_pem({hub.identity.sender: [hub.identity.cert_pem]})
    result = verify(body, trust=hub_trust, policy=SignaturePolicy(required=True), sender=hub.identity.sender,
                    now=datetime.now(UTC))
    assert result.valid, result.reason
    [row] = await hub.store.push_deliveries(subscription_id=sid)
    assert row.attempts == 3 and headers[DELIVERY_HEADER] == str(row.id)
    text = hub.metrics.render().decode()
    assert 'caphub_pushes_total{outcome="delivered"} 1.0' in text
    assert 'caphub_pushes_total{outcome="retried"} 2.0' in text


async def test_a_receiver_that_never_answers_does_not_block_another(
        make_hub: HubFactory, receivers: Callable[..., Awaitable[Receiver]], keypairs: Keys) -> None:
    hub = await make_hub(push=PushSettings(timeout=5.0, first_retry=0.1, max_retry=0.5, allow_private=True))
    stuck = await receivers(hang=True)
    quick = await receivers()
    await subscribe(hub, "stuck", stuck.url)
    await subscribe(hub, "quick", quick.url)
    started = asyncio.get_running_loop().time()
    for n in range(3):
        await post(hub, keypairs, cap(f"BLOCK-{n}")[0])
    async with asyncio.timeout(4.0):  # under the stuck partner's timeout
        while len(quick.got) < 3:
            await asyncio.sleep(0.02)
    assert asyncio.get_running_loop().time() - started < 4.0
    assert stuck.tries >= 1 and not stuck.got


async def test_filters_cancel_and_update_reach_the_partners_that_got_the_alert(
        make_hub: HubFactory, receivers: Callable[..., Awaitable[Receiver]], keypairs: Keys) -> None:
    hub = await make_hub()
    liege, severe = await receivers(), await receivers()
    liege_id = await subscribe(hub, "liege", liege.url, geocode="postcode=4000")
    severe_id = await subscribe(hub, "severe", severe.url, severity="Severe,Extreme")
    _, brussels_ref = data_ref = cap("BXL")
    await post(hub, keypairs, data_ref[0])
    minor, minor_ref = cap("LUIK", area=LIEGE, severity="Minor")
    await post(hub, keypairs, minor)
    await post(hub, keypairs, cap("EX", status="Exercise")[0])  # never pushed
    await post(hub, keypairs, cap("PRIV", scope="Private")[0])  # never pushed
    await settled(hub, severe_id)
    await settled(hub, liege_id)
    await post(hub, keypairs, cap("CXL", msg_type="Cancel", references=minor_ref)[0])
    await post(hub, keypairs, cap("UPD", msg_type="Update", references=brussels_ref, severity="Extreme")[0])
    await settled(hub, liege_id, 2)
    await settled(hub, severe_id, 2)
    await asyncio.sleep(0.3)
    assert [h[EVENT_HEADER] for _, h in liege.got] == ["new", "cancel"]
    assert [h[EVENT_HEADER] for _, h in severe.got] == ["new", "update"]
    assert b"<identifier>LUIK</identifier>" in liege.got[0][0] and b"CXL" in liege.got[1][0]
    assert all(b"<status>Actual</status>" in body for body, _ in severe.got + liege.got)


async def test_a_delivery_given_up_is_dead_lettered_and_recorded(
        make_hub: HubFactory, receivers: Callable[..., Awaitable[Receiver]], keypairs: Keys,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hub = await make_hub(push=PushSettings(timeout=2.0, first_retry=0.1, max_retry=0.2, retry_for=1.0,
                                                allow_private=True))
    down = await receivers(status=500)
    sid = await subscribe(hub, "down", down.url)
    await post(hub, keypairs, cap("LOST")[0])
    assert await settled(hub, sid) == [PushState.FAILED]
    [row] = await hub.store.push_deliveries(subscription_id=sid)
    assert row.last_error == "HTTP 500" and row.attempts >= 3
    if isinstance(hub.broker, MemoryBroker):
        assert [q for q, _, _ in hub.broker.dead_letters] == ["push.deliver"]
    assert 'caphub_pushes_total{outcome="failed"} 1.0' in hub.metrics.render().decode()
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["admin", "subscription", "list", "--data", str(tmp_path)])
    listed = capsys.readouterr().out
    assert code == 0
    assert "down" in listed and "failed 1" in listed and "last failure" in listed and "HTTP 500" in listed
    assert SECRET not in listed


async def test_websub_hub_is_pinged_on_each_change(
        make_hub: HubFactory, receivers: Callable[..., Awaitable[Receiver]], keypairs: Keys) -> None:
    websub = await receivers()
    base = "https://alerts.example.be"
    hub = await make_hub(feeds=FeedsSettings(websub_hub=websub.url, base_url=base))

    async def pings(count: int) -> list[dict[str, list[str]]]:
        async with asyncio.timeout(10):
            while len(websub.got) < count:
                await asyncio.sleep(0.02)
        return [parse_qs(body.decode()) for body, _ in websub.got]

    data, ref = cap("WS-1")
    await post(hub, keypairs, data)  # new
    got = await pings(2)
    assert {g["hub.url"][0] for g in got} == {f"{base}/feeds/alerts.atom", f"{base}/feeds/alerts.rss"}
    assert all(g["hub.mode"] == ["publish"] for g in got)
    await post(hub, keypairs, cap("WS-2", msg_type="Update", references=ref)[0])  # update
    await pings(4)
    await post(hub, keypairs, cap("WS-T", status="Test")[0])  # the test feed only
    got = await pings(5)
    assert got[4]["hub.url"] == [f"{base}/feeds/test.atom"]
    alert_id = await post(hub, keypairs, cap("WS-3", expires_in=timedelta(seconds=1))[0])
    await pings(7)
    await asyncio.sleep(1.1)
    assert await hub.expire() == [alert_id]  # the sweep: alert.expired
    got = await pings(9)
    assert {g["hub.url"][0] for g in got[7:]} == {f"{base}/feeds/alerts.atom", f"{base}/feeds/alerts.rss"}


@pytest.mark.parametrize("broker_kind", ["amqp"])  # the fan-out exchange is RabbitMQ's
async def test_each_public_change_goes_to_the_cap_public_fanout_exchange(
        make_hub: HubFactory, keypairs: Keys) -> None:
    import aio_pika

    hub = await make_hub()
    connection = await aio_pika.connect(hub.settings.amqp.url)
    async with connection:
        channel = await connection.channel()
        mine = await channel.declare_queue(exclusive=True)  # a partner's own queue
        await mine.bind(f"{hub.settings.amqp.prefix}cap.public")
        data, ref = cap("FAN-1")
        alert_id = await post(hub, keypairs, data)
        await post(hub, keypairs, cap("FAN-X", status="Exercise")[0])  # not public
        await post(hub, keypairs, cap("FAN-2", msg_type="Cancel", references=ref)[0])
        got = []
        async with asyncio.timeout(10):
            while len(got) < 2:
                message = await mine.get(no_ack=True, fail=False)
                if message is None:
                    await asyncio.sleep(0.05)
                    continue
                got.append(message)
        assert [m.headers["x-cap-event"] for m in got] == ["new", "cancel"]
        assert got[0].headers["x-cap-alert"] == str(alert_id)
        assert got[0].content_type == "application/cap+xml"
        stored = await hub.store.alert(alert_id)
        assert stored is not None and got[0].body == stored.signed
        await asyncio.sleep(0.3)
        assert await mine.get(no_ack=True, fail=False) is None  # the Exercise never came


async def test_a_burst_to_one_partner_goes_out_at_its_pace_each_once(
        make_hub: HubFactory, receivers: Callable[..., Awaitable[Receiver]], keypairs: Keys) -> None:
    hub = await make_hub()
    partner = await receivers(delay=0.3)
    sid = await subscribe(hub, "busy", partner.url)
    for n in range(12):  # more than the POSTs one partner may have in flight
        await post(hub, keypairs, cap(f"BURST-{n}")[0])
    assert await settled(hub, sid, 12, timeout=10) == [PushState.DELIVERED] * 12
    await asyncio.sleep(0.3)
    assert partner.tries == 12 and 1 <= partner.most_in_flight <= 4
    assert sorted(h[DELIVERY_HEADER] for _, h in partner.got) == sorted(
        str(r.id) for r in await hub.store.push_deliveries(subscription_id=sid))


@pytest.fixture
async def api_hub(tmp_path: Path, keypairs: Keys) -> AsyncIterator[Hub]:
    """A hub with only the API stage (the push is driven by hand) and the police zone's
    entity and account."""
    hub = await Hub.start(Settings(data_dir=str(tmp_path), signature=SignatureSettings()), tmp_path,
                          roles=frozenset({"api"}))
    try:
        await admin.add_entity(hub.store, "PZ", EntityType.GROUPS, [SENDER],
                               certificates=[("t", keypairs["police"][1])])
        await admin.add_account(hub.store, "PZ", "dispatch", Role.COORDINATOR)
        yield hub
    finally:
        await hub.stop()


async def stub_countersign(stored: object) -> bytes:
    return b"<alert/>"


async def test_a_delivery_message_delivered_twice_at_once_is_posted_once(
        api_hub: Hub, keypairs: Keys) -> None:
    # A twin message (a broker redelivery, or the start-up republish) read the same pending
    # row while the first was still looking up its subscription: one POST, one try counted.
    hub = api_hub
    sid = await subscribe(hub, "twins", "http://127.0.0.1:9/hook")
    alert_id = await post(hub, keypairs, cap("TWIN-1")[0])
    [delivery_id] = await hub.store.open_pushes(alert_id, "new", [sid], at=datetime.now(UTC))
    posts: list[str] = []

    class Poster:
        async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
            posts.append(headers[DELIVERY_HEADER])
            await asyncio.sleep(0.05)
            return 200

    push = Push(hub.store, hub.broker, Poster(), stub_countersign)
    message = Message("push.deliver", delivery_body(delivery_id))
    await asyncio.gather(push.deliver(message), push.deliver(message))
    assert posts == [str(delivery_id)]
    row = await hub.store.push_delivery(delivery_id)
    assert row is not None and row.state is PushState.DELIVERED and row.attempts == 1


async def test_republish_hands_over_every_pending_delivery_not_only_the_first_page(
        api_hub: Hub, keypairs: Keys) -> None:
    hub = api_hub
    sids = [await subscribe(hub, f"p{n}", "http://127.0.0.1:9/hook") for n in range(5)]
    alert_id = await post(hub, keypairs, cap("PAGES-1")[0])
    assert len(await hub.store.open_pushes(alert_id, "new", sids, at=datetime.now(UTC))) == 5

    class Poster:
        async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
            return 200

    push = Push(hub.store, hub.broker, Poster(), stub_countersign)
    assert await push.republish(published_before=None, page=2) == 5
    assert await hub.store.pending_pushes(published_before=None) == []  # each one handed over


async def test_a_delivery_planned_as_its_subscription_was_removed_ends_failed(
        api_hub: Hub, keypairs: Keys) -> None:
    # plan read the subscriptions, then the partner was removed, then plan opened its row:
    # the row must end, not stay pending and be republished at every start-up.
    hub = api_hub
    sid = await subscribe(hub, "gone", "http://127.0.0.1:9/hook")
    alert_id = await post(hub, keypairs, cap("GONE-1")[0])
    await subs.remove(hub.store, sid, entity_id=None, actor="admin")
    [delivery_id] = await hub.store.open_pushes(alert_id, "new", [sid], at=datetime.now(UTC))

    class Poster:
        async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
            raise AssertionError("nothing is posted to a removed subscription")

    push = Push(hub.store, hub.broker, Poster(), stub_countersign)
    await push.deliver(Message("push.deliver", delivery_body(delivery_id)))
    row = await hub.store.push_delivery(delivery_id)
    assert row is not None and row.state is PushState.FAILED and row.last_error == "subscription removed"
    assert await hub.store.pending_pushes(published_before=datetime.now(UTC)) == []


async def test_a_stored_filter_that_no_longer_parses_stops_only_its_own_subscription(
        make_hub: HubFactory, receivers: Callable[..., Awaitable[Receiver]], keypairs: Keys) -> None:
    """A filter written by an older hub that this one refuses: that partner gets nothing,
    every other partner still gets the alert."""
    hub = await make_hub()
    broken, fine = await receivers(), await receivers()
    broken_id = await subscribe(hub, "broken", broken.url, severity="Severe")
    fine_id = await subscribe(hub, "fine", fine.url)
    with sqlite3.connect(tmp_store(hub)) as db:
        db.execute("UPDATE subscriptions SET filters = 'severity=Apocalyptic' WHERE id = ?", (broken_id,))
    await post(hub, keypairs, cap("BXL")[0])
    assert await settled(hub, fine_id) == [PushState.DELIVERED]
    assert len(fine.got) == 1 and broken.got == []
    assert await hub.store.push_deliveries(subscription_id=broken_id) == []


def tmp_store(hub: Hub) -> Path:
    return hub.data_dir / STORE_FILE
