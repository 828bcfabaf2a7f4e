"""The free CAP feeds: ``GET /feeds/alerts.atom``, ``/feeds/alerts.rss`` and ``/feeds/test.atom``.

No token, no charge. ``alerts.*`` shows the active Public Actual alerts; ``test.atom`` the
active Public Exercise and Test ones (never the public feed). Active means in state active
(not cancelled, not superseded by an Update) and not expired at the time of the request,
even if the expiry sweep has not marked it yet. Rendering is :mod:`hub.outputs.feed`.

Caching. Each rendered feed (kind, scheme://host, filters) is kept with the store's *active
mark* at the time it was built: ``Store.active_mark(now)``, the count and sum of the ids of
the alerts active and unexpired at ``now``. Ids only grow, so the pair changes whenever an
alert arrives, changes state, or its expiry passes; it is one aggregate over a partial index.
A request reads the mark (concurrent requests share one query in flight), serves the cached
feed when the mark is the same, and rebuilds it otherwise. A rebuild reads the active alerts
again but parses only those it has not parsed before (a stored message never changes), and
keeps the previous feed, Last-Modified and all, when its entries turn out the same (a change
to alerts outside its filters). This holds with several API processes, since the mark comes
from the store, which a counter bumped by ingest would not.

Manners: a strong ETag (a hash of the bytes; the gzip variant has its own), Last-Modified
(when this process last saw the entries change), 304 for If-None-Match (which wins) or
If-Modified-Since, ``Cache-Control: public, max-age=N`` (``[feeds] max_age``, 60 s), gzip
made once per build, pages under 900 KB linked with ``rel="next"`` (``?page=N``). Links are
absolute: ``[feeds] base_url`` when set, else the request's scheme and Host (no proxy
headers are read). With ``[feeds] websub_hub`` set, the unfiltered feeds name that WebSub hub with
``rel="hub"`` (the push stage, ``hub.services.push``, pings it with their URLs on each change).
A filtered feed names none: its URL is never pinged, so a subscriber to it would wait for
nothing; its readers poll it (ETag, Last-Modified, max-age).

Feeds link each alert to ``/alerts/{id}.cap`` (``/alerts/{id}`` is the same document), which
signs it when first read (``Ingest.countersign``): building a feed never signs anything.
Cancelled, superseded and expired alerts leave the feeds but stay readable there, their
state in ``X-Alert-State``.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime as http_date

from aiohttp import web

from hub.api.common import HUB, problem
from hub.cap.model import Alert
from hub.cap.parse import parse
from hub.domain import StoredAlert
from hub.outputs.feed import (
    ATOM_TYPE,
    MAX_FEED_BYTES,
    NO_INFO,
    RSS_TYPE,
    FeedFilter,
    FeedItem,
    FeedMeta,
    FilterError,
    atom_pages,
    feed_url,
    parse_filters,
    rss_pages,
)
from hub.store.base import Store

log = logging.getLogger(__name__)

MAX_ALERTS = 10_000  # active alerts a feed reads at most
CACHED_FEEDS = 256  # rendered (kind, host, filters) kept, least recently used dropped
PARSED_ALERTS = 20_000  # parsed alerts kept for rebuilds


@dataclass(frozen=True, slots=True)
class FeedKind:
    path: str
    statuses: tuple[str, ...]
    atom: bool  # else RSS 2.0
    title: str


KINDS = (
    FeedKind("/feeds/alerts.atom", ("Actual",), True, "cap-hub: active public alerts"),
    FeedKind("/feeds/alerts.rss", ("Actual",), False, "cap-hub: active public alerts"),
    FeedKind("/feeds/test.atom", ("Exercise", "Test"), True, "cap-hub: active Exercise and Test alerts"),
)


@dataclass(frozen=True, slots=True)
class Page:
    body: bytes
    gzipped: bytes
    digest: str

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'

    @property
    def gzip_etag(self) -> str:
        return f'"{self.digest}-gzip"'


@dataclass(slots=True)
class Built:
    mark: tuple[int, int]
    entries: tuple[tuple[int, int], ...]  # (alert id, info shown): what the bytes depend on
    changed_at: datetime
    pages: list[Page]

    @property
    def last_modified(self) -> datetime:
        """``changed_at`` rounded up to the second (HTTP dates have no fractions), so that a
        client that saw an earlier version within the same second never gets a 304."""
        whole = self.changed_at.replace(microsecond=0)
        return whole if whole == self.changed_at else whole + timedelta(seconds=1)


Key = tuple[str, str, FeedFilter]


class Feeds:
    """The rendered feeds of one process and what tells when to rebuild them."""

    def __init__(self, store: Store, executor: Executor | None, author: str, *,
                 max_bytes: int = MAX_FEED_BYTES, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 max_age: int = 60, base_url: str = "", websub_hub: str = "",
                 simulation: bool = False) -> None:
        self.simulation = simulation  # the whole hub is a simulation environment
        self._store = store
        self._executor = executor
        self._author = author
        self.max_age = max_age
        self.base_url = base_url.rstrip("/")  # "": each request's own scheme://host
        self.websub_hub = websub_hub
        self.max_bytes = max_bytes  # a page at most (tests set it low to see paging)
        self._clock = clock
        self._built: OrderedDict[Key, Built] = OrderedDict()
        self._parsed: OrderedDict[int, Alert | None] = OrderedDict()
        self._mark: asyncio.Future[tuple[int, int]] | None = None
        self._lock = asyncio.Lock()
        self.builds = 0  # rebuilds done (tests and metrics read it)

    async def mark(self) -> tuple[int, int]:
        """The store's active mark; requests that come while one query is in flight share it."""
        if self._mark is None:
            self._mark = asyncio.ensure_future(self._store.active_mark(self._clock()))
            self._mark.add_done_callback(self._mark_done)
        return await asyncio.shield(self._mark)

    def _mark_done(self, _: asyncio.Future[tuple[int, int]]) -> None:
        self._mark = None

    async def get(self, kind: FeedKind, base_url: str, filters: FeedFilter) -> Built:
        key = (kind.path, base_url, filters)
        mark = await self.mark()
        built = self._fresh(key, mark)
        if built is not None:
            return built
        async with self._lock:  # one rebuild at a time; those who waited find it done
            built = self._fresh(key, mark)
            if built is not None:
                return built
            now = self._clock()
            mark = await self._store.active_mark(now)
            active = await self._store.active_alerts(statuses=kind.statuses, now=now, limit=MAX_ALERTS)
            rows, simulated = await self._simulation_rows(kind, active, now)
            loop = asyncio.get_running_loop()
            built = await loop.run_in_executor(
                self._executor, self._build, kind, base_url, filters, rows, mark, now, self._built.get(key),
                simulated)
            self._built[key] = built
            self._built.move_to_end(key)
            while len(self._built) > CACHED_FEEDS:
                self._built.popitem(last=False)
            return built

    async def _simulation_rows(self, kind: FeedKind, rows: Sequence[StoredAlert],
                               now: datetime) -> tuple[Sequence[StoredAlert], frozenset[int]]:
        """The rows to show and the ids of those of the simulation environment, marked as such:
        every alert of a hub in simulation; the Actual alerts of simulation entities, which
        show in test.atom and never in the public feeds."""
        if self.simulation:
            return rows, frozenset(r.id for r in rows)
        if "Actual" in kind.statuses:
            return [r for r in rows if not r.simulation], frozenset()
        extra = [r for r in await self._store.active_alerts(statuses=("Actual",), now=now, limit=MAX_ALERTS)
                 if r.simulation]
        if not extra:
            return rows, frozenset()
        return (sorted([*rows, *extra], key=lambda r: r.received_at, reverse=True),
                frozenset(r.id for r in extra))

    def _fresh(self, key: Key, mark: tuple[int, int]) -> Built | None:
        built = self._built.get(key)
        if built is None or built.mark != mark:
            return None
        self._built.move_to_end(key)
        return built

    def _alert(self, row: StoredAlert) -> Alert | None:
        if row.id in self._parsed:
            self._parsed.move_to_end(row.id)
            return self._parsed[row.id]
        alert = parse(row.received, max_bytes=len(row.received) + 1).alert
        if alert is None:  # it was accepted, so this should not happen; leave it out
            log.warning("stored alert %d no longer parses: left out of the feeds", row.id)
        self._parsed[row.id] = alert
        while len(self._parsed) > PARSED_ALERTS:
            self._parsed.popitem(last=False)
        return alert

    def _build(self, kind: FeedKind, base_url: str, filters: FeedFilter, rows: Sequence[StoredAlert],
               mark: tuple[int, int], now: datetime, previous: Built | None,
               simulated: frozenset[int] = frozenset()) -> Built:
        """In a worker thread (one at a time, under the lock): parse, filter, render, gzip."""
        items: list[FeedItem] = []
        shown_infos: list[tuple[int, int]] = []
        for row in rows:
            alert = self._alert(row)
            shown = None if alert is None else filters.match(alert)
            if alert is None or shown is None:
                continue
            items.append(FeedItem(row.id, alert, None if shown == NO_INFO else alert.infos[shown],
                                  row.id in simulated))
            shown_infos.append((row.id, shown))
        entries = tuple(shown_infos)
        if previous is not None and previous.entries == entries:
            previous.mark = mark
            return previous
        self.builds += 1
        title = f"SIMULATION - {kind.title}" if self.simulation else kind.title
        meta = FeedMeta(title, feed_url(base_url, kind.path, filters), base_url, self._author, now,
                        self.websub_hub if _pinged(filters) else "")
        render = atom_pages if kind.atom else rss_pages
        pages = [Page(body, gzip.compress(body, 6, mtime=0), hashlib.sha256(body).hexdigest()[:32])
                 for body in render(meta, items, max_bytes=self.max_bytes)]
        return Built(mark, entries, now, pages)


FEEDS: web.AppKey[Feeds] = web.AppKey("feeds", Feeds)


def add_routes(app: web.Application) -> None:
    hub = app[HUB]
    settings = hub.settings.feeds
    app[FEEDS] = Feeds(hub.store, hub.executor, hub.settings.hub.sender, max_age=settings.max_age,
                       base_url=settings.base_url, websub_hub=settings.websub_hub,
                       simulation=hub.settings.simulation.enabled)
    for kind in KINDS:
        app.router.add_get(kind.path, _handler(kind))


def _handler(kind: FeedKind) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await serve_feed(request, kind)

    return handle


def _wants_gzip(request: web.Request) -> bool:
    for part in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().lower()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


def _etags(header: str) -> set[str]:
    """The entity tags of an If-None-Match header, compared weakly (RFC 9110 §13.1.2)."""
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


async def serve_feed(request: web.Request, kind: FeedKind) -> web.StreamResponse:
    try:
        filters = parse_filters(request.query)
    except FilterError as exc:
        return problem(400, "bad parameter", str(exc))
    page_no = 1
    if "page" in request.query:
        text = request.query["page"]
        # ASCII digits, and few: int() refuses "²" and numbers of over 4300 digits
        if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
            return problem(400, "bad parameter", "page: a page number from 1")
        page_no = int(text)
    feeds = request.app[FEEDS]
    base_url = feeds.base_url or f"{request.scheme}://{request.host}"
    metrics = request.app[HUB].metrics
    metrics.feed_requests.labels(kind.path).inc()
    built = await feeds.get(kind, base_url, filters)
    if page_no > len(built.pages):
        return problem(404, "not found", f"page: this feed has {len(built.pages)} page(s)")
    page = built.pages[page_no - 1]
    gz = _wants_gzip(request)
    etag = page.gzip_etag if gz else page.etag
    now = datetime.now(UTC)
    # Never later than the time of the answer (RFC 9110 §8.8.2.1).
    last_modified = min(built.last_modified, now.replace(microsecond=0))
    headers = {
        "ETag": etag, "Last-Modified": http_date(last_modified, usegmt=True),
        "Cache-Control": f"public, max-age={feeds.max_age}", "Vary": "Accept-Encoding",
    }
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        tags = _etags(inm)
        if "*" in tags or page.etag in tags or page.gzip_etag in tags:
            metrics.feed_not_modified.labels(kind.path).inc()
            return web.Response(status=304, headers=headers)
    else:
        since = request.if_modified_since
        if since is not None and built.last_modified <= since:
            metrics.feed_not_modified.labels(kind.path).inc()
            return web.Response(status=304, headers=headers)
    if feeds.websub_hub and _pinged(filters):  # WebSub discovery (§4) in HTTP as in the feed
        topic = feed_url(base_url, kind.path, filters)
        headers["Link"] = f'<{feeds.websub_hub}>; rel="hub", <{topic}>; rel="self"'
    headers["Content-Type"] = f"{ATOM_TYPE if kind.atom else RSS_TYPE}; charset=utf-8"
    if gz:
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=page.gzipped if gz else page.body, headers=headers)


def _pinged(filters: FeedFilter) -> bool:
    """Whether the push stage pings the WebSub hub for this feed: the unfiltered ones only
    (``PushStage.topics``), as a filter's combinations are not enumerable."""
    return not filters.query()
