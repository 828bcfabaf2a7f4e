"""CAP 1.2 rules: one valid alert, changed one thing per test (cap-library's habit)."""

from __future__ import annotations

import base64
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.cap.model import (
    Alert,
    Area,
    Category,
    Certainty,
    Circle,
    EventCode,
    Geocode,
    Info,
    MsgType,
    Parameter,
    Polygon,
    Resource,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
)
from hub.cap.problems import Code, Level, Problem
from hub.cap.rules import check

BRUSSELS = timezone(timedelta(hours=1))
SENT = datetime(2026, 11, 24, 10, 15, tzinfo=BRUSSELS)
SQUARE = "50.83,4.29 50.83,4.32 50.85,4.32 50.85,4.29 50.83,4.29"


def valid_alert() -> Alert:
    """The model of tests/fixtures/alert_full.xml: every optional element present."""
    area = Area(
        area_desc="Anderlecht industriezone",
        polygons=(Polygon(SQUARE),),
        circles=(Circle("50.84,4.30 2.5"),),
        geocodes=(Geocode("NIS", "21001"),),
        altitude=Decimal("0"),
        ceiling=Decimal("300"),
    )
    nl = Info(
        language="nl-BE",
        categories=(Category.FIRE, Category.SAFETY),
        event="Brand in industriezone",
        response_types=(ResponseType.SHELTER,),
        urgency=Urgency.IMMEDIATE,
        severity=Severity.SEVERE,
        certainty=Certainty.OBSERVED,
        audience="Bewoners van Anderlecht",
        event_codes=(EventCode("BE-EVENT", "FIRE"),),
        effective=SENT,
        onset=SENT - timedelta(minutes=15),
        expires=SENT + timedelta(hours=6),
        sender_name="Nationaal Crisiscentrum",
        headline="Zware rookontwikkeling in Anderlecht",
        description="Een grote brand in de industriezone veroorzaakt veel rook.",
        instruction="Blijf binnen. Sluit ramen en deuren. Zet ventilatie uit.",
        web="https://www.example.be/alerts/0042",
        contact="1771",
        parameters=(Parameter("layer:BE:wind", "NE 20 km/h"),),
        resources=(Resource(
            resource_desc="kaart", mime_type="image/png", size=1024,
            uri="https://www.example.be/alerts/0042/map.png",
            digest="2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
        ),),
        areas=(area,),
    )
    fr = Info(
        language="fr-BE",
        categories=(Category.FIRE,),
        event="Incendie en zone industrielle",
        urgency=Urgency.IMMEDIATE,
        severity=Severity.SEVERE,
        certainty=Certainty.OBSERVED,
        expires=SENT + timedelta(hours=6),
        headline="Importante fumée à Anderlecht",
        instruction="Restez à l'intérieur. Fermez portes et fenêtres.",
        areas=(Area("Anderlecht zone industrielle", geocodes=(Geocode("NIS", "21001"),)),),
    )
    return Alert(
        identifier="BE-NCCN-2026-0042",
        sender="alerts@nccn.example.be",
        sent=SENT,
        status=Status.ACTUAL,
        msg_type=MsgType.ALERT,
        scope=Scope.PUBLIC,
        source="NCCN crisis centre",
        codes=("BE-PROFILE-1.0",),
        note="Exercise of the fixture: every optional element is present.",
        incidents='INC-7 "Brussels fire"',
        infos=(nl, fr),
    )


def update(**changes: object) -> Alert:
    """An Update of the valid alert, sent an hour later."""
    base = valid_alert()
    fields: dict[str, object] = {
        "identifier": "BE-NCCN-2026-0043",
        "sent": SENT + timedelta(hours=1),
        "msg_type": MsgType.UPDATE,
        "references": str(base.key),
    }
    fields.update(changes)
    return replace(base, **fields)  # type: ignore[arg-type]


def with_info(alert: Alert, **changes: object) -> Alert:
    """The alert with its first info changed."""
    first = replace(alert.infos[0], **changes)  # type: ignore[arg-type]
    return replace(alert, infos=(first, *alert.infos[1:]))


def with_area(**changes: object) -> Alert:
    """The valid alert with its first area changed."""
    alert = valid_alert()
    area = replace(alert.infos[0].areas[0], **changes)  # type: ignore[arg-type]
    return with_info(alert, areas=(area,))


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [p.format() for p in problems]
    return problems[0]


def assert_one(problems: list[Problem], code: Code | str, level: Level, path: str) -> Problem:
    p = only(problems)
    assert (p.code, p.level, p.path) == (code, level, path), p.format()
    assert p.line is None
    return p


AREA = "/alert/info[1]/area[1]"


# --- the valid alert and real practice --------------------------------------------------------

def test_valid_alert_has_no_findings() -> None:
    assert check(valid_alert()) == []
    assert check(valid_alert(), now=SENT + timedelta(minutes=1)) == []


def test_update_referencing_several_messages_is_valid() -> None:
    refs = f"{valid_alert().key} alerts@nccn.example.be,BE-NCCN-2026-0041,2026-11-24T09:00:00+01:00"
    assert check(update(references=refs)) == []


def test_ack_and_error_without_info_are_valid() -> None:
    for msg_type in (MsgType.ACK, MsgType.ERROR):
        assert check(update(msg_type=msg_type, infos=())) == []


def test_many_geocode_schemes_and_languages_are_valid() -> None:
    schemes = ("SAME", "FIPS6", "UGC", "EMMA_ID", "NUTS3", "profile:CAP-CP:Location:0.3")
    geocodes = tuple(Geocode(s, "012345") for s in schemes)
    alert = with_area(geocodes=geocodes)
    alert = replace(alert, infos=(*alert.infos, replace(alert.infos[1], language="de-BE"),
                                  replace(alert.infos[1], language="en")))
    assert check(alert) == []


def test_polygon_with_many_points_is_valid() -> None:
    ring = [f"{50 + i / 1000:.4f},{4 + (i % 7) / 100:.4f}" for i in range(5000)]
    assert check(with_area(polygons=(Polygon(" ".join([*ring, ring[0]])),))) == []


# --- identifier and sender --------------------------------------------------------------------

def test_identifier_with_a_space() -> None:
    p = assert_one(check(replace(valid_alert(), identifier="BE NCCN 42")),
                   Code.IDENTIFIER_CHARS, Level.ERROR, "/alert/identifier")
    assert "'BE NCCN 42'" in p.message and "(CAP 1.2 §3.2.1 identifier)" in p.message


def test_sender_with_a_comma() -> None:
    p = assert_one(check(replace(valid_alert(), sender="nccn,be")),
                   Code.SENDER_CHARS, Level.ERROR, "/alert/sender")
    assert "comma" in p.message


def test_identifier_with_ampersand_and_empty_sender() -> None:
    problems = check(replace(valid_alert(), identifier="a&b", sender=""))
    assert {(p.code, p.path) for p in problems} == {
        (Code.IDENTIFIER_CHARS, "/alert/identifier"), (Code.SENDER_CHARS, "/alert/sender")}


def test_naive_datetime() -> None:
    assert_one(check(replace(valid_alert(), sent=SENT.replace(tzinfo=None))),
               Code.DATETIME_OFFSET, Level.ERROR, "/alert/sent")


# --- references --------------------------------------------------------------------------------

def test_update_with_empty_references() -> None:
    p = assert_one(check(update(references="")), Code.REFERENCES_REQUIRED, Level.ERROR, "/alert/references")
    assert "empty" in p.message


def test_cancel_without_references() -> None:
    assert_one(check(update(msg_type=MsgType.CANCEL, references=None)),
               Code.REFERENCES_REQUIRED, Level.ERROR, "/alert/references")


def test_malformed_reference() -> None:
    p = assert_one(check(update(references="alerts@nccn.example.be,BE-NCCN-2026-0042")),
                   Code.REFERENCES_FORMAT, Level.ERROR, "/alert/references")
    assert "triplet" in p.message


def test_reference_sent_with_z_is_malformed() -> None:
    assert_one(check(update(references="a@b,ID-1,2026-11-24T09:15:00Z")),
               Code.REFERENCES_FORMAT, Level.ERROR, "/alert/references")


def test_reference_identifier_with_ampersand() -> None:
    p = assert_one(check(update(references="a@b,ID&1,2026-11-24T09:15:00-00:00")),
                   Code.REFERENCES_FORMAT, Level.ERROR, "/alert/references")
    assert "identifier" in p.message


def test_self_reference() -> None:
    alert = update()
    assert_one(check(replace(alert, references=str(alert.key))),
               Code.REFERENCES_SELF, Level.ERROR, "/alert/references")


def test_reference_sent_after_this_message() -> None:
    later = "alerts@nccn.example.be,BE-NCCN-2026-0041,2026-11-24T12:00:00+01:00"
    assert_one(check(update(references=later)), Code.REFERENCES_FUTURE, Level.ERROR, "/alert/references")


def test_references_on_alert_is_a_warning() -> None:
    refs = "alerts@nccn.example.be,BE-NCCN-2026-0041,2026-11-24T09:00:00+01:00"
    assert_one(check(replace(valid_alert(), references=refs)),
               Code.REFERENCES_ON_ALERT, Level.WARNING, "/alert/references")


# --- scope, restriction, addresses, incidents ----------------------------------------------------

def test_empty_restriction_on_public_is_a_warning_only() -> None:
    assert_one(check(replace(valid_alert(), restriction="")),
               Code.RESTRICTION_SCOPE, Level.WARNING, "/alert/restriction")


def test_restriction_on_public() -> None:
    assert_one(check(replace(valid_alert(), restriction="police only")),
               Code.RESTRICTION_SCOPE, Level.ERROR, "/alert/restriction")


def test_restricted_without_restriction() -> None:
    for restriction in (None, " "):
        assert_one(check(replace(valid_alert(), scope=Scope.RESTRICTED, restriction=restriction)),
                   Code.RESTRICTION_REQUIRED, Level.ERROR, "/alert/scope")


def test_restricted_with_restriction_is_valid() -> None:
    assert check(replace(valid_alert(), scope=Scope.RESTRICTED, restriction="police only")) == []


def test_private_without_addresses() -> None:
    assert_one(check(replace(valid_alert(), scope=Scope.PRIVATE)),
               Code.ADDRESSES_REQUIRED, Level.ERROR, "/alert/scope")


def test_private_with_quoted_addresses_is_valid() -> None:
    alert = replace(valid_alert(), scope=Scope.PRIVATE, addresses='ops@x.be "Crisis Cell Brussels"')
    assert check(alert) == []


def test_empty_addresses_on_public_is_a_warning() -> None:
    assert_one(check(replace(valid_alert(), addresses="")),
               Code.ADDRESSES_SCOPE, Level.WARNING, "/alert/addresses")


def test_unbalanced_quotes() -> None:
    assert_one(check(replace(valid_alert(), scope=Scope.PRIVATE, addresses='"Crisis Cell ops@x.be')),
               Code.ADDRESSES_FORMAT, Level.ERROR, "/alert/addresses")
    assert_one(check(replace(valid_alert(), incidents='INC-7 "Brussels fire')),
               Code.INCIDENTS_FORMAT, Level.ERROR, "/alert/incidents")


# --- info: times, language, values, resources ---------------------------------------------------

def test_expires_before_sent() -> None:
    alert = with_info(valid_alert(), expires=SENT - timedelta(hours=1), effective=None, onset=None)
    p = assert_one(check(alert), Code.EXPIRES_ORDER, Level.ERROR, "/alert/info[1]/expires")
    assert "(CAP 1.2 §3.2.2 expires)" in p.message


def test_expires_before_effective() -> None:
    alert = with_info(valid_alert(), effective=SENT + timedelta(hours=8))
    assert_one(check(alert), Code.EXPIRES_ORDER, Level.ERROR, "/alert/info[1]/expires")


def test_expires_before_onset_is_a_warning() -> None:
    alert = with_info(valid_alert(), onset=SENT + timedelta(hours=8))
    assert_one(check(alert), Code.EXPIRES_ORDER, Level.WARNING, "/alert/info[1]/expires")


def test_expires_equal_to_sent_is_a_warning() -> None:
    alert = with_info(valid_alert(), expires=SENT, effective=None, onset=None)
    assert_one(check(alert), Code.EXPIRES_ORDER, Level.WARNING, "/alert/info[1]/expires")


def test_bad_language_tag() -> None:
    p = assert_one(check(with_info(valid_alert(), language="nl_BE")),
                   Code.LANGUAGE_TAG, Level.ERROR, "/alert/info[1]/language")
    assert "'nl_BE'" in p.message


def test_unusual_primary_language_subtag_is_a_warning() -> None:
    assert_one(check(with_info(valid_alert(), language="dutch-BE")),
               Code.LANGUAGE_TAG, Level.WARNING, "/alert/info[1]/language")


def test_empty_language_means_en_us() -> None:
    assert check(with_info(valid_alert(), language="")) == []


def test_empty_value_name_is_a_warning() -> None:
    alert = with_info(valid_alert(), event_codes=(EventCode("", "FIRE"),))
    assert_one(check(alert), "value-name-empty", Level.WARNING, "/alert/info[1]/eventCode[1]/valueName")
    assert_one(check(with_area(geocodes=(Geocode(" ", "21001"),))), "value-name-empty", Level.WARNING,
               f"{AREA}/geocode[1]/valueName")


def test_relative_web_is_a_warning() -> None:
    assert_one(check(with_info(valid_alert(), web="www.example.be")),
               "web-uri", Level.WARNING, "/alert/info[1]/web")


def with_resource(**changes: object) -> Alert:
    alert = valid_alert()
    return with_info(alert, resources=(replace(alert.infos[0].resources[0], **changes),))  # type: ignore[arg-type]


def test_deref_uri_not_base64() -> None:
    p = assert_one(check(with_resource(deref_uri="not base64!")),
                   Code.DEREF_URI_BASE64, Level.ERROR, "/alert/info[1]/resource[1]/derefUri")
    assert "(CAP 1.2 §3.2.3 derefUri)" in p.message
    for text in ("QUJD=", "QUJD====", "QUJ", "data:audio/mpeg;base64,QUJD", "QUJDRA==QUJD"):
        assert_one(check(with_resource(deref_uri=text)), Code.DEREF_URI_BASE64, Level.ERROR,
                   "/alert/info[1]/resource[1]/derefUri")
    assert check(with_resource(deref_uri=" QUJD\n RA==\n")) == []


def test_large_base64_deref_uri_is_accepted_quickly() -> None:
    audio = bytes(range(256)) * (340_000 // 256)
    text = base64.encodebytes(audio).decode("ascii")  # 76-character lines, as encoders write it
    assert len(text) > 450_000
    alert = with_resource(deref_uri=text, uri="alert.mp3", mime_type="audio/mpeg")
    start = time.perf_counter()
    problems = check(alert)
    elapsed = time.perf_counter() - start
    assert problems == []
    assert elapsed < 0.1, elapsed


def test_relative_uri_without_deref_uri_is_a_warning() -> None:
    assert_one(check(with_resource(uri="map.png")), "resource-uri", Level.WARNING,
               "/alert/info[1]/resource[1]/uri")


def test_negative_resource_size() -> None:
    assert_one(check(with_resource(size=-1)), Code.RESOURCE_SIZE, Level.ERROR,
               "/alert/info[1]/resource[1]/size")


# --- area ---------------------------------------------------------------------------------------

def test_open_polygon() -> None:
    open_ring = "50.83,4.29 50.83,4.32 50.85,4.32 50.85,4.29"
    p = assert_one(check(with_area(polygons=(Polygon(open_ring),))),
                   Code.POLYGON_CLOSED, Level.ERROR, f"{AREA}/polygon[1]")
    assert "(CAP 1.2 §3.2.4 polygon)" in p.message and "'50.85,4.29'" in p.message


def test_polygon_with_three_points() -> None:
    p = assert_one(check(with_area(polygons=(Polygon("50.83,4.29 50.83,4.32 50.83,4.29"),))),
                   Code.POLYGON_POINTS, Level.ERROR, f"{AREA}/polygon[1]")
    assert "3 coordinate pairs" in p.message


def test_polygon_syntax() -> None:
    for text in ("50.83;4.29 50.83,4.32 50.85,4.32 50.83,4.29", "nan,4 1,2 3,4 nan,4", "50.8, 4.3"):
        assert_one(check(with_area(polygons=(Polygon(text),))),
                   Code.POLYGON_SYNTAX, Level.ERROR, f"{AREA}/polygon[1]")


def test_empty_polygon_is_a_warning() -> None:
    assert_one(check(with_area(polygons=(Polygon(""),))), Code.POLYGON_SYNTAX, Level.WARNING,
               f"{AREA}/polygon[1]")


def test_out_of_range_latitude() -> None:
    ring = "95.0,4.29 50.83,4.32 50.85,4.32 95.0,4.29"
    p = assert_one(check(with_area(polygons=(Polygon(ring),))),
                   Code.COORDINATE_RANGE, Level.ERROR, f"{AREA}/polygon[1]")
    assert "'95.0,4.29' and 1 more" in p.message
    assert_one(check(with_area(circles=(Circle("50.8,190 1"),))),
               Code.COORDINATE_RANGE, Level.ERROR, f"{AREA}/circle[1]")


def test_second_polygon_path() -> None:
    problems = check(with_area(polygons=(Polygon(SQUARE), Polygon("1,1 2,2 3,3 4,4"))))
    assert_one(problems, Code.POLYGON_CLOSED, Level.ERROR, f"{AREA}/polygon[2]")


def test_circle_without_radius() -> None:
    p = assert_one(check(with_area(circles=(Circle("50.84,4.30"),))),
                   Code.CIRCLE_SYNTAX, Level.ERROR, f"{AREA}/circle[1]")
    assert "has no radius" in p.message


def test_circle_syntax() -> None:
    for text in ("50.84 4.30 2", "50.84,4.30 2km", "50.84,4.30,2"):
        assert_one(check(with_area(circles=(Circle(text),))), Code.CIRCLE_SYNTAX, Level.ERROR,
                   f"{AREA}/circle[1]")


def test_circle_radius_zero_is_valid() -> None:
    assert check(with_area(circles=(Circle("32.9525,-115.5527 0"),))) == []


def test_negative_radius() -> None:
    assert_one(check(with_area(circles=(Circle("50.84,4.30 -1"),))), Code.CIRCLE_RADIUS, Level.ERROR,
               f"{AREA}/circle[1]")


def test_ceiling_without_altitude() -> None:
    assert_one(check(with_area(altitude=None)), Code.CEILING_WITHOUT_ALTITUDE, Level.ERROR,
               f"{AREA}/ceiling")


def test_ceiling_below_altitude() -> None:
    assert_one(check(with_area(altitude=Decimal("500"))), Code.CEILING_BELOW_ALTITUDE, Level.ERROR,
               f"{AREA}/ceiling")


# --- the clock ----------------------------------------------------------------------------------

def test_expired_at_now_is_a_warning() -> None:
    problems = check(valid_alert(), now=SENT + timedelta(days=1))
    assert {(p.code, p.level, p.path) for p in problems} == {
        ("expired", Level.WARNING, "/alert/info[1]/expires"),
        ("expired", Level.WARNING, "/alert/info[2]/expires"),
    }


def test_sent_in_the_future_is_a_warning() -> None:
    assert_one(check(valid_alert(), now=SENT - timedelta(hours=1)), "sent-future", Level.WARNING,
               "/alert/sent")


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check(valid_alert(), now=SENT.replace(tzinfo=None))


# --- properties ---------------------------------------------------------------------------------

LAT = st.floats(min_value=-90, max_value=90, allow_nan=False)
LON = st.floats(min_value=-180, max_value=180, allow_nan=False)


@given(st.lists(st.tuples(LAT, LON), min_size=3, max_size=40))
def test_any_closed_polygon_in_range_is_valid(points: list[tuple[float, float]]) -> None:
    pairs = [f"{lat},{lon}" for lat, lon in points]
    assert check(with_area(polygons=(Polygon(" ".join([*pairs, pairs[0]])),))) == []


@given(LAT, LON, st.floats(min_value=0, max_value=20_000, allow_nan=False))
def test_any_circle_in_range_is_valid(lat: float, lon: float, radius: float) -> None:
    assert check(with_area(circles=(Circle(f"{lat},{lon} {radius}"),))) == []
