"""The free CAP feeds end to end: what appears, what leaves, filters, and HTTP manners."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime as http_date
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from lxml import etree
from multidict import CIMultiDict
from yarl import URL

from hub.api.feeds import FEEDS, Feeds
from hub.cap.model import NAMESPACE
from hub.domain import AlertState, EntityType, Role
from hub.outputs.feed import ATOM_NS
from hub.wiring import Hub
from tests.api.conftest import MakeSender, Sender

NS = {"a": ATOM_NS, "cap": NAMESPACE}
BRUSSELS = ("<area><areaDesc>Centrum</areaDesc><polygon>50.83,4.33 50.83,4.38 50.87,4.38 50.87,4.33 "
            "50.83,4.33</polygon><geocode><valueName>NIS</valueName><value>21004</value></geocode></area>")
LIEGE = ("<area><areaDesc>Luik</areaDesc><circle>50.63,5.57 3</circle>"
         "<geocode><valueName>postcode</valueName><value>4000</value></geocode></area>")


def cap(sender: Sender, ident: str, *, status: str = "Actual", lang: str = "nl-BE", severity: str = "Severe",
        event: str = "Brand", area: str = BRUSSELS, headline: str = "Rook",
        sent: datetime | None = None) -> bytes:
    """A signed Public CAP Alert with one info shaped by the arguments."""
    when = (sent or datetime.now(UTC)).replace(microsecond=0).astimezone(timezone(timedelta(hours=1)))
    doc = (f'<alert xmlns="{NAMESPACE}"><identifier>{ident}</identifier><sender>{sender.sender}</sender>'
           f"<sent>{when.isoformat()}</sent><status>{status}</status><msgType>Alert</msgType>"
           f"<scope>Public</scope><info><language>{lang}</language><category>Safety</category>"
           f"<event>{event}</event><urgency>Immediate</urgency><severity>{severity}</severity>"
           f"<certainty>Observed</certainty><expires>{(when + timedelta(hours=2)).isoformat()}</expires>"
           f"<headline>{headline}</headline>{area}</info></alert>")
    return sender.signed(doc.encode())


async def post(sender: Sender, data: bytes) -> int:
    status, body, headers = await sender.post(data)
    assert status == 201, body
    return int(headers["Location"].rsplit("/", 1)[1])


async def feed(client: TestClient, path: str = "/feeds/alerts.atom",  # type: ignore[type-arg]
               **query: str) -> tuple[etree._Element, CIMultiDict[str]]:
    async with client.get(path, params=query) as resp:
        assert resp.status == 200, await resp.text()
        return etree.fromstring(await resp.read()), resp.headers.copy()


def feeds_of(client: TestClient) -> Feeds:  # type: ignore[type-arg]
    app = client.app
    assert app is not None
    feeds: Feeds = app[FEEDS]
    return feeds


def identifiers(root: etree._Element) -> list[str]:
    return [str(e.text) for e in root.iter(f"{{{NAMESPACE}}}identifier")]


@pytest.fixture
async def police(make_sender: MakeSender) -> Sender:
    return await make_sender("police")


async def test_a_public_alert_appears_with_a_link_to_the_hub_signed_cap(
        hub: Hub, client: TestClient, police: Sender) -> None:  # type: ignore[type-arg]
    alert_id = await post(police, cap(police, "A-1", headline="Zware rook"))
    root, headers = await feed(client)
    assert headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=60"
    [entry] = root.findall("a:entry", NS)
    assert entry.findtext("a:title", namespaces=NS) == "Zware rook"
    assert entry.findtext("cap:severity", namespaces=NS) == "Severe"
    href = entry.find("a:link[@type='application/cap+xml']", NS).get("href")  # type: ignore[union-attr]
    assert href == f"http://{client.host}:{client.port}/alerts/{alert_id}.cap"
    self_link = root.find("a:link[@rel='self']", NS).get("href")  # type: ignore[union-attr]
    assert self_link == f"http://{client.host}:{client.port}/feeds/alerts.atom"
    # Building the feed signed nothing; the first read of the link does.
    stored = await hub.store.alert(alert_id)
    assert stored is not None and stored.signed == b""
    async with client.get(str(URL(str(href)).relative())) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/cap+xml"
        signed = await resp.read()
        assert b"SignatureValue" in signed
    stored = await hub.store.alert(alert_id)
    assert stored is not None and stored.signed == signed
    async with client.get(f"/alerts/{alert_id}") as resp:  # the same document without the suffix
        assert resp.content_type == "application/cap+xml"
        assert await resp.read() == signed


async def test_rss(client: TestClient, police: Sender) -> None:  # type: ignore[type-arg]
    alert_id = await post(police, cap(police, "R-1"))
    root, headers = await feed(client, "/feeds/alerts.rss")
    assert headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    [item] = root.findall("channel/item")
    assert item.findtext("guid", "").startswith("urn:cap-hub:alert:police@example.be,R-1,")
    assert item.findtext("pubDate")
    assert item.findtext("link", "").endswith(f"/alerts/{alert_id}.cap")
    assert item.find("enclosure").get("type") == "application/cap+xml"  # type: ignore[union-attr]


async def test_newest_first_and_read_by_a_feed_reader(client: TestClient, police: Sender) -> None:  # type: ignore[type-arg]
    feedparser = pytest.importorskip("feedparser")
    now = datetime.now(UTC)
    await post(police, cap(police, "OLD", sent=now - timedelta(minutes=5)))
    await post(police, cap(police, "NEW", sent=now))
    await post(police, cap(police, "MID", sent=now - timedelta(minutes=1)))
    for path in ("/feeds/alerts.atom", "/feeds/alerts.rss"):
        async with client.get(path) as resp:
            parsed = feedparser.parse(await resp.read())
        assert not parsed.bozo
        assert [e.id.split(",")[1] for e in parsed.entries] == ["NEW", "MID", "OLD"]


async def test_cancelled_updated_and_expired_alerts_leave_but_stay_readable(
        hub: Hub, client: TestClient, police: Sender) -> None:  # type: ignore[type-arg]
    keep = await post(police, cap(police, "KEEP"))
    data, ref = police.alert("GONE")
    cancelled = await post(police, police.signed(data))
    data, ref2 = police.alert("OLDER")
    updated = await post(police, police.signed(data))
    soon, _ = police.alert("SOON", expires_in=timedelta(seconds=2))
    soon_id = await post(police, police.signed(soon))
    assert identifiers((await feed(client))[0]) == ["SOON", "OLDER", "GONE", "KEEP"]

    await post(police, police.signed(police.alert("C", msg_type="Cancel", references=ref)[0]))
    await post(police, police.signed(police.alert("U", msg_type="Update", references=ref2)[0]))
    assert set(identifiers((await feed(client))[0])) == {"SOON", "U", "KEEP"}

    # Expired at the time of the request, before any sweep has marked it.
    stored = await hub.store.alert(soon_id)
    assert stored is not None and stored.expires is not None
    await asyncio.sleep(max(0.0, (stored.expires - datetime.now(UTC)).total_seconds()) + 0.1)
    assert (await hub.store.alert(soon_id)).state is AlertState.ACTIVE  # type: ignore[union-attr]
    assert set(identifiers((await feed(client))[0])) == {"U", "KEEP"}
    await hub.expire()
    assert set(identifiers((await feed(client))[0])) == {"U", "KEEP"}

    for alert_id, state in ((cancelled, "cancelled"), (updated, "updated"), (soon_id, "expired"),
                            (keep, "active")):
        for path in (f"/alerts/{alert_id}.cap", f"/alerts/{alert_id}"):
            async with client.get(path) as resp:
                assert resp.status == 200
                assert resp.content_type == "application/cap+xml"
                assert resp.headers["X-Alert-State"] == state
                assert b"SignatureValue" in await resp.read()


async def test_exercise_and_test_only_in_the_test_feed(client: TestClient, police: Sender) -> None:  # type: ignore[type-arg]
    await post(police, cap(police, "REAL"))
    await post(police, cap(police, "EX", status="Exercise"))
    await post(police, cap(police, "TST", status="Test"))
    for path in ("/feeds/alerts.atom", "/feeds/alerts.rss"):
        assert identifiers((await feed(client, path))[0]) == ["REAL"]
    assert sorted(identifiers((await feed(client, "/feeds/test.atom"))[0])) == ["EX", "TST"]


async def test_private_and_restricted_alerts_are_not_in_the_feed(
        client: TestClient, police: Sender) -> None:  # type: ignore[type-arg]
    data, _ = police.alert("PRIV", scope="Private", extra="<addresses>plp-x</addresses>")
    await police.post(police.signed(data))
    await post(police, cap(police, "PUB"))
    assert identifiers((await feed(client))[0]) == ["PUB"]


@pytest.mark.parametrize(("query", "expected"), [
    ({}, {"NL", "FR", "LUIK", "MINOR"}),
    ({"severity": "Severe"}, {"NL", "FR", "LUIK"}),
    ({"severity": "minor,extreme"}, {"MINOR"}),
    ({"lang": "fr"}, {"FR"}),
    ({"lang": "nl", "severity": "Severe"}, {"NL", "LUIK"}),
    ({"event": "overstroming"}, {"LUIK"}),
    ({"geocode": "NIS=21004"}, {"NL", "FR", "MINOR"}),
    ({"geocode": "zip=4000"}, {"LUIK"}),
    ({"bbox": "5.5,50.6,5.7,50.7"}, {"LUIK"}),
    ({"bbox": "4.0,50.0,6.0,51.0", "lang": "fr"}, {"FR"}),
    ({"point": "50.85,4.35"}, {"NL", "FR", "MINOR"}),
    ({"point": "50.631,5.571"}, {"LUIK"}),
    ({"point": "51.2,3.2"}, set()),
    ({"urgency": "immediate"}, {"NL", "FR", "LUIK", "MINOR"}),
    ({"urgency": "Future,Expected"}, set()),
])
async def test_filters(client: TestClient, police: Sender, query: dict[str, str],  # type: ignore[type-arg]
                       expected: set[str]) -> None:
    now = datetime.now(UTC)
    await post(police, cap(police, "NL", sent=now - timedelta(minutes=10)))
    await post(police, cap(police, "FR", lang="fr-BE", headline="Fumée"))
    await post(police, cap(police, "LUIK", event="Overstroming", area=LIEGE))
    await post(police, cap(police, "MINOR", severity="Minor"))
    root, _ = await feed(client, **query)
    assert set(identifiers(root)) == expected
    if query:
        self_link = root.find("a:link[@rel='self']", NS).get("href")  # type: ignore[union-attr]
        assert "?" in self_link  # type: ignore[operator]
        assert root.findtext("a:id", namespaces=NS) == self_link


async def test_since(client: TestClient, police: Sender) -> None:  # type: ignore[type-arg]
    now = datetime.now(UTC).replace(microsecond=0)
    await post(police, cap(police, "EARLY", sent=now - timedelta(minutes=30)))
    await post(police, cap(police, "LATE", sent=now))
    since = (now - timedelta(minutes=1)).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert identifiers((await feed(client, since=since))[0]) == ["LATE"]
    # An unescaped "+" arrives as a space; it is read as the "+" it was.
    async with client.get(f"/feeds/alerts.atom?since={since}") as resp:
        assert identifiers(etree.fromstring(await resp.read())) == ["LATE"]


@pytest.mark.parametrize(("query", "param"), [
    ("severity=Awful", "severity"), ("lang=%20", "lang"), ("bbox=1,2,3", "bbox"), ("point=x,y", "point"),
    ("since=tomorrow", "since"), ("geocode=NIS=", "geocode"), ("urgency=soon", "urgency"), ("page=0", "page"),
    ("page=%C2%B2", "page"), ("page=" + "9" * 5000, "page"),
])
async def test_bad_filters_are_400_naming_the_parameter(
        client: TestClient, query: str, param: str) -> None:  # type: ignore[type-arg]
    async with client.get(f"/feeds/alerts.atom?{query}") as resp:
        assert resp.status == 400
        assert resp.content_type == "application/problem+json"
        assert (await resp.json())["detail"].startswith(f"{param}:")


async def test_etag_and_304_until_something_changes(
        client: TestClient, police: Sender) -> None:  # type: ignore[type-arg]
    feeds = feeds_of(client)
    await post(police, cap(police, "E-1"))
    _, headers = await feed(client)
    etag = headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    builds = feeds.builds
    for _ in range(3):
        async with client.get("/feeds/alerts.atom", headers={"If-None-Match": etag}) as resp:
            assert resp.status == 304
            assert resp.headers["ETag"] == etag
            assert await resp.read() == b""
    async with client.get("/feeds/alerts.atom", headers={"If-None-Match": f'"other", W/{etag}'}) as resp:
        assert resp.status == 304
    assert feeds.builds == builds  # served from the cache

    await post(police, cap(police, "E-2"))
    async with client.get("/feeds/alerts.atom", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 200
        assert resp.headers["ETag"] != etag
        assert set(identifiers(etree.fromstring(await resp.read()))) == {"E-1", "E-2"}
    assert feeds.builds == builds + 1


async def test_if_modified_since(client: TestClient, police: Sender) -> None:  # type: ignore[type-arg]
    await post(police, cap(police, "M-1"))
    await feed(client)
    await asyncio.sleep(1.05)  # Last-Modified is sent once it is not in the future
    _, headers = await feed(client)
    last_modified = headers["Last-Modified"]
    async with client.get("/feeds/alerts.atom", headers={"If-Modified-Since": last_modified}) as resp:
        assert resp.status == 304
    earlier = http_date(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    async with client.get("/feeds/alerts.atom", headers={"If-Modified-Since": earlier}) as resp:
        assert resp.status == 200
    await post(police, cap(police, "M-2"))
    async with client.get("/feeds/alerts.atom", headers={"If-Modified-Since": last_modified}) as resp:
        assert resp.status == 200
        assert set(identifiers(etree.fromstring(await resp.read()))) == {"M-1", "M-2"}


async def test_gzip_when_asked(client: TestClient, police: Sender) -> None:  # type: ignore[type-arg]
    await post(police, cap(police, "G-1"))
    async with client.get("/feeds/alerts.atom", headers={"Accept-Encoding": "identity"},
                          auto_decompress=False) as resp:
        plain, plain_etag = await resp.read(), resp.headers["ETag"]
        assert "Content-Encoding" not in resp.headers
    async with client.get("/feeds/alerts.atom", headers={"Accept-Encoding": "gzip, deflate"},
                          auto_decompress=False) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        assert resp.headers["Vary"] == "Accept-Encoding"
        assert gzip.decompress(await resp.read()) == plain
        gz_etag = resp.headers["ETag"]
    assert gz_etag != plain_etag
    async with client.get("/feeds/alerts.atom", headers={"Accept-Encoding": "gzip", "If-None-Match": gz_etag},
                          auto_decompress=False) as resp:
        assert resp.status == 304


async def test_paging_with_rel_next(client: TestClient, police: Sender) -> None:  # type: ignore[type-arg]
    feeds_of(client).max_bytes = 4000
    for n in range(8):
        await post(police, cap(police, f"P-{n}"))
    seen: list[str] = []
    url: str | None = "/feeds/alerts.atom"
    pages = 0
    while url is not None:
        async with client.get(url) as resp:
            assert resp.status == 200
            body = await resp.read()
        assert len(body) <= 4000
        root = etree.fromstring(body)
        seen += identifiers(root)
        pages += 1
        nxt = root.find("a:link[@rel='next']", NS)
        url = None if nxt is None else str(URL(str(nxt.get("href"))).relative())
    assert pages > 1
    assert sorted(seen) == sorted(f"P-{n}" for n in range(8))
    async with client.get("/feeds/alerts.atom?page=99") as resp:
        assert resp.status == 404


async def test_no_token_needed_and_an_empty_feed_is_valid(client: TestClient) -> None:  # type: ignore[type-arg]
    for path in ("/feeds/alerts.atom", "/feeds/alerts.rss", "/feeds/test.atom"):
        async with client.get(path, params={"severity": "Extreme"}) as resp:
            assert resp.status == 200
            etree.fromstring(await resp.read())


# --- issue 7, second part: settings, feed rules, 304 until each kind of change, metrics -------


def check_feed_rules(data: bytes, *, atom: bool) -> list[str]:
    """The feed rules CAP validators apply to index feeds, on what feedparser reads: unique
    entry ids, a CAP link typed application/cap+xml on every entry, the required Atom
    elements (feed and entry id, title, updated; an author), RSS guid and pubDate. Returns
    the entry ids."""
    import feedparser

    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == ("atom10" if atom else "rss20")
    ids = [e.id for e in parsed.entries]
    assert len(ids) == len(set(ids)), "entry ids are unique"
    if atom:
        assert parsed.feed.id and parsed.feed.title and parsed.feed.updated and parsed.feed.author
    else:
        assert parsed.feed.title and parsed.feed.link
    for entry in parsed.entries:
        cap_links = [link for link in entry.links if link.type == "application/cap+xml"]
        assert cap_links and all(link.href.endswith(".cap") for link in cap_links)
        if atom:
            assert entry.id and entry.title and entry.updated and entry.get("author")
        else:
            assert entry.guid and entry.published  # guid and pubDate
    return ids


async def test_every_feed_meets_the_feed_rules(client: TestClient, police: Sender) -> None:  # type: ignore[type-arg]
    await post(police, cap(police, "R-1"))
    await post(police, cap(police, "R-2", lang="fr-BE"))
    await post(police, cap(police, "R-X", status="Exercise"))
    for path, atom, count in (("/feeds/alerts.atom", True, 2), ("/feeds/alerts.rss", False, 2),
                              ("/feeds/test.atom", True, 1), ("/feeds/alerts.atom?lang=fr", True, 1),
                              ("/feeds/alerts.rss?severity=Minor", False, 0)):
        async with client.get(path) as resp:
            assert len(check_feed_rules(await resp.read(), atom=atom)) == count, path


async def test_exercise_never_leaks_into_the_public_feeds_whatever_the_filters(
        client: TestClient, police: Sender) -> None:  # type: ignore[type-arg]
    await post(police, cap(police, "EX-1", status="Exercise"))
    await post(police, cap(police, "TS-1", status="Test", lang="fr-BE"))
    queries: list[dict[str, str]] = [{}, {"lang": "fr"}, {"severity": "Severe"}, {"geocode": "NIS=21004"},
                                     {"point": "50.85,4.35"}]
    for query in queries:
        for path in ("/feeds/alerts.atom", "/feeds/alerts.rss"):
            root, _ = await feed(client, path, **query)
            assert identifiers(root) == []
    assert sorted(identifiers((await feed(client, "/feeds/test.atom"))[0])) == ["EX-1", "TS-1"]


@pytest.mark.parametrize("change", ["update", "cancel", "expire"])
async def test_304_with_the_same_etag_until_an_update_cancel_or_expiry(
        hub: Hub, client: TestClient, police: Sender, change: str) -> None:  # type: ignore[type-arg]
    lifetime = timedelta(seconds=3) if change == "expire" else timedelta(hours=2)
    data, ref = police.alert("C-1", expires_in=lifetime)
    await post(police, police.signed(data))
    _, headers = await feed(client)
    etag = headers["ETag"]
    for _ in range(2):
        async with client.get("/feeds/alerts.atom", headers={"If-None-Match": etag}) as resp:
            assert resp.status == 304 and resp.headers["ETag"] == etag
    if change == "update":
        await post(police, police.signed(police.alert("C-2", msg_type="Update", references=ref)[0]))
    elif change == "cancel":
        await post(police, police.signed(police.alert("C-3", msg_type="Cancel", references=ref)[0]))
    else:
        stored = await hub.store.alert(1)
        assert stored is not None and stored.expires is not None
        await asyncio.sleep(max(0.0, (stored.expires - datetime.now(UTC)).total_seconds()) + 0.1)
    async with client.get("/feeds/alerts.atom", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 200
        new_etag = resp.headers["ETag"]
        assert new_etag != etag
        expected = ["C-2"] if change == "update" else []
        assert identifiers(etree.fromstring(await resp.read())) == expected
    async with client.get("/feeds/alerts.atom", headers={"If-None-Match": new_etag}) as resp:
        assert resp.status == 304


async def test_settings_max_age_base_url_and_websub_hub(
        tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient]],  # type: ignore[type-arg]
        keypairs: dict[str, tuple[bytes, bytes]]) -> None:
    from hub.api.app import create_app
    from hub.config import FeedsSettings
    from hub.services import admin
    from tests.api.conftest import settings_for

    settings = replace(settings_for(tmp_path), feeds=FeedsSettings(
        max_age=300, base_url="https://alerts.example.be/", websub_hub="https://websub.example.be/hub"))
    hub = await Hub.start(settings, tmp_path, roles=frozenset({"api"}))
    try:
        client = await aiohttp_client(create_app(hub))
        await admin.add_entity(hub.store, "police", EntityType.GROUPS, ["police@example.be"],
                               certificates=[("t", keypairs["police"][1])])
        await admin.add_account(hub.store, "police", "acc", Role.COORDINATOR)
        token = await admin.new_account_token(hub.store, "acc")
        police = Sender("police", "police@example.be", token, *keypairs["police"], client)
        alert_id = await post(police, cap(police, "B-1"))
        for path, tag in (("/feeds/alerts.atom", "a:link"), ("/feeds/alerts.rss", "channel/a:link")):
            root, headers = await feed(client, path)
            assert headers["Cache-Control"] == "public, max-age=300"
            links = {link.get("rel"): link.get("href") for link in root.findall(tag, NS)}
            assert links["hub"] == "https://websub.example.be/hub"
            assert links["self"] == f"https://alerts.example.be{path}"
            assert headers["Link"] == (f'<https://websub.example.be/hub>; rel="hub", '
                                       f'<https://alerts.example.be{path}>; rel="self"')
        root, _ = await feed(client)
        href = root.find("a:entry/a:link", NS).get("href")  # type: ignore[union-attr]
        assert href == f"https://alerts.example.be/alerts/{alert_id}.cap"
        # A filtered feed's URL is never pinged: it names no WebSub hub, so nobody subscribes
        # to a topic that would never be announced; it is polled.
        root, headers = await feed(client, "/feeds/alerts.atom?lang=nl")
        rels = {link.get("rel") for link in root.findall("a:link", NS)}
        assert "hub" not in rels and "self" in rels and "Link" not in headers
    finally:
        await hub.stop()


async def test_feed_metrics(client: TestClient, police: Sender) -> None:  # type: ignore[type-arg]
    await post(police, cap(police, "MT-1"))
    _, headers = await feed(client)
    await feed(client, "/feeds/alerts.rss")
    async with client.get("/feeds/alerts.atom", headers={"If-None-Match": headers["ETag"]}) as resp:
        assert resp.status == 304
    async with client.get("/metrics") as resp:
        text = await resp.text()
    assert 'caphub_feed_requests_total{feed="/feeds/alerts.atom"} 2.0' in text
    assert 'caphub_feed_requests_total{feed="/feeds/alerts.rss"} 1.0' in text
    assert 'caphub_feed_not_modified_total{feed="/feeds/alerts.atom"} 1.0' in text
    assert "# TYPE caphub_pushes_total counter" in text


async def test_the_cap_url_of_a_private_alert_needs_its_entitys_token(
        client: TestClient, police: Sender) -> None:  # type: ignore[type-arg]
    data, _ = police.alert("PRIV-1", scope="Private", extra="<addresses>plp-x</addresses>")
    status, _, headers = await police.post(police.signed(data))
    assert status == 201
    path = headers["Location"] + ".cap"
    async with client.get(path) as resp:
        assert resp.status == 401
    async with client.get(path, headers={"Authorization": f"Bearer {police.token}"}) as resp:
        assert resp.status == 200 and resp.content_type == "application/cap+xml"
    for bad in ("/alerts/x.cap", "/alerts/999.cap"):
        async with client.get(bad) as resp:
            assert resp.status == 404 and resp.content_type == "application/problem+json"
