"""The push stage: partner subscriptions and WebSub pings, on the broker like every stage.

Three queues, declared with the topology (``declare``) so nothing published before the stage
starts is lost on RabbitMQ:

* ``push.plan`` (``alert.accepted``): for a public Actual Alert, Update or Cancel, the
  subscriptions whose filters it (or an alert it updates or cancels) meets each get one
  pending row in the store (``push_deliveries``; once per subscription and alert, so an
  event delivered twice plans nothing more) and one ``push.deliver`` message.
* ``push.deliver``: one message per (subscription, alert). Its handler POSTs the hub-signed
  CAP (``hub.partners`` says how it is signed); 2xx delivers it; anything else raises
  ``Retry`` with exponential back-off (the broker's retry queues hold it meanwhile), until
  the subscription's retry period runs out: then the row is marked failed with the last
  error and the message is rejected to the dead letters. A slow partner holds at most
  ``PER_SUBSCRIPTION`` POSTs, each at most ``push.timeout`` seconds; its other messages wait
  in the retry queues, never in front of another partner's (``Push._take_slot``).
* ``websub`` (``alert.accepted``, ``alert.expired``): when a WebSub hub is configured, a
  change to what a feed shows is announced with ``hub.mode=publish`` and ``hub.url`` = the
  feed's URL (one POST per feed), retried a few times with back-off.

On RabbitMQ, ``push.plan`` also publishes each change's hub-signed CAP to the fan-out
exchange ``cap.public`` (``[push] public_exchange``, ``hub.broker.public``), where partners
with RabbitMQ access bind queues of their own.

The store is the source of truth: at start-up, pending deliveries the broker may have lost
are handed to it again (``republish``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlencode

from hub.broker.base import Broker, Consumer, Message, Reject, Retry
from hub.cap.model import Alert
from hub.cap.parse import parse
from hub.config import Settings
from hub.domain import StoredAlert
from hub.errors import BrokerError
from hub.outputs.feed import CAP_TYPE, FeedFilter, FilterError
from hub.outputs.push_http import PostError
from hub.partners import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    PushDelivery,
    PushState,
    Subscription,
    event_of,
    give_up,
    matches,
    retry_delay,
    signature,
)
from hub.services.events import alert_event

log = logging.getLogger(__name__)

PLAN_QUEUE = "push.plan"
PLAN_TOPICS = ("alert.accepted",)
DELIVER_QUEUE = "push.deliver"
DELIVER_TOPICS = ("push.deliver",)
WEBSUB_QUEUE = "websub"
WEBSUB_TOPICS = ("alert.accepted", "alert.expired")
PER_SUBSCRIPTION = 4  # POSTs in flight to one subscription at once
BUSY_DELAY = 0.5  # seconds a message for a busy subscription waits in a retry queue
BUSY_WAIT = 1.0  # seconds a message may wait in hand for a healthy subscription's free slot
SLOW = 1.0  # seconds: a try that took longer leaves its subscription degraded
WEBSUB_ATTEMPTS = 8
# The broker's own attempt limit is not what ends a push (the retry period is); a busy
# subscription's messages come back often without being tried.
UNBOUNDED_ATTEMPTS = 1_000_000
REPUBLISH_PAGE = 10_000  # pending deliveries read and handed to the broker at once at start-up

Count = Callable[[str], None]  # a metric: "delivered", "retried", "failed", "websub-ok", ...


async def declare(broker: Broker, settings: Settings) -> None:
    """The push stage's queues, declared with the rest of the topology (``websub`` only
    when a WebSub hub is configured: nobody would empty it otherwise)."""
    await broker.declare(PLAN_QUEUE, PLAN_TOPICS)
    await broker.declare(DELIVER_QUEUE, DELIVER_TOPICS)
    if settings.feeds.websub_hub:
        await broker.declare(WEBSUB_QUEUE, WEBSUB_TOPICS)


class PushStore(Protocol):
    async def alert(self, alert_id: int) -> StoredAlert | None: ...

    async def subscriptions(self, *, entity_id: int | None = None) -> list[Subscription]: ...

    async def subscription(self, subscription_id: int) -> Subscription | None: ...

    async def open_pushes(self, alert_id: int, event: str, subscription_ids: Sequence[int], *,
                          at: datetime) -> list[int]: ...

    async def push_delivery(self, delivery_id: int) -> PushDelivery | None: ...

    async def mark_published(self, delivery_ids: Sequence[int], *, at: datetime) -> None: ...

    async def push_outcome(self, delivery_id: int, state: PushState, *, error: str | None,
                           at: datetime, due: datetime | None = None) -> None: ...

    async def pending_pushes(self, *, published_before: datetime | None,
                             limit: int = 10_000) -> list[int]: ...


class Poster(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int: ...


class HttpPosterLike(Poster, Protocol):
    async def close(self) -> None: ...


class Publisher(Protocol):
    """The ``cap.public`` fan-out exchange (``hub.broker.public``)."""

    async def start(self) -> None: ...

    async def publish(self, body: bytes, headers: Mapping[str, str]) -> None: ...

    async def close(self) -> None: ...


def public_base(settings: Settings) -> str:
    """The scheme://host[:port] feed links and WebSub topics start with."""
    if settings.feeds.base_url:
        return settings.feeds.base_url.rstrip("/")
    tls = bool(settings.http.tls_cert)
    return f"{'https' if tls else 'http'}://{settings.http.host}:{settings.http.port}"


def delivery_body(delivery_id: int) -> bytes:
    return json.dumps({"id": delivery_id}).encode()


@dataclass
class Push:
    """The handlers of ``push.plan`` and ``push.deliver``."""

    store: PushStore
    broker: Broker
    poster: Poster
    countersign: Callable[[StoredAlert], Awaitable[bytes]]
    timeout: float = 10.0
    retry_for: float = 86400.0
    first_retry: float = 5.0
    max_retry: float = 1800.0
    count: Count = lambda _: None
    executor: Executor | None = None
    public: Publisher | None = None  # the cap.public fan-out exchange, on RabbitMQ
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _busy: Counter[int] = field(default_factory=Counter)
    _freed: dict[int, asyncio.Condition] = field(default_factory=dict)  # a slot of a subscription freed
    _degraded: set[int] = field(default_factory=set)  # subscriptions whose last try failed or was slow
    _in_flight: set[int] = field(default_factory=set)  # delivery ids being tried in this process
    _filters: dict[tuple[int, str], FeedFilter] = field(default_factory=dict)

    # --- planning -------------------------------------------------------------------------

    async def plan(self, message: Message) -> None:
        """``push.plan``: one pending delivery and one message per matching subscription."""
        event, alert_id, references = alert_event(message.body)
        if event.get("scope") != "Public" or event.get("status") != "Actual" or \
                event.get("msgType") not in ("Alert", "Update", "Cancel") or event.get("simulation"):
            return  # never pushed: nothing to read
        subscriptions = await self.store.subscriptions()
        if not subscriptions and self.public is None:
            return
        alert = await self._parsed(alert_id)
        if alert is None:
            raise Reject(f"no alert {alert_id}, or it no longer parses")
        kind = event_of(alert)
        if kind is None:
            return
        if subscriptions:
            referenced = [a for a in [await self._parsed(r) for r in references] if a is not None]
            wanted = [s.id for s in subscriptions if self._wants(s, alert, referenced)]
            ids = await self.store.open_pushes(alert_id, kind.value, wanted, at=self.clock())
            await self.hand_over(ids)
        if self.public is not None:  # last: a retry of this event repeats only what failed
            stored = await self.store.alert(alert_id)
            assert stored is not None  # _parsed read it
            body = await self.countersign(stored)
            try:
                await self.public.publish(body, {"x-cap-event": kind.value, "x-cap-alert": str(alert_id)})
            except BrokerError as exc:
                raise Retry(f"cap.public: {exc}", self.first_retry) from exc

    async def hand_over(self, delivery_ids: Sequence[int]) -> None:
        if not delivery_ids:
            return
        await self.broker.publish_many(DELIVER_TOPICS[0], [delivery_body(i) for i in delivery_ids])
        await self.store.mark_published(delivery_ids, at=self.clock())

    async def republish(self, *, published_before: datetime | None, page: int = REPUBLISH_PAGE) -> int:
        """Hand the broker again what is pending and was not handed to it since
        ``published_before`` (None: only what never was), a page at a time: each page
        handed over is marked published now, so the next read starts past it."""
        total = 0
        while True:
            ids = await self.store.pending_pushes(published_before=published_before, limit=page)
            await self.hand_over(ids)
            total += len(ids)
            if len(ids) < page:
                return total

    async def _parsed(self, alert_id: int) -> Alert | None:
        stored = await self.store.alert(alert_id)
        if stored is None:
            return None
        data = stored.received
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, lambda: parse(data, max_bytes=len(data) + 1).alert)

    def _wants(self, subscription: Subscription, alert: Alert, referenced: Sequence[Alert]) -> bool:
        """Whether ``subscription``'s filters take ``alert``. A stored filter that no longer
        parses (written by an older hub) stops that subscription only, never the others."""
        try:
            return matches(self._filter(subscription), alert, referenced)
        except FilterError as exc:
            log.warning("subscription %d skipped: its stored filter %s", subscription.id, exc)
            return False

    def _filter(self, subscription: Subscription) -> FeedFilter:
        key = (subscription.id, subscription.filters)
        found = self._filters.get(key)
        if found is None:
            found = self._filters[key] = subscription.feed_filter()
        return found

    # --- delivering -----------------------------------------------------------------------

    async def deliver(self, message: Message) -> None:
        """``push.deliver``: one POST; ``Retry`` or ``Reject`` say what happens next."""
        try:
            delivery_id = int(json.loads(message.body)["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Reject(f"not a push delivery: {exc}") from exc
        delivery = await self.store.push_delivery(delivery_id)
        if delivery is None:
            raise Reject(f"no push delivery {delivery_id}")
        if delivery.state is not PushState.PENDING or delivery.id in self._in_flight:
            return  # ended before, or being tried now: a message delivered twice
        # Claimed before the next await, until its outcome is stored: a twin message read
        # the same pending row meanwhile.
        self._in_flight.add(delivery.id)
        try:
            await self._try(delivery)
        finally:
            self._in_flight.discard(delivery.id)

    async def _try(self, delivery: PushDelivery) -> None:
        subscription = await self.store.subscription(delivery.subscription_id)
        if subscription is None:  # removed meanwhile: planned after its removal marked its rows failed
            await self.store.push_outcome(delivery.id, PushState.FAILED, error="subscription removed",
                                          at=self.clock())
            return
        sid = subscription.id
        await self._take_slot(sid)
        started = asyncio.get_running_loop().time()
        try:
            error = await self._post(subscription, delivery)
        finally:
            await self._free_slot(sid)
        if error is not None or asyncio.get_running_loop().time() - started > SLOW:
            self._degraded.add(sid)
        else:
            self._degraded.discard(sid)
        now = self.clock()
        if error is None:
            await self.store.push_outcome(delivery.id, PushState.DELIVERED, error=None, at=now)
            self.count("delivered")
            return
        tries = delivery.attempts + 1
        delay = retry_delay(tries, self.first_retry, self.max_retry)
        if give_up(delivery.created_at, now, delay, self.retry_for):
            await self.store.push_outcome(delivery.id, PushState.FAILED, error=error, at=now)
            self.count("failed")
            log.warning("push delivery %d to subscription %d failed for good after %d tries: %s",
                        delivery.id, subscription.id, tries, error)
            raise Reject(f"push delivery {delivery.id}: gave up after {tries} tries: {error}")
        await self.store.push_outcome(delivery.id, PushState.PENDING, error=error, at=now,
                                      due=now + timedelta(seconds=delay))
        self.count("retried")
        raise Retry(f"push delivery {delivery.id}: {error}", delay)

    async def _take_slot(self, sid: int) -> None:
        """One of the subscription's ``PER_SUBSCRIPTION`` slots, or ``Retry``. A healthy
        partner frees a slot within moments, so a message waits a little for one (a burst to
        one partner goes out at its pace). A degraded partner (its last try failed or was
        slow) may hold its slots for ``timeout`` seconds: its message goes back to a retry
        queue at once, and holds none of the consumer's slots that other partners need."""
        if self._busy[sid] >= PER_SUBSCRIPTION:
            if sid in self._degraded:
                raise Retry(f"subscription {sid} busy", max(BUSY_DELAY, self.timeout / 2))
            freed = self._freed.setdefault(sid, asyncio.Condition())
            try:
                async with asyncio.timeout(BUSY_WAIT), freed:
                    await freed.wait_for(lambda: self._busy[sid] < PER_SUBSCRIPTION)
                    self._busy[sid] += 1
                    return
            except TimeoutError:
                raise Retry(f"subscription {sid} busy", BUSY_DELAY) from None
        self._busy[sid] += 1

    async def _free_slot(self, sid: int) -> None:
        self._busy[sid] -= 1
        if not self._busy[sid]:
            del self._busy[sid]
        freed = self._freed.get(sid)
        if freed is not None:
            async with freed:
                freed.notify()

    async def _post(self, subscription: Subscription, delivery: PushDelivery) -> str | None:
        """None when the partner took it; else what went wrong."""
        stored = await self.store.alert(delivery.alert_id)
        if stored is None:
            return f"alert {delivery.alert_id} is gone"
        body = await self.countersign(stored)
        headers = {
            "Content-Type": f"{CAP_TYPE}; charset=utf-8",
            SIGNATURE_HEADER: signature(subscription.secret, body),
            EVENT_HEADER: delivery.event.value,
            DELIVERY_HEADER: str(delivery.id),
        }
        try:
            async with asyncio.timeout(self.timeout + 1):  # the poster's own bound, and a backstop
                status = await self.poster.post(subscription.url, body, headers)
        except PostError as exc:
            return str(exc)
        except TimeoutError:
            return f"no answer within {self.timeout:g} s"
        return None if 200 <= status < 300 else f"HTTP {status}"


@dataclass
class WebSub:
    """The handler of ``websub``: announce each change of a feed to the WebSub hub."""

    store: PushStore
    poster: Poster
    hub_url: str
    base_url: str
    count: Count = lambda _: None
    first_retry: float = 2.0
    max_retry: float = 300.0

    def topics(self, status: str, scope: str) -> list[str]:
        """The feeds whose content a change of such an alert changes."""
        if scope != "Public":
            return []
        if status == "Actual":
            paths = ["/feeds/alerts.atom", "/feeds/alerts.rss"]
        elif status in ("Exercise", "Test"):
            paths = ["/feeds/test.atom"]
        else:
            return []
        return [self.base_url + p for p in paths]

    async def handle(self, message: Message) -> None:
        event, alert_id, _ = alert_event(message.body)
        if event.get("msgType") in ("Ack", "Error"):
            return  # answers never show in a feed
        if "status" in event and "scope" in event:
            status, scope = str(event["status"]), str(event["scope"])
        else:  # alert.expired carries the id only
            stored = await self.store.alert(alert_id)
            if stored is None:
                return
            status, scope = stored.status, stored.scope
        for topic in self.topics(status, scope):
            await self.ping(topic, message.attempt)

    async def ping(self, topic: str, attempt: int = 1) -> None:
        body = urlencode({"hub.mode": "publish", "hub.url": topic}).encode()
        try:
            status = await self.poster.post(
                self.hub_url, body, {"Content-Type": "application/x-www-form-urlencoded"})
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except PostError as exc:
            error = str(exc)
        if error is None:
            self.count("websub-ok")
            return
        self.count("websub-failed")
        raise Retry(f"WebSub ping: {error}", retry_delay(attempt, self.first_retry, self.max_retry))


@dataclass
class PushStage:
    """The push stage as ``Hub.start`` runs it: its handlers, consumers and HTTP client."""

    push: Push
    websub: WebSub | None
    poster: HttpPosterLike
    concurrency: int = 64
    consumers: list[Consumer] = field(default_factory=list)
    websub_poster: HttpPosterLike | None = None  # the WebSub hub's: an address the settings give

    async def start(self, broker: Broker, *, published_before: datetime | None) -> None:
        if self.push.public is not None:
            await self.push.public.start()
        await self.push.republish(published_before=published_before)
        self.consumers.append(await broker.consume(PLAN_QUEUE, PLAN_TOPICS, self.push.plan, prefetch=8))
        self.consumers.append(await broker.consume(
            DELIVER_QUEUE, DELIVER_TOPICS, self.push.deliver, prefetch=max(1, self.concurrency),
            max_attempts=UNBOUNDED_ATTEMPTS))
        if self.websub is not None:
            self.consumers.append(await broker.consume(
                WEBSUB_QUEUE, WEBSUB_TOPICS, self.websub.handle, prefetch=4, max_attempts=WEBSUB_ATTEMPTS))

    async def stop(self) -> None:
        for consumer in self.consumers:
            await consumer.cancel()
        self.consumers.clear()
        await self.poster.close()
        if self.websub_poster is not None:
            await self.websub_poster.close()
        if self.push.public is not None:
            await self.push.public.close()


def build_stage(settings: Settings, store: PushStore, broker: Broker,
                countersign: Callable[[StoredAlert], Awaitable[bytes]], *, count: Count,
                executor: Executor | None = None) -> PushStage:
    """The push stage the settings describe (``[push]``, ``[feeds] websub_hub``)."""
    from hub.outputs.push_http import HttpPoster  # aiohttp's client only where it is used

    p = settings.push
    poster = HttpPoster(timeout=p.timeout, limit=p.concurrency + 8, allow_private=p.allow_private)
    # The WebSub hub is the administrator's choice, often on the hub's own network.
    websub_poster = HttpPoster(timeout=p.timeout, limit=8, allow_private=True) \
        if settings.feeds.websub_hub else None
    public: Publisher | None = None
    if settings.amqp.url and p.public_exchange:
        from hub.broker.public import PublicExchange  # aio-pika only when it is used

        public = PublicExchange(settings.amqp.url, p.public_exchange, prefix=settings.amqp.prefix)
    push = Push(store, broker, poster, countersign, timeout=p.timeout, retry_for=p.retry_for,
                first_retry=p.first_retry, max_retry=p.max_retry, count=count, executor=executor,
                public=public)
    websub = WebSub(store, websub_poster, settings.feeds.websub_hub, public_base(settings), count=count) \
        if websub_poster is not None else None
    return PushStage(push, websub, poster, p.concurrency, websub_poster=websub_poster)
