"""The fast paths of parse and rules give exactly what the long ways give.

``rules.check`` skips a rule's own code when a cheap test says there is nothing to find;
``parse`` reads ``.text`` directly when the raw bytes show no comment or processing
instruction, and finds a misplaced signature while building the model. Each shortcut is
checked here against the long way, on generated and on awkward input."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.cap import parse as parse_module
from hub.cap import rules
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
    Polygon,
    Resource,
    Scope,
    Severity,
    Status,
    Urgency,
)
from hub.cap.parse import parse
from hub.cap.problems import Code, Problem
from tests.cap.samples import FULL, MINIMAL, full_with

UTC1 = timezone(timedelta(hours=1))
SENT = datetime(2026, 11, 24, 10, 0, tzinfo=UTC1)


def long_way(alert: Alert) -> list[Problem]:
    """``rules.check`` as it was before the shortcuts: every rule's own code, always."""
    found = [*rules._identity(alert), *rules._datetimes(alert), *rules._references(alert),
             *rules._distribution(alert)]
    for i, info in enumerate(alert.infos, 1):
        found.extend(rules._info(alert, info, f"/alert/info[{i}]"))
    return found


# Coordinates as senders write them: mostly plain and in range (what the shortcut takes),
# sometimes at or past the limits or written oddly (what it must leave to the long way).
PLAIN = ["50.83", "4.29", "-90", "90", "90.0", "90.000", "-180", "180", "180.00", "0", ".5", "5.", "+45",
         "179.999", "-0.5", "89.9999"]
ODD = ["90.1", "180.5", "1e1", "9e1", "91", "-91", "٣", "nan", "", "08.5", "100", "-180.01", "0x1"]
coordinate = st.one_of(*[st.sampled_from(PLAIN)] * 12, st.sampled_from(ODD))
pair = st.one_of(*[st.builds(lambda a, b: f"{a},{b}", coordinate, coordinate)] * 12,
                 st.sampled_from(["1,2,3", "x", "50.8"]))
space = st.sampled_from([" ", "  ", "\t", "\n", " \u00a0"])


plain_pair = st.builds(lambda a, b: f"{a},{b}", st.sampled_from([n for n in PLAIN if "180" not in n]),
                       st.sampled_from(PLAIN))


@st.composite
def messy_polygon(draw: st.DrawFn) -> str:
    pairs = draw(st.lists(pair, min_size=draw(st.sampled_from([0, 3, 3, 4])), max_size=8))
    if pairs and draw(st.booleans()):
        pairs.append(pairs[0])  # closed
    text = "".join(p + draw(space) for p in pairs).strip() if pairs else ""
    return draw(st.sampled_from(["", " "])) + text + draw(st.sampled_from(["", "\n"]))


@st.composite
def closed_polygon(draw: st.DrawFn) -> str:
    pairs = draw(st.lists(plain_pair, min_size=3, max_size=6))
    return " ".join([*pairs, pairs[0]])


polygon_text = st.one_of(*[closed_polygon()] * 4, messy_polygon())
circle_text = st.one_of(
    *[st.builds(lambda p, r: f"{p} {r}", plain_pair, st.sampled_from(["2.5", "0", ".5", "5."]))] * 4,
    st.builds(lambda p, s, r: f"{p}{s}{r}", pair, space, st.sampled_from(
        ["2.5", "0", "-1", "+3", ".5", "5.", "1e3", "x", "", "2.5 3"])),
    pair, st.just(""))
ODD_URIS = ["http://", "http:x", "https://a b", "//host/x", "mailto:a@b.be", "http://[::1]/", "http://[::1",
            "map.png", "https://é.be/", "https://h/\u00e9", "x:", "1http://h", "https://h:99999/", " "]
GOOD_URIS = ["https://www.example.be/a?b=c#d", " https://x.be/ ", "ftp://h/p", "HTTP://H", "a+b.c-d://host"]


def mostly(good: list[object], odd: list[object]) -> st.SearchStrategy[object]:
    """Values that pass a shortcut most of the time, so that every part of an <info> is
    often clean at once and the shortcut is really taken."""
    return st.one_of(*[st.sampled_from(good)] * 5, st.sampled_from(odd))


uri = mostly(GOOD_URIS, ODD_URIS)
language = mostly([None, "nl-BE", "fr", "en-US", "deu"],
                  ["", "x-klingon", "i-navajo", "e", "toolongtag-x", "nl_BE", " nl-BE ", "abcd", "nl-BE-x-y"])
when = mostly([None], [SENT + timedelta(hours=h) for h in range(-3, 4)])
until = mostly([None, SENT + timedelta(hours=5)], [SENT + timedelta(hours=h) for h in range(-3, 4)])
name = mostly(["SAME", "NIS"], ["", " "])
decimal = mostly([None], [Decimal("0"), Decimal("100"), Decimal("-5")])


@st.composite
def infos(draw: st.DrawFn) -> Info:
    areas = tuple(
        Area("A", tuple(Polygon(draw(polygon_text)) for _ in range(draw(st.integers(0, 2)))),
             tuple(Circle(draw(circle_text)) for _ in range(draw(mostly([0, 1], [2])))),
             tuple(Geocode(draw(name), "1") for _ in range(draw(st.integers(0, 2)))),
             draw(decimal), draw(decimal))
        for _ in range(draw(st.integers(1, 2))))
    resources = tuple(
        Resource("r", "image/png", draw(mostly([None, 0, 10], [-1])), draw(st.none() | uri),
                 draw(mostly([None], ["QUJD", "QUJD=", "not base64!"])))
        for _ in range(draw(mostly([0, 1], [2]))))
    return Info(
        (Category.FIRE,), "Brand", Urgency.IMMEDIATE, Severity.SEVERE, Certainty.OBSERVED,
        language=draw(language), event_codes=(EventCode(draw(name), "x"),),
        effective=draw(when), onset=draw(when), expires=draw(until),
        web=draw(mostly([None], GOOD_URIS + ODD_URIS)),
        resources=resources, areas=areas,
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(infos(), max_size=3), st.sampled_from(list(Scope)),
       st.sampled_from([None, "", "ok", 'a "b']), st.booleans())
def test_rules_shortcuts_find_what_the_long_way_finds(
    found_infos: list[Info], scope: Scope, text: str | None, naive: bool
) -> None:
    sent = SENT.replace(tzinfo=None) if naive else SENT
    alert = Alert("ID-1", "s@x.be", sent, Status.ACTUAL, MsgType.ALERT, scope, restriction=text,
                  addresses=text, incidents=text, infos=tuple(found_infos))
    assert rules.check(alert) == long_way(alert)


def test_plain_bytes_sees_comments_pis_and_odd_encodings() -> None:
    plain = parse_module._plain_bytes
    assert plain(FULL) and plain(MINIMAL) and plain(b"\xef\xbb\xbf" + MINIMAL)
    assert not plain(MINIMAL.replace(b"<status>", b"<!-- x --><status>"))
    assert not plain(MINIMAL.replace(b"<status>", b"<?pi x?><status>"))
    assert not plain(MINIMAL.replace(b'encoding="UTF-8"', b'encoding="UTF-16"'))
    assert not plain(MINIMAL.replace(b'encoding="UTF-8"', b'encoding="UTF-7"'))
    assert plain(MINIMAL.replace(b'encoding="UTF-8"', b"encoding='windows-1252'"))
    assert not plain(MINIMAL.decode().encode("utf-16"))
    assert plain(MINIMAL.replace(b"<note>", b"<note>What?! ")) or b"<note>" not in MINIMAL


def test_comments_and_pis_anywhere_give_the_same_model() -> None:
    marked = (FULL.decode()
              .replace("<event>Brand in", "<event>Brand<!-- c --> in")
              .replace("<valueName>NIS</valueName>", "<!-- x --><valueName>N<?pi?>IS</valueName><!-- y -->")
              .replace("<areaDesc>Anderlecht industriezone", "<!-- a --><areaDesc>Anderlecht <!-- b -->"
                       "industriezone")
              .replace("<size>1024</size>", "<size>10<!-- s -->24</size>")
              .replace("<resourceDesc>", "<!-- r --><resourceDesc>")
              .replace("<altitude>0</altitude>", "<altitude><!-- z -->0</altitude>")
              .replace("<category>Safety</category>", "<category>Saf<!-- q -->ety</category><!-- w -->")
              .replace("<sent>", "<!-- before sent --><sent>"))
    clean, commented = parse(FULL), parse(marked.encode())
    assert clean.ok and commented.ok, commented.problems
    assert commented.alert == clean.alert


def test_cdata_and_references_in_text() -> None:
    result = parse(full_with("<note>Exercise", "<note><![CDATA[Exer]]>&#99;ise"))
    assert result.ok and result.alert is not None and result.alert.note is not None
    assert result.alert.note.startswith("Exercise of the fixture")


def test_a_cap_element_after_the_signature_is_refused_before_the_model() -> None:
    dsig = '<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/></Signature>'
    late = FULL.decode().replace("  <info>", dsig + "<info>", 1).encode()
    result = parse(late)
    assert result.alert is None
    assert [(p.code, p.path) for p in result.problems] == [(Code.XSD_UNEXPECTED, "/alert/info[1]")]
    assert "after a signature" in result.problems[0].message


# Each shortcut alone: when it says "nothing to find", the rule's own code finds nothing.
# (Generated so that the shortcut says so often, which the whole-alert test above cannot.)

@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(plain_pair, pair), min_size=3, max_size=7), st.booleans(), space)
def test_polygon_shortcut(pairs: list[str], close: bool, sep: str) -> None:
    text = sep.join([*pairs, pairs[0]] if close else pairs)
    if rules._CLEAN_POLYGON.fullmatch(text) and rules._closed(text):
        assert list(rules.check_area(Area("A", (Polygon(text),)), "/p")) == []


@settings(max_examples=300, deadline=None)
@given(circle_text)
def test_circle_shortcut(text: str) -> None:
    if rules._CLEAN_CIRCLE.fullmatch(text):
        assert list(rules.check_area(Area("A", (), (Circle(text),)), "/c")) == []


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.sampled_from(GOOD_URIS + ODD_URIS), st.text(max_size=30),
                 st.builds(lambda s, r: f"{s}://{r}", st.sampled_from(["http", "x+y", "a1"]),
                           st.text(max_size=20))))
def test_uri_shortcut(text: str) -> None:
    if rules._CLEAN_URI.fullmatch(text):
        assert rules._absolute_uri(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(language, st.from_regex(r"[A-Za-z]{1,9}(-[A-Za-z0-9]{1,9}){0,2}", fullmatch=True)))
def test_language_shortcut(tag: object) -> None:
    assert tag is None or isinstance(tag, str)
    if tag and rules._RFC3066.fullmatch(tag) and rules._common_primary(tag):
        info = Info((Category.FIRE,), "B", Urgency.IMMEDIATE, Severity.SEVERE, Certainty.OBSERVED,
                    language=tag)
        assert list(rules._language(info, "/i")) == []
