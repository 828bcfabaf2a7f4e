"""CAP index feeds rendered without a server: Atom and RSS shape, cap: fields, filters, paging."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from hub.cap.model import NAMESPACE, Alert, Point, Severity
from hub.cap.parse import parse
from hub.outputs.feed import (
    ATOM_NS,
    MAX_FEED_BYTES,
    NO_INFO,
    FeedFilter,
    FeedItem,
    FeedMeta,
    FilterError,
    atom_pages,
    feed_url,
    parse_filters,
    rss_pages,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
NS = {"a": ATOM_NS, "cap": NAMESPACE}
BASE = "https://hub.example.be"
META = FeedMeta("cap-hub: active public alerts", f"{BASE}/feeds/alerts.atom", BASE, "hub@example.be",
                datetime(2026, 11, 24, 9, 30, tzinfo=UTC))


def load(name: str) -> Alert:
    alert = parse((FIXTURES / name).read_bytes()).alert
    assert alert is not None
    return alert


@pytest.fixture(scope="module")
def full() -> Alert:
    return load("alert_full.xml")


@pytest.fixture(scope="module")
def minimal() -> Alert:
    return load("alert_minimal.xml")


NO_FILTER = FeedFilter()


def item(alert: Alert, alert_id: int = 1, filters: FeedFilter = NO_FILTER) -> FeedItem:
    shown = filters.match(alert)
    assert shown is not None
    return FeedItem(alert_id, alert, None if shown == NO_INFO else alert.infos[shown])


def xml(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def test_atom_is_well_formed_with_the_required_elements(full: Alert, minimal: Alert) -> None:
    [page] = atom_pages(META, [item(full, 7), item(minimal, 3)])
    root = xml(page)
    assert root.tag == f"{{{ATOM_NS}}}feed"
    assert root.nsmap == {None: ATOM_NS, "cap": NAMESPACE}
    for name in ("id", "title", "updated", "author/a:name"):
        assert root.findtext(f"a:{name}", namespaces=NS)
    assert root.find("a:link[@rel='self']", NS).get("href") == META.self_url  # type: ignore[union-attr]
    assert root.find("a:link[@rel='next']", NS) is None
    entries = root.findall("a:entry", NS)
    assert len(entries) == 2
    ids = [e.findtext("a:id", namespaces=NS) for e in entries]
    assert len(set(ids)) == 2
    assert ids[0] == "urn:cap-hub:alert:alerts@nccn.example.be,BE-NCCN-2026-0042,2026-11-24T10:15:00+01:00"
    for entry in entries:
        for name in ("title", "updated", "published", "summary"):
            assert entry.findtext(f"a:{name}", namespaces=NS)
        [cap_link] = entry.findall("a:link[@type='application/cap+xml']", NS)
        assert cap_link.get("rel") == "alternate"
    assert entries[0].find("a:link", NS).get("href") == f"{BASE}/alerts/7.cap"  # type: ignore[union-attr]


def test_atom_entry_carries_the_cap_index_fields(full: Alert) -> None:
    [page] = atom_pages(META, [item(full)])
    entry = xml(page).find("a:entry", NS)
    assert entry is not None
    assert entry.findtext("a:title", namespaces=NS) == "Zware rookontwikkeling in Anderlecht"
    assert entry.get("{http://www.w3.org/XML/1998/namespace}lang") == "nl-BE"
    fields = {name: entry.findtext(f"cap:{name}", namespaces=NS) for name in (
        "event", "effective", "expires", "status", "msgType", "urgency", "severity", "certainty",
        "areaDesc", "polygon", "circle")}
    assert fields == {
        "event": "Brand in industriezone", "effective": "2026-11-24T10:15:00+01:00",
        "expires": "2026-11-24T16:15:00+01:00", "status": "Actual", "msgType": "Alert",
        "urgency": "Immediate", "severity": "Severe", "certainty": "Observed",
        "areaDesc": "Anderlecht industriezone",
        "polygon": "50.83,4.29 50.83,4.32 50.85,4.32 50.85,4.29 50.83,4.29", "circle": "50.84,4.30 2.5",
    }
    geocode = entry.find("cap:geocode", NS)
    assert geocode is not None
    assert (geocode.findtext("cap:valueName", namespaces=NS), geocode.findtext("cap:value", namespaces=NS)) \
        == ("NIS", "21001")


def test_rss_is_well_formed_with_guid_pubdate_and_the_cap_link(full: Alert, minimal: Alert) -> None:
    meta = replace(META, self_url=f"{BASE}/feeds/alerts.rss")
    [page] = rss_pages(meta, [item(full, 7), item(minimal, 3)])
    root = xml(page)
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel is not None
    for name in ("title", "link", "description", "lastBuildDate"):
        assert channel.findtext(name)
    assert channel.find("a:link[@rel='self']", NS).get("href") == meta.self_url  # type: ignore[union-attr]
    items = channel.findall("item")
    assert len(items) == 2
    first = items[0]
    assert first.findtext("link") == f"{BASE}/alerts/7.cap"
    assert first.find("guid").get("isPermaLink") == "false"  # type: ignore[union-attr]
    assert first.findtext("guid", "").startswith("urn:cap-hub:alert:")
    assert first.findtext("pubDate") == "Tue, 24 Nov 2026 10:15:00 +0100"
    enclosure = first.find("enclosure")
    assert enclosure is not None
    assert (enclosure.get("type"), enclosure.get("url")) == ("application/cap+xml", f"{BASE}/alerts/7.cap")
    assert first.findtext("cap:severity", namespaces=NS) == "Severe"
    assert first.findtext("cap:event", namespaces=NS) == "Brand in industriezone"


def test_a_feed_reader_reads_both(full: Alert, minimal: Alert) -> None:
    feedparser = pytest.importorskip("feedparser")
    items = [item(full, 7), item(minimal, 3)]
    for page in (atom_pages(META, items)[0], rss_pages(META, items)[0]):
        parsed = feedparser.parse(page)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert len(parsed.entries) == 2
        assert len({e.id for e in parsed.entries}) == 2
        for entry in parsed.entries:
            assert any(link.get("type") == "application/cap+xml" for link in entry.links)
            assert entry.get("published_parsed") or entry.get("updated_parsed")


def test_text_is_escaped(full: Alert) -> None:
    info = replace(full.infos[0], headline='Rook & "as" <binnen>', description=None)
    alert = replace(full, infos=(info,))
    for page in (atom_pages(META, [item(alert)])[0], rss_pages(META, [item(alert)])[0]):
        titles = [t.text for t in xml(page).iter("{*}title")]
        assert titles[-1] == 'Rook & "as" <binnen>'


def test_an_alert_without_info(minimal: Alert) -> None:
    bare = replace(minimal, infos=())
    [page] = atom_pages(META, [item(bare)])
    entry = xml(page).find("a:entry", NS)
    assert entry is not None
    assert entry.findtext("a:title", namespaces=NS)
    assert entry.findtext("cap:msgType", namespaces=NS) == "Alert"
    assert entry.find("cap:event", NS) is None
    assert FeedFilter(severities=frozenset({Severity.SEVERE})).match(bare) is None


def test_an_empty_feed_is_a_valid_feed() -> None:
    for page in (atom_pages(META, [])[0], rss_pages(META, [])[0]):
        xml(page)


# --- paging ---------------------------------------------------------------------------------


def test_pages_stay_under_the_limit_and_link_on(full: Alert) -> None:
    alerts = [item(replace(full, identifier=f"A-{n}"), n) for n in range(30)]
    pages = atom_pages(META, alerts, max_bytes=8000)
    assert len(pages) > 2
    assert all(len(p) <= 8000 for p in pages)
    seen = []
    for n, page in enumerate(pages, 1):
        root = xml(page)
        links = {link.get("rel"): link.get("href") for link in root.findall("a:link", NS)}
        assert links["self"] == (META.self_url if n == 1 else f"{META.self_url}?page={n}")
        assert ("next" in links) == (n < len(pages))
        assert ("previous" in links) == (n > 1)
        if n < len(pages):
            assert links["next"] == f"{META.self_url}?page={n + 1}"
        seen += [e.findtext("cap:identifier", namespaces=NS) for e in root.findall("a:entry", NS)]
    assert seen == [f"A-{n}" for n in range(30)]
    rss = rss_pages(META, alerts, max_bytes=8000)
    assert len(rss) > 2 and all(len(p) <= 8000 for p in rss)


def test_the_default_limit_keeps_every_page_under_900_kb(full: Alert) -> None:
    """At the real limit (Google Public Alerts takes at most 900 KB): about 2 MB of entries."""
    assert MAX_FEED_BYTES == 900_000
    alerts = [item(replace(full, identifier=f"BIG-{n}"), n) for n in range(1200)]
    for render, tag in ((atom_pages, "a:link"), (rss_pages, "channel/atom:link")):
        pages = render(META, alerts)
        assert len(pages) >= 2
        assert all(len(p) <= MAX_FEED_BYTES for p in pages)
        assert sum(len(p) for p in pages) > MAX_FEED_BYTES
        ids: list[str] = []
        for n, page in enumerate(pages, 1):
            root = xml(page)
            nxt = [link.get("href") for link in root.findall(tag, {**NS, "atom": ATOM_NS})
                   if link.get("rel") == "next"]
            assert nxt == ([f"{META.self_url}?page={n + 1}"] if n < len(pages) else [])
            ids += [str(e.text) for e in root.iter(f"{{{NAMESPACE}}}identifier")]
        assert ids == [f"BIG-{n}" for n in range(1200)]


def test_a_websub_hub_is_named_with_rel_hub(full: Alert) -> None:
    feedparser = pytest.importorskip("feedparser")
    hub = "https://websub.example.be/hub"
    meta = replace(META, websub_hub=hub)
    atom, rss = atom_pages(meta, [item(full)])[0], rss_pages(meta, [item(full)])[0]
    assert [link.get("href") for link in xml(atom).findall("a:link[@rel='hub']", NS)] == [hub]
    assert [link.get("href") for link in xml(rss).findall("channel/a:link[@rel='hub']", NS)] == [hub]
    for page in (atom, rss):
        parsed = feedparser.parse(page)
        assert not parsed.bozo
        assert hub in [link.href for link in parsed.feed.links if link.rel == "hub"]
    assert b'rel="hub"' not in atom_pages(META, [item(full)])[0]
    assert b'rel="hub"' not in rss_pages(META, [item(full)])[0]


def test_an_entry_too_large_for_a_page_goes_without_polygons(full: Alert) -> None:
    ring = " ".join(f"50.{n:04d},4.{n:04d}" for n in range(1, 2000))
    area = replace(full.infos[0].areas[0], polygons=(replace(full.infos[0].areas[0].polygons[0],
                                                             text=f"50.0,4.0 {ring} 50.0,4.0"),))
    big = replace(full, infos=(replace(full.infos[0], areas=(area,)),))
    pages = atom_pages(META, [item(big, 1), item(full, 2)], max_bytes=10_000)
    assert all(len(p) <= 10_000 for p in pages)
    entries = [e for p in pages for e in xml(p).findall("a:entry", NS)]
    assert len(entries) == 2
    assert entries[0].find("cap:polygon", NS) is None
    assert entries[0].findtext("cap:geocode/cap:value", namespaces=NS) == "21001"
    assert entries[1].find("cap:polygon", NS) is not None


# --- filters --------------------------------------------------------------------------------


def test_no_filter_shows_the_first_info(full: Alert) -> None:
    assert FeedFilter().match(full) == 0


@pytest.mark.parametrize(("query", "shown"), [
    ({"lang": "fr"}, 1), ({"lang": "nl-be"}, 0), ({"lang": "de,fr-BE"}, 1), ({"lang": "de"}, None),
    ({"severity": "severe"}, 0), ({"severity": "Extreme,Minor"}, None),
    ({"urgency": "Immediate"}, 0), ({"urgency": "Future"}, None),
    ({"event": "incendie en zone industrielle"}, 1), ({"event": "Flood"}, None),
    ({"geocode": "NIS=21001"}, 0), ({"geocode": "nis5=21001"}, 0), ({"geocode": "21001"}, 0),
    ({"geocode": "NIS=21004,postcode=1000"}, None), ({"geocode": "postcode=21001"}, None),
    ({"bbox": "4.30,50.84,4.40,50.90"}, 0), ({"bbox": "5.0,51.0,5.1,51.1"}, None),
    ({"point": "50.84,4.30"}, 0), ({"point": "50.90,4.30"}, None),
    ({"since": "2026-11-24T09:15:00Z"}, 0), ({"since": "2026-11-24T10:15:00+01:00"}, 0),
    ({"since": "2026-11-24T10:15:01 01:00"}, None),  # "+" unescaped in a URL reads as a space
    ({"lang": "fr", "geocode": "NIS=21001"}, 1), ({"lang": "fr", "bbox": "4.30,50.84,4.40,50.90"}, None),
    ({"severity": "Severe", "lang": "fr", "since": "2026-01-01T00:00:00Z"}, 1),
])
def test_filters(full: Alert, query: dict[str, str], shown: int | None) -> None:
    assert parse_filters(query).match(full) == shown


@pytest.mark.parametrize(("query", "param"), [
    ({"lang": "n l"}, "lang"), ({"lang": ""}, "lang"), ({"severity": "Terrible"}, "severity"),
    ({"severity": ""}, "severity"), ({"urgency": "Now"}, "urgency"), ({"event": " "}, "event"),
    ({"geocode": "NIS="}, "geocode"), ({"geocode": ","}, "geocode"),
    ({"bbox": "1,2,3"}, "bbox"), ({"bbox": "a,b,c,d"}, "bbox"), ({"bbox": "5,50,4,51"}, "bbox"),
    ({"bbox": "4,50,5,95"}, "bbox"), ({"bbox": "nan,50,5,51"}, "bbox"),
    ({"point": "50.8"}, "point"), ({"point": "91,4"}, "point"), ({"point": "50,inf"}, "point"),
    ({"bbox": "4,50,5,51", "point": "50.5,4.5"}, "bbox"),
    ({"since": "yesterday"}, "since"), ({"since": "2026-11-24T10:00:00"}, "since"),
])
def test_bad_filter_values_name_the_parameter(query: dict[str, str], param: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filters(query)
    assert caught.value.param == param


def test_canonical_query_round_trips() -> None:
    query = {"severity": "severe,extreme", "lang": "FR", "geocode": "NIS5=21001,1000", "point": "50.84,4.30",
             "since": "2026-11-24T10:15:00+01:00", "event": "Brand", "urgency": "immediate", "other": "x"}
    filters = parse_filters(query)
    assert filters.point == Point(50.84, 4.30)
    again = parse_filters(dict(filters.query()))
    assert again == filters
    assert feed_url(BASE, "/feeds/alerts.atom", filters).startswith(f"{BASE}/feeds/alerts.atom?lang=fr&")
    assert feed_url(BASE, "/feeds/alerts.atom", FeedFilter()) == f"{BASE}/feeds/alerts.atom"


@pytest.mark.parametrize("query", [
    {"bbox": "-0.00001,51.48,0.00005,51.5"}, {"point": "51.4779,-0.00001"},
    {"bbox": "4.351234567,50.812345678,4.4,50.9"}, {"point": "50.812345678,4.351234567"},
])
def test_canonical_coordinates_read_back_the_same(query: dict[str, str]) -> None:
    # The canonical query is what a partner subscription stores and re-reads on each alert:
    # "1e-05" is no number to the parser, and 6 significant digits move a box by metres.
    filters = parse_filters(query)
    assert parse_filters(dict(filters.query())) == filters


def test_filtered_feeds_show_the_matching_info_and_are_valid(full: Alert) -> None:
    filters = parse_filters({"lang": "fr"})
    meta = replace(META, self_url=feed_url(BASE, "/feeds/alerts.atom", filters))
    [page] = atom_pages(meta, [item(full, 1, filters)])
    root = xml(page)
    assert root.findtext("a:id", namespaces=NS) == f"{BASE}/feeds/alerts.atom?lang=fr"
    entry = root.find("a:entry", NS)
    assert entry is not None
    assert entry.findtext("a:title", namespaces=NS) == "Importante fumée à Anderlecht"
    assert entry.findtext("cap:language", namespaces=NS) == "fr-BE"
