"""Model → XML → model is the identity; what we write, our schema accepts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.cap import model as m
from hub.cap.parse import parse
from hub.cap.serialize import to_json, to_xml
from tests.cap.samples import FULL

# XML 1.0 text: no control characters but tab and newline (a parser turns \r into \n).
_chars = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
text = st.text(st.one_of(_chars, st.sampled_from("\t\n <&>\"'é€")), max_size=40)
token = st.text(st.sampled_from("abcXYZ019-_.@:/"), min_size=1, max_size=20)
maybe = st.none() | text


@st.composite
def times(draw: st.DrawFn) -> datetime:
    minutes = draw(st.integers(-14 * 60, 14 * 60).map(lambda x: x - x % 15))
    naive = draw(st.datetimes(datetime(1990, 1, 1), datetime(2090, 1, 1))).replace(microsecond=0)
    return naive.replace(tzinfo=timezone(timedelta(minutes=minutes)))


def pairs(cls: type[m.ValuePair]) -> st.SearchStrategy[tuple[m.ValuePair, ...]]:
    return st.lists(st.builds(cls, text, text), max_size=2).map(tuple)


decimals = st.none() | st.decimals(-10_000, 10_000, places=2, allow_nan=False)
areas = st.builds(
    m.Area, area_desc=text,
    polygons=st.lists(st.builds(m.Polygon, text), max_size=2).map(tuple),
    circles=st.lists(st.builds(m.Circle, text), max_size=2).map(tuple),
    geocodes=pairs(m.Geocode), altitude=decimals, ceiling=decimals,
)
resources = st.builds(
    m.Resource, resource_desc=text, mime_type=text, size=st.none() | st.integers(0, 10**12),
    uri=st.none() | token.map(lambda t: "https://example.be/" + t), deref_uri=maybe, digest=maybe,
)
infos = st.builds(
    m.Info,
    categories=st.lists(st.sampled_from(m.Category), min_size=1, max_size=3).map(tuple),
    event=text, urgency=st.sampled_from(m.Urgency), severity=st.sampled_from(m.Severity),
    certainty=st.sampled_from(m.Certainty),
    language=st.none() | st.sampled_from(["nl-BE", "fr-BE", "de", "en-US", "x-klingon"]),
    response_types=st.lists(st.sampled_from(m.ResponseType), max_size=2).map(tuple),
    audience=maybe, event_codes=pairs(m.EventCode),
    effective=st.none() | times(), onset=st.none() | times(), expires=st.none() | times(),
    sender_name=maybe, headline=maybe, description=maybe, instruction=maybe,
    web=st.none() | token.map(lambda t: "https://example.be/" + t), contact=maybe,
    parameters=pairs(m.Parameter), resources=st.lists(resources, max_size=2).map(tuple),
    areas=st.lists(areas, max_size=2).map(tuple),
)
alerts = st.builds(
    m.Alert, identifier=text, sender=text, sent=times(), status=st.sampled_from(m.Status),
    msg_type=st.sampled_from(m.MsgType), scope=st.sampled_from(m.Scope), source=maybe,
    restriction=maybe, addresses=maybe, codes=st.lists(text, max_size=2).map(tuple), note=maybe,
    references=maybe, incidents=maybe, infos=st.lists(infos, max_size=3).map(tuple),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(alerts)
def test_parse_of_serialize_is_identity(alert: m.Alert) -> None:
    result = parse(to_xml(alert))
    assert result.alert == alert, [p for p in result.problems if p.is_error]


def test_fixture_round_trips_and_keeps_offsets() -> None:
    alert = parse(FULL).alert
    assert alert is not None
    again = parse(to_xml(alert, pretty=False))
    assert again.ok and again.alert == alert
    assert b"<sent>2026-11-24T10:15:00+01:00</sent>" in to_xml(alert)


def test_utc_is_written_minus_zero() -> None:
    sent = datetime(2026, 1, 1, tzinfo=UTC)
    assert m.format_datetime(sent) == "2026-01-01T00:00:00-00:00"


def test_json_uses_the_specification_names() -> None:
    alert = parse(FULL).alert
    assert alert is not None
    data = json.loads(json.dumps(to_json(alert)))
    assert data["msgType"] == "Alert" and data["sent"] == "2026-11-24T10:15:00+01:00"
    nl = data["info"][0]
    assert nl["category"] == ["Fire", "Safety"]
    assert nl["area"][0]["geocode"] == [{"valueName": "NIS", "value": "21001"}]
    assert nl["area"][0]["ceiling"] == "300"
    assert "source" in data and "restriction" not in data
