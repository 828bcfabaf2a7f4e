"""CAP index feeds: Atom (RFC 4287) and RSS 2.0 pages of active alerts, and their filters.

Pure: parsed alerts in, bytes out; no clock, no store, no HTTP (``hub.api.feeds`` does that).
The shape follows the OASIS "CAP Feeds" practice: one entry per alert, a unique and stable
entry id (``urn:cap-hub:alert:sender,identifier,sent``), a link to the CAP document with
``type="application/cap+xml"``, and index fields in the ``cap:`` namespace (event, effective,
expires, status, msgType, urgency, severity, certainty, areaDesc, polygon, geocode) taken from
the info the entry shows: the first that meets the filters (the first info without filters).

A feed is cut into pages under ``max_bytes`` (Google Public Alerts takes at most 900 KB),
linked with ``rel="next"``/``"previous"``/``"first"`` (RFC 5005), and names its WebSub hub with
``rel="hub"`` when there is one. An entry too large for a page
by itself (a polygon of many thousands of points) is written without its ``cap:polygon``; the
CAP document behind its link still has them.

Filters (:func:`parse_filters`) come from query parameters; a bad value raises
:class:`FilterError` naming the parameter. Area filters use :mod:`hub.routing.geometry`: an
area is in a ``bbox`` when one of its polygons or circles meets the box, at a ``point`` when one
contains it; an area of geocodes only is in neither (it cannot be told).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime as rfc822
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape, quoteattr

from hub.cap.model import NAMESPACE as CAP_NS
from hub.cap.model import Alert, Area, Info, Point, Severity, Urgency, format_datetime
from hub.routing.geometry import PolygonShape, area_shapes, shape_contains, shape_meets_polygon
from hub.routing.vector import geocode_key

ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_TYPE = "application/cap+xml"
ATOM_TYPE = "application/atom+xml"
RSS_TYPE = "application/rss+xml"
MAX_FEED_BYTES = 900_000
SUMMARY_CHARS = 500
NO_INFO = -1  # what :meth:`FeedFilter.match` answers for a matching alert that has no info

_LANG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
_NUMBER = r"\s*[-+]?(\d+(\.\d*)?|\.\d+)\s*"


class FilterError(ValueError):
    """A query parameter with a value the feed cannot use; ``param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


# --- filters --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedFilter:
    """What a feed keeps. Info-level filters (all but ``since``) must hold on one same info."""

    langs: tuple[str, ...] = ()  # case-folded language tags; "nl" also takes "nl-BE"
    severities: frozenset[Severity] = frozenset()
    urgencies: frozenset[Urgency] = frozenset()
    event: str | None = None  # case-folded
    geocodes: tuple[tuple[str | None, str], ...] = ()  # (valueName as geocode_key folds it, value)
    bbox: tuple[float, float, float, float] | None = None  # min lon, min lat, max lon, max lat
    point: Point | None = None
    since: datetime | None = None  # alerts sent at or after

    @property
    def about_infos(self) -> bool:
        return bool(self.langs or self.severities or self.urgencies or self.event is not None
                    or self.geocodes or self.bbox is not None or self.point is not None)

    def query(self) -> list[tuple[str, str]]:
        """The filter as canonical query parameters (the feed's self link and id use them)."""
        out: list[tuple[str, str]] = []
        if self.langs:
            out.append(("lang", ",".join(self.langs)))
        if self.severities:
            out.append(("severity", ",".join(sorted(s.value for s in self.severities))))
        if self.urgencies:
            out.append(("urgency", ",".join(sorted(u.value for u in self.urgencies))))
        if self.event is not None:
            out.append(("event", self.event))
        if self.geocodes:
            out.append(("geocode", ",".join(v if n is None else f"{n}={v}" for n, v in self.geocodes)))
        if self.bbox is not None:
            out.append(("bbox", ",".join(_coordinate(c) for c in self.bbox)))
        if self.point is not None:
            out.append(("point", f"{_coordinate(self.point.lat)},{_coordinate(self.point.lon)}"))
        if self.since is not None:
            out.append(("since", self.since.isoformat()))
        return out

    def match(self, alert: Alert) -> int | None:
        """The position of the info an entry of ``alert`` shows (the first that meets every
        filter); :data:`NO_INFO` for an alert without infos when no filter asks about infos;
        None when the alert is not in the feed."""
        if self.since is not None and alert.sent < self.since:
            return None
        if not alert.infos:
            return None if self.about_infos else NO_INFO
        for i, info in enumerate(alert.infos):
            if self._info_matches(info):
                return i
        return None

    def _info_matches(self, info: Info) -> bool:
        if self.langs:
            lang = info.lang.casefold()
            if not any(lang == want or lang.startswith(want + "-") for want in self.langs):
                return False
        if self.severities and info.severity not in self.severities:
            return False
        if self.urgencies and info.urgency not in self.urgencies:
            return False
        if self.event is not None and info.event.strip().casefold() != self.event:
            return False
        if self.geocodes and not any(self._geocode_in(area) for area in info.areas):
            return False
        if self.bbox is not None and not any(self._meets_box(area) for area in info.areas):
            return False
        point = self.point
        if point is not None:
            if not any(shape_contains(s, point) for area in info.areas for s in area_shapes(area)):
                return False
        return True

    def _geocode_in(self, area: Area) -> bool:
        keys = [geocode_key(g.value_name, g.value) for g in area.geocodes]
        for name, value in self.geocodes:
            if any(v == value and (name is None or n == name) for n, v in keys):
                return True
        return False

    def _meets_box(self, area: Area) -> bool:
        assert self.bbox is not None
        west, south, east, north = self.bbox
        corners = (Point(south, west), Point(south, east), Point(north, east), Point(north, west))
        box = PolygonShape((*corners, corners[0]))
        return any(shape_meets_polygon(shape, box) for shape in area_shapes(area))


def _coordinate(value: float) -> str:
    """A coordinate as :func:`parse_filters` reads it back, exactly: no exponent ("1e-05"), no
    rounding (a subscription stores its filters as this text)."""
    text = repr(value)
    if "e" in text:
        text = format(value, ".20f").rstrip("0")
    return text.removesuffix(".0").rstrip(".")


def _words(value: str) -> list[str]:
    return [w.strip() for w in value.split(",") if w.strip()]


def _enum_set(param: str, value: str, kinds: type[Severity] | type[Urgency]) -> frozenset[str]:
    names = {k.value.casefold(): k.value for k in kinds}
    words = _words(value)
    if not words:
        raise FilterError(param, "is empty")
    out = set()
    for word in words:
        if word.casefold() not in names:
            raise FilterError(param, f"{word!r} is not one of {', '.join(k.value for k in kinds)}")
        out.add(names[word.casefold()])
    return frozenset(out)


def _numbers(param: str, value: str, count: int, form: str) -> list[float]:
    parts = value.split(",")
    if len(parts) != count or not all(re.fullmatch(_NUMBER, p) for p in parts):
        raise FilterError(param, f"{value!r} is not {form}")
    return [float(p) for p in parts]


def _check_point(param: str, lat: float, lon: float) -> None:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise FilterError(param, "latitudes lie in [-90, 90], longitudes in [-180, 180]")


def parse_filters(query: Mapping[str, str]) -> FeedFilter:  # noqa: C901 - one branch per parameter
    """The filter the query parameters ask for; parameters it does not know are ignored.

    ``lang`` (language tags, comma-separated), ``severity`` and ``urgency`` (CAP values,
    comma-separated, any case), ``event`` (equal, any case), ``geocode`` (``valueName=value`` or
    ``value``, comma-separated), ``bbox`` (``minlon,minlat,maxlon,maxlat``) or ``point``
    (``lat,lon``), ``since`` (ISO date-time with an offset). Raises :class:`FilterError`.
    """
    langs: tuple[str, ...] = ()
    if "lang" in query:
        langs = tuple(dict.fromkeys(w.casefold() for w in _words(query["lang"])))
        bad = [w for w in langs if not _LANG.match(w)]
        if not langs or bad:
            raise FilterError("lang", f"{query['lang']!r} is not a comma-separated list of language tags")
    severities = frozenset(Severity(v) for v in _enum_set("severity", query["severity"], Severity)) \
        if "severity" in query else frozenset()
    urgencies = frozenset(Urgency(v) for v in _enum_set("urgency", query["urgency"], Urgency)) \
        if "urgency" in query else frozenset()
    event = None
    if "event" in query:
        event = query["event"].strip().casefold()
        if not event:
            raise FilterError("event", "is empty")
    geocodes: list[tuple[str | None, str]] = []
    if "geocode" in query:
        for word in _words(query["geocode"]):
            name, sep, value = word.partition("=")
            if sep and (not name.strip() or not value.strip()):
                raise FilterError("geocode", f"{word!r} is not valueName=value")
            geocodes.append(geocode_key(name, value) if sep else (None, word))
        if not geocodes:
            raise FilterError("geocode", "is empty")
    if "bbox" in query and "point" in query:
        raise FilterError("bbox", "give bbox or point, not both")
    bbox = None
    if "bbox" in query:
        west, south, east, north = _numbers("bbox", query["bbox"], 4, "minlon,minlat,maxlon,maxlat")
        _check_point("bbox", south, west)
        _check_point("bbox", north, east)
        if west > east or south > north:
            raise FilterError("bbox", "the minimum comes before the maximum: minlon,minlat,maxlon,maxlat")
        bbox = (west, south, east, north)
    point = None
    if "point" in query:
        lat, lon = _numbers("point", query["point"], 2, "lat,lon")
        _check_point("point", lat, lon)
        point = Point(lat, lon)
    since = None
    if "since" in query:
        text = query["since"].strip().replace(" ", "+")  # an unescaped "+" in a URL reads as a space
        try:
            since = datetime.fromisoformat(text)
        except ValueError as exc:
            raise FilterError("since", f"{query['since']!r} is not an ISO 8601 date-time") from exc
        if since.tzinfo is None:
            raise FilterError("since", "needs a time zone offset (Z, +01:00...)")
    return FeedFilter(langs, severities, urgencies, event, tuple(dict.fromkeys(geocodes)), bbox, point, since)


# --- rendering ------------------------------------------------------------------------------


SIMULATION_MARK = "[SIMULATION] "


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One alert as a feed shows it: ``info`` is the one :meth:`FeedFilter.match` chose."""

    alert_id: int
    alert: Alert
    info: Info | None
    simulation: bool = False  # of the simulation environment: its title says so

    @property
    def entry_id(self) -> str:
        """Stable and unique: the CAP key, which no other message may carry."""
        key = f"{self.alert.sender},{self.alert.identifier},{format_datetime(self.alert.sent)}"
        return "urn:cap-hub:alert:" + quote(key, safe="@,:+!$'()*;=-._~")

    def title(self) -> str:
        mark = SIMULATION_MARK if self.simulation else ""
        info = self.info
        if info is not None:
            return mark + ((info.headline or "").strip() or info.event)
        return f"{mark}{self.alert.msg_type.value} {self.alert.identifier}"

    def summary(self) -> str:
        info = self.info
        if info is None:
            return self.alert.note or self.title()
        text = " ".join((info.description or info.headline or info.event).split())
        return text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class FeedMeta:
    """What the feed says about itself. ``self_url`` is the absolute URL of its first page,
    ``base_url`` (scheme://host) what the CAP links start with."""

    title: str
    self_url: str
    base_url: str
    author: str
    updated: datetime
    websub_hub: str = ""  # a WebSub hub to name with rel="hub"; "" for none

    def page_url(self, page: int) -> str:
        if page == 1:
            return self.self_url
        return self.self_url + ("&" if "?" in self.self_url else "?") + urlencode({"page": page})

    def cap_url(self, item: FeedItem) -> str:
        return f"{self.base_url}/alerts/{item.alert_id}.cap"


def feed_url(base_url: str, path: str, filters: FeedFilter) -> str:
    """The canonical absolute URL of a feed with these filters."""
    query = filters.query()
    return f"{base_url}{path}" + (f"?{urlencode(query)}" if query else "")


def _t(text: str) -> str:
    return escape(text)


def _a(text: str) -> str:
    return quoteattr(text)


def _atom_time(value: datetime) -> str:
    return value.replace(microsecond=0).isoformat()


def _cap_fields(item: FeedItem, *, polygons: bool) -> list[str]:
    """The ``cap:`` index fields of one entry, as the CAP feeds practice names them."""
    alert, info = item.alert, item.info
    out: list[str] = []

    def add(name: str, value: str | None) -> None:
        if value:
            out.append(f"<cap:{name}>{_t(value)}</cap:{name}>")

    add("identifier", alert.identifier)
    add("sender", alert.sender)
    add("sent", format_datetime(alert.sent))
    if info is not None:
        add("event", info.event)
        add("effective", format_datetime(info.effective or alert.sent))
        add("expires", format_datetime(info.expires) if info.expires else None)
    add("status", alert.status.value)
    add("msgType", alert.msg_type.value)
    add("scope", alert.scope.value)
    if info is None:
        return out
    add("language", info.lang)
    add("urgency", info.urgency.value)
    add("severity", info.severity.value)
    add("certainty", info.certainty.value)
    add("areaDesc", "; ".join(a.area_desc for a in info.areas))
    for area in info.areas:
        if polygons:
            for polygon in area.polygons:
                add("polygon", polygon.text.strip())
        for circle in area.circles:
            add("circle", circle.text.strip())
        for g in area.geocodes:
            out.append(f"<cap:geocode><cap:valueName>{_t(g.value_name)}</cap:valueName>"
                       f"<cap:value>{_t(g.value)}</cap:value></cap:geocode>")
    return out


def atom_entry(meta: FeedMeta, item: FeedItem, *, polygons: bool = True) -> str:
    info = item.info
    lang = f" xml:lang={_a(info.lang)}" if info is not None else ""
    author = (info.sender_name if info is not None else None) or item.alert.sender
    sent = _atom_time(item.alert.sent)
    return "".join((
        f"<entry{lang}>",
        f"<id>{_t(item.entry_id)}</id>",
        f"<title>{_t(item.title())}</title>",
        f"<updated>{sent}</updated><published>{sent}</published>",
        f"<author><name>{_t(author)}</name></author>",
        f"<summary>{_t(item.summary())}</summary>",
        f'<link rel="alternate" type="{CAP_TYPE}" href={_a(meta.cap_url(item))}/>',
        *_cap_fields(item, polygons=polygons),
        "</entry>\n",
    ))


def rss_item(meta: FeedMeta, item: FeedItem, *, polygons: bool = True) -> str:
    url = _a(meta.cap_url(item))
    return "".join((
        "<item>",
        f"<title>{_t(item.title())}</title>",
        f"<link>{_t(meta.cap_url(item))}</link>",
        f"<description>{_t(item.summary())}</description>",
        f'<guid isPermaLink="false">{_t(item.entry_id)}</guid>',
        f"<pubDate>{rfc822(item.alert.sent)}</pubDate>",
        # The RSS Advisory Board's profile: length 0 when the size is not known (the hub
        # signs a CAP document when it is first read, not when the feed is built).
        f'<enclosure url={url} length="0" type="{CAP_TYPE}"/>',
        f'<atom:link rel="alternate" type="{CAP_TYPE}" href={url}/>',
        *_cap_fields(item, polygons=polygons),
        "</item>\n",
    ))


def _page_links(meta: FeedMeta, page: int, pages: int, tag: str) -> str:
    links = [(rel, n) for rel, n, shown in (
        ("self", page, True), ("first", 1, pages > 1),
        ("previous", page - 1, page > 1), ("next", page + 1, page < pages)) if shown]
    kind = ATOM_TYPE if tag == "link" else RSS_TYPE
    hub = f'<{tag} rel="hub" href={_a(meta.websub_hub)}/>' if meta.websub_hub else ""
    return hub + "".join(f'<{tag} rel="{rel}" type="{kind}" href={_a(meta.page_url(n))}/>'
                         for rel, n in links)


def _atom_head(meta: FeedMeta, page: int, pages: int) -> str:
    return "".join((
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<feed xmlns="{ATOM_NS}" xmlns:cap="{CAP_NS}">\n',
        f"<id>{_t(meta.self_url)}</id>",
        f"<title>{_t(meta.title)}</title>",
        f"<updated>{_atom_time(meta.updated)}</updated>",
        f"<author><name>{_t(meta.author)}</name></author>",
        "<generator>cap-hub</generator>",
        _page_links(meta, page, pages, "link"),
        "\n",
    ))


def _rss_head(meta: FeedMeta, page: int, pages: int) -> str:
    return "".join((
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<rss version="2.0" xmlns:atom="{ATOM_NS}" xmlns:cap="{CAP_NS}">\n<channel>',
        f"<title>{_t(meta.title)}</title>",
        f"<link>{_t(meta.self_url)}</link>",
        f"<description>{_t(meta.title)}</description>",
        f"<lastBuildDate>{rfc822(meta.updated.replace(microsecond=0))}</lastBuildDate>",
        "<generator>cap-hub</generator><ttl>1</ttl>",
        _page_links(meta, page, pages, "atom:link"),
        "\n",
    ))


def _pages(meta: FeedMeta, items: Sequence[FeedItem], max_bytes: int,
           head: Callable[[FeedMeta, int, int], str], entry: Callable[..., str], tail: str) -> list[bytes]:
    # The head of any page is at most that of a middle page with the largest number.
    reserve = len(head(meta, 10**9, 10**9 + 1).encode()) + len(tail.encode())
    budget = max(max_bytes - reserve, 1)
    pages: list[list[bytes]] = [[]]
    size = 0
    for item in items:
        data = entry(meta, item).encode()
        if len(data) > budget:  # alone it would not fit: a page of its own, without polygons
            data = entry(meta, item, polygons=False).encode()
        if pages[-1] and size + len(data) > budget:
            pages.append([])
            size = 0
        pages[-1].append(data)
        size += len(data)
    count = len(pages)
    return [head(meta, n, count).encode() + b"".join(chunk) + tail.encode()
            for n, chunk in enumerate(pages, 1)]


def atom_pages(meta: FeedMeta, items: Sequence[FeedItem], *, max_bytes: int = MAX_FEED_BYTES) -> list[bytes]:
    """The Atom feed of ``items`` (in the order given), as pages of at most ``max_bytes``
    (unless one entry alone is larger); always at least one page."""
    return _pages(meta, items, max_bytes, _atom_head, atom_entry, "</feed>\n")


def rss_pages(meta: FeedMeta, items: Sequence[FeedItem], *, max_bytes: int = MAX_FEED_BYTES) -> list[bytes]:
    """The RSS 2.0 feed of ``items``, paged like :func:`atom_pages`."""
    return _pages(meta, items, max_bytes, _rss_head, rss_item, "</channel>\n</rss>\n")
