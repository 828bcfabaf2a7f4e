"""Planning a campaign: groups, area, members, language, channels, de-duplication, on synthetic
directories (no I/O)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import shapely

from hub.cap.model import (
    Alert,
    Area,
    Category,
    Certainty,
    Circle,
    Geocode,
    Info,
    MsgType,
    Parameter,
    Point,
    Polygon,
    Scope,
    Severity,
    Status,
    Urgency,
)
from hub.domain import Channel, EntityType, Group, Kind, Language
from hub.routing.directory import Directory, MemberRow
from hub.routing.geometry import CircleShape
from hub.routing.plan import (
    ANSWER,
    CANCEL,
    EXPIRED,
    NO_CHANNEL,
    NO_GROUP,
    PREFERENCES,
    PRIVATE_WITHOUT_ADDRESSES,
    RESTRICTED_WITHOUT_RECIPIENTS,
    CampaignPlan,
    Delivery,
    plan_campaign,
)
from hub.routing.vector import circle_geometry, destination, geocode_key, haversine_km

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CENTRE = Point(50.8, 4.4)  # Brussels


# --- builders -----------------------------------------------------------------------------------


def info(lang: str | None = "nl-BE", **changes: Any) -> Info:
    base = Info(categories=(Category.SAFETY,), event="Brand", urgency=Urgency.IMMEDIATE,
                severity=Severity.SEVERE, certainty=Certainty.OBSERVED, language=lang,
                expires=NOW + timedelta(hours=2))
    return dataclasses.replace(base, **changes)


def alert(*areas: Area, infos: Sequence[Info] | None = None, **changes: Any) -> Alert:
    base = Alert(identifier="BE-1", sender="sender@example.be", sent=NOW - timedelta(minutes=1),
                 status=Status.ACTUAL, msg_type=MsgType.ALERT, scope=Scope.PUBLIC,
                 infos=tuple(infos) if infos is not None else (info(areas=areas),))
    return dataclasses.replace(base, **changes)


def box_polygon(south: float, west: float, north: float, east: float) -> Polygon:
    pairs = [(south, west), (south, east), (north, east), (north, west), (south, west)]
    return Polygon(" ".join(f"{lat},{lon}" for lat, lon in pairs))


def box_territory(south: float, west: float, north: float, east: float,
                  geocodes: dict[str, list[str]] | None = None) -> str:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return json.dumps({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                       "properties": {"geocodes": geocodes or {}}})


def codes_territory(geocodes: dict[str, list[str]]) -> str:
    return json.dumps({"type": "Feature", "geometry": None, "properties": {"geocodes": geocodes}})


def group(gid: str, **changes: Any) -> Group:
    return dataclasses.replace(Group(id=hash(gid) % 1000, gid=gid, entity_id=1, name=gid), **changes)


class Member:
    """A synthetic member: (id, language, lat, lon, prefs), phones and e-mails, groups."""

    def __init__(self, member_id: int, *groups: str, lang: str = "nl", at: Point | None = None,
                 mobile: str | None = "auto", fixed: str | None = None, email: str | None = "auto",
                 prefs: str = "") -> None:
        self.id, self.groups, self.lang, self.at, self.prefs = member_id, groups, lang, at, prefs
        self.mobile = f"+3247{member_id:07d}" if mobile == "auto" else mobile
        self.fixed = fixed
        self.email = f"m{member_id}@example.be" if email == "auto" else email

    def row(self) -> MemberRow:
        lat = None if self.at is None else self.at.lat
        lon = None if self.at is None else self.at.lon
        return self.id, self.lang, lat, lon, self.prefs


def directory(groups: Sequence[Group], members: Sequence[Member]) -> Directory:
    phones = [(m.id, m.mobile, "mobile") for m in members if m.mobile]
    phones += [(m.id, m.fixed, "fixed") for m in members if m.fixed]
    return Directory.from_rows(
        members=[m.row() for m in members], phones=phones,
        emails=[(m.id, m.email) for m in members if m.email],
        memberships=[(g, m.id) for m in members for g in m.groups], groups=groups)


def plan(a: Alert, groups: Sequence[Group], members: Sequence[Member], *, kind: Kind = Kind.ALERT,
         default: Language = Language.NL, entity_groups: Sequence[Group] | None = None) -> CampaignPlan:
    return plan_campaign(a, entity_type=EntityType.GROUPS,
                         entity_groups=groups if entity_groups is None else entity_groups,
                         directory=directory(groups, members), kind=kind, default_language=default,
                         now=NOW)


def members_of(p: CampaignPlan, channel: Channel = Channel.EMAIL) -> list[int]:
    return [d.member_id for d in p.deliveries(channel)]


def at_km(km: float, bearing_deg: float, centre: Point = CENTRE) -> Point:
    lat, lon = destination(centre, np.array([math.radians(bearing_deg)]), km)
    return Point(float(lat[0]), float(lon[0]))


# --- area: circles and polygons -------------------------------------------------------------------


@pytest.mark.parametrize("bearing", [0, 90, 180, 270, 45])
def test_circle_is_in_km_on_the_sphere(bearing: float) -> None:
    """At lat 50.8 a degree of longitude is 70 km, of latitude 111 km: degrees would fail east."""
    g = group("g")
    members = [Member(1, "g", at=at_km(4.9, bearing)), Member(2, "g", at=at_km(5.1, bearing))]
    p = plan(alert(Area("5 km", circles=(Circle(f"{CENTRE.lat},{CENTRE.lon} 5"),))), [g], members)
    assert members_of(p) == [1]
    assert p.members_outside_area == 1


def test_destination_and_haversine_agree() -> None:
    point = at_km(5.0, 90)
    assert haversine_km(np.array([point.lat]), np.array([point.lon]), CENTRE)[0] == pytest.approx(5.0)


def test_polygon_keeps_located_members_inside_and_edges_included() -> None:
    g = group("g")
    members = [Member(1, "g", at=Point(50.85, 4.35)), Member(2, "g", at=Point(50.95, 4.35)),
               Member(3, "g", at=Point(50.80, 4.35)),  # on the southern edge
               Member(4, "g")]  # no location: matched by group
    p = plan(alert(Area("box", polygons=(box_polygon(50.8, 4.3, 50.9, 4.4),))), [g], members)
    assert members_of(p) == [1, 3, 4]
    assert p.members_matched == 3 and p.members_outside_area == 1


def test_group_territory_must_meet_the_area() -> None:
    near = group("near", territory=box_territory(50.8, 4.3, 50.9, 4.4))
    far = group("far", territory=box_territory(51.1, 3.6, 51.2, 3.8))
    free = group("free")  # no territory: by membership
    members = [Member(1, "near"), Member(2, "far"), Member(3, "free")]
    p = plan(alert(Area("box", polygons=(box_polygon(50.85, 4.35, 50.95, 4.45),))), [near, far, free],
             members)
    assert set(p.groups) == {"near", "free"}
    assert members_of(p) == [1, 3]


def test_circle_meets_a_territory_it_only_reaches_in_km() -> None:
    east = at_km(4.0, 90)
    g = group("g", territory=box_territory(50.79, east.lon, 50.81, east.lon + 0.05))
    p = plan(alert(Area("5 km", circles=(Circle(f"{CENTRE.lat},{CENTRE.lon} 5"),))), [g], [Member(1, "g")])
    assert p.groups == ("g",)
    p = plan(alert(Area("3 km", circles=(Circle(f"{CENTRE.lat},{CENTRE.lon} 3"),))), [g], [Member(1, "g")])
    assert p.groups == () and p.reason == NO_GROUP


def test_alert_without_area_reaches_whole_groups() -> None:
    g = group("g", territory=box_territory(50.8, 4.3, 50.9, 4.4))
    p = plan(alert(), [g], [Member(1, "g", at=Point(10, 10))])
    assert members_of(p) == [1]


# --- geocodes -------------------------------------------------------------------------------------


def test_nis_and_postcode_match_group_geocodes() -> None:
    anderlecht = group("anderlecht", territory=codes_territory({"NIS": ["21001"]}))
    brussels = group("brussels", territory=codes_territory({"NIS": ["21004"]}))
    ixelles = group("ixelles", territory=codes_territory({"postcode": ["1050"]}))
    members = [Member(1, "anderlecht"), Member(2, "brussels"), Member(3, "ixelles")]
    groups = [anderlecht, brussels, ixelles]
    area = Area("codes", geocodes=(Geocode("NIS5", "21001"), Geocode("POSTCODE", " 1050 ")))
    p = plan(alert(area), groups, members)
    assert set(p.groups) == {"anderlecht", "ixelles"}
    assert members_of(p) == [1, 3]


def test_geocode_group_keeps_members_outside_the_polygon() -> None:
    by_code = group("code", territory=box_territory(50.0, 5.0, 50.1, 5.1, {"NIS": ["62063"]}))
    by_shape = group("shape")
    members = [Member(1, "code", at=Point(50.05, 5.05)), Member(2, "shape", at=Point(50.05, 5.05))]
    area = Area("mixed", polygons=(box_polygon(50.8, 4.3, 50.9, 4.4),), geocodes=(Geocode("NIS", "62063"),))
    p = plan(alert(area), [by_code, by_shape], members)
    assert members_of(p) == [1]


def test_geocodes_against_a_polygon_territory_are_undecided() -> None:
    g = group("g", territory=box_territory(50.8, 4.3, 50.9, 4.4))
    p = plan(alert(Area("codes", geocodes=(Geocode("NIS", "21001"),))), [g], [Member(1, "g")])
    assert p.groups == () and p.groups_undecided == ("g",) and len(p) == 0


# --- which groups ---------------------------------------------------------------------------------


def test_only_the_entity_groups() -> None:
    own, other = group("own"), group("other", entity_id=2)
    p = plan(alert(), [own, other], [Member(1, "own"), Member(2, "other")], entity_groups=[own])
    assert p.groups == ("own",) and members_of(p) == [1]


def test_addresses_narrow_and_unknown_ones_are_listed() -> None:
    g1, g2 = group("g1"), group("g 2")
    p = plan(alert(addresses='"g 2" nope'), [g1, g2], [Member(1, "g1"), Member(2, "g 2")])
    assert p.groups == ("g 2",) and p.unknown_addresses == ("nope",)
    assert members_of(p) == [2]


def test_private_needs_addresses() -> None:
    g = group("g")
    p = plan(alert(scope=Scope.PRIVATE), [g], [Member(1, "g")])
    assert p.reason == PRIVATE_WITHOUT_ADDRESSES and len(p) == 0 and list(p.batches(Channel.EMAIL)) == []
    p = plan(alert(scope=Scope.PRIVATE, addresses="g"), [g], [Member(1, "g")])
    assert p.reason is None and members_of(p) == [1]


def test_restriction_names_groups_and_audience_tags() -> None:
    crisis = group("crisis")
    schools = group("schools", audience=("care homes",))
    rest = group("rest")
    groups = [crisis, schools, rest]
    members = [Member(1, "crisis"), Member(2, "schools"), Member(3, "rest")]
    restricted = alert(scope=Scope.RESTRICTED, restriction='For group:crisis and "audience:Care Homes" only')
    assert set(plan(restricted, groups, members).groups) == {"crisis", "schools"}
    p = plan(alert(scope=Scope.RESTRICTED, restriction="operational staff"), groups, members)
    assert p.reason == RESTRICTED_WITHOUT_RECIPIENTS
    p = plan(alert(scope=Scope.RESTRICTED, restriction="operational staff", addresses="rest"),
             groups, members)
    assert p.groups == ("rest",)


@pytest.mark.parametrize(("audience", "expected"), [
    ("Farmers and horticulturists", {"farm"}),
    ("farmers, schools", {"farm", "school"}),
    ("the general public", {"farm", "school", "plain"}),
    (None, {"farm", "school", "plain"}),
    ("farmersmarket visitors", {"farm", "school", "plain"}),  # a tag is matched as whole words
])
def test_audience_matches_group_tags(audience: str | None, expected: set[str]) -> None:
    groups = [group("farm", audience=("farmers",)), group("school", audience=("schools", "crèches")),
              group("plain")]
    members = [Member(1, "farm"), Member(2, "school"), Member(3, "plain")]
    a = alert(infos=[info(audience=audience)])
    assert set(plan(a, groups, members).groups) == expected


# --- language -------------------------------------------------------------------------------------


def test_language_fallback_chain() -> None:
    g = group("g")
    members = [Member(1, "g", lang="nl"), Member(2, "g", lang="fr-BE"), Member(3, "g", lang="de"),
               Member(4, "g", lang="EN")]
    infos = [info("fr-BE", headline="fr"), info("nl-BE", headline="nl"), info(None, headline="en-US")]
    p = plan(alert(infos=infos), [g], members, default=Language.NL)
    chosen = {d.member_id: (d.info, d.language) for d in p.deliveries(Channel.EMAIL)}
    assert chosen == {1: (1, "nl"), 2: (0, "fr"), 3: (1, "nl"), 4: (2, "en")}
    assert p.per_language() == {"en": 3, "fr": 3, "nl": 6}  # sms, voice, email each
    # No info in the default language: the first info.
    p = plan(alert(infos=infos[:2]), [g], members, default=Language.DE)
    assert {d.member_id: d.info for d in p.deliveries(Channel.EMAIL)} == {1: 1, 2: 0, 3: 0, 4: 0}


def test_expired_infos_are_left_out_of_the_choice() -> None:
    g = group("g")
    infos = [info("fr-BE", expires=NOW - timedelta(minutes=1)), info("nl-BE")]
    p = plan(alert(infos=infos), [g], [Member(1, "g", lang="fr")])
    assert p.infos == (1,) and [d.info for d in p.deliveries(Channel.EMAIL)] == [1]


# --- channels -------------------------------------------------------------------------------------


def test_group_defaults_per_kind() -> None:
    g = group("g")
    p = plan(alert(), [g], [Member(1, "g")])
    assert p.per_channel() == {Channel.SMS: 1, Channel.VOICE: 1, Channel.EMAIL: 1}
    p = plan(alert(), [g], [Member(1, "g")], kind=Kind.NEWS)
    assert p.per_channel() == {Channel.EMAIL: 1}


def test_union_of_the_member_own_groups_defaults() -> None:
    sms_only = group("a", channels=((Kind.ALERT, (Channel.SMS,)),))
    email_only = group("b", channels=((Kind.ALERT, (Channel.EMAIL,)),))
    silent = group("c", channels=())
    members = [Member(1, "a"), Member(2, "b"), Member(3, "a", "b"), Member(4, "c")]
    p = plan(alert(), [sms_only, email_only, silent], members)
    assert members_of(p, Channel.SMS) == [1, 3] and members_of(p, Channel.EMAIL) == [2, 3]
    assert p.skipped == {NO_CHANNEL: 1} and p.members_unreached == 1


def test_channel_parameter_overrides_defaults() -> None:
    g = group("g")
    a = alert(infos=[info(parameters=(Parameter("channels", "SMS, e-mail fax"),))])
    p = plan(a, [g], [Member(1, "g")], kind=Kind.NEWS)
    assert p.requested_channels == (Channel.SMS, Channel.EMAIL)
    assert p.per_channel() == {Channel.SMS: 1, Channel.EMAIL: 1}
    assert any("fax" in n for n in p.notes)


def test_member_preferences_narrow() -> None:
    g = group("g")
    members = [Member(1, "g", prefs='["voice"]', fixed="+3223334455"), Member(2, "g", prefs="sms,email"),
               Member(3, "g", prefs="voice")]
    a = alert(infos=[info(parameters=(Parameter("channels", "email"),))])
    p = plan(a, [g], members)
    assert members_of(p) == [2]
    assert p.skipped == {PREFERENCES: 2}
    p = plan(alert(), [g], members)
    assert [(d.member_id, d.address) for d in p.deliveries(Channel.VOICE)] == [
        (1, "+32470000001"), (1, "+3223334455"), (3, "+32470000003")]
    assert members_of(p, Channel.SMS) == [2]


def test_missing_contact_points_are_skipped_and_counted() -> None:
    g = group("g")
    members = [Member(1, "g", mobile=None, fixed="+3221111111", email=None), Member(2, "g", mobile=None),
               Member(3, "g", mobile=None, email=None)]
    p = plan(alert(), [g], members)
    assert p.skipped == {"no mobile number": 3, "no phone number": 2, "no e-mail address": 2}
    assert members_of(p, Channel.VOICE) == [1] and members_of(p, Channel.EMAIL) == [2]
    assert p.members_matched == 3 and p.members_unreached == 1


# --- de-duplication -------------------------------------------------------------------------------


def test_one_delivery_per_contact_point_across_groups_and_members() -> None:
    g1, g2 = group("g1"), group("g2")
    home = "+3225556677"
    members = [Member(5, "g1", "g2", fixed=home, lang="fr"), Member(3, "g2", fixed=home, email="f@x.be"),
               Member(4, "g1", email="f@x.be", mobile="+32470000003")]
    p = plan(alert(), [g1, g2], members)
    voice = list(p.deliveries(Channel.VOICE))
    assert [(d.member_id, d.address) for d in voice] == [
        (3, "+32470000003"), (3, home), (5, "+32470000005")]
    assert members_of(p, Channel.EMAIL) == [3, 5]
    assert p.duplicates == {Channel.SMS: 1, Channel.VOICE: 2, Channel.EMAIL: 1}
    assert p.members_matched == 3


# --- what is not planned --------------------------------------------------------------------------


def test_expired_alert_plans_nothing() -> None:
    g = group("g")
    a = alert(infos=[info(expires=NOW), info("fr-BE", expires=NOW - timedelta(hours=1))])
    p = plan(a, [g], [Member(1, "g")])
    assert p.reason == EXPIRED and len(p) == 0 and p.counts()["reason"] == "expired"


@pytest.mark.parametrize(("msg_type", "reason"), [
    (MsgType.CANCEL, CANCEL), (MsgType.ACK, ANSWER), (MsgType.ERROR, ANSWER), (MsgType.UPDATE, None)])
def test_update_is_planned_cancel_is_the_stage_business(msg_type: MsgType, reason: str | None) -> None:
    g = group("g")
    p = plan(alert(msg_type=msg_type, references="sender@example.be,BE-0,2026-03-01T11:00:00-00:00"),
             [g], [Member(1, "g")])
    assert p.reason == reason
    assert len(p) == (0 if reason else 3)


# --- output ---------------------------------------------------------------------------------------


def test_batches_and_counts() -> None:
    g = group("g")
    members = [Member(i, "g") for i in range(1, 1201)]
    p = plan(alert(), [g], members, kind=Kind.NEWS)
    batches = list(p.batches(Channel.EMAIL, size=500))
    assert [len(b) for b in batches] == [500, 500, 200]
    assert batches[0][0] == Delivery(1, Channel.EMAIL, "m1@example.be", "nl", 0)
    assert list(p.batches(Channel.SMS)) == []
    counts = p.counts()
    assert counts["deliveries"] == {"email": 1200} and counts["languages"] == {"nl": 1200}
    assert counts["groups"] == ["g"] and counts["members_matched"] == 1200
    json.dumps(counts)
    assert "example.be" not in repr(p) and "+32" not in repr(p)


def test_directory_sorts_drops_orphans_and_hides_personal_data() -> None:
    g = group("g")
    d = Directory.from_rows(
        members=[(9, "fr", 50.0, 4.0, '["sms"]'), (2, "nl", None, None, "")],
        phones=[(9, "+32471111111", "mobile"), (2, "+3221111111", "fixed"), (7, "+32472222222", "mobile")],
        emails=[(2, "a@b.be")], memberships=[("g", 9), ("g", 2), ("nope", 2), ("g", 8)], groups=[g])
    assert d.ids.tolist() == [2, 9] and d.dropped_rows == 3
    assert d.languages[d.language[1]] == "fr" and math.isnan(d.lat[0])
    assert d.prefs.tolist() == [0, 1]
    assert [d.addresses[int(a)] for a in d.contacts[Channel.VOICE].row(0)] == ["+3221111111"]
    assert len(d.contacts[Channel.SMS].row(0)) == 0
    assert sorted(d.members_of.row(0).tolist()) == [0, 1]
    assert "+32" not in repr(d) and "a@b.be" not in repr(d) and "Directory(2 members" in repr(d)
    with pytest.raises(ValueError, match="twice"):
        Directory.from_rows(members=[(1, "nl", None, None, ""), (1, "fr", None, None, "")])


def test_unreadable_territory_is_undecided() -> None:
    g = group("g", territory="{not json")
    p = plan(alert(Area("box", polygons=(box_polygon(50.8, 4.3, 50.9, 4.4),))), [g], [Member(1, "g")])
    assert p.groups_undecided == ("g",) and p.reason == NO_GROUP


def test_areas_of_all_infos_are_united() -> None:
    g = group("g")
    members = [Member(1, "g", at=Point(50.85, 4.35)), Member(2, "g", at=Point(51.05, 3.75)),
               Member(3, "g", at=Point(50.5, 5.5))]
    infos = [info("nl-BE", areas=(Area("a", polygons=(box_polygon(50.8, 4.3, 50.9, 4.4),)),)),
             info("fr-BE", areas=(Area("b", circles=(Circle("51.05,3.75 1"),)),
                                  Area("a again", polygons=(box_polygon(50.8, 4.3, 50.9, 4.4),))))]
    p = plan(alert(infos=infos), [g], members)
    assert members_of(p) == [1, 2] and p.members_outside_area == 1


def test_circle_polygon_contains_the_circle() -> None:
    circle = CircleShape(CENTRE, 5.0)
    polygon = circle_geometry(circle)
    bearings = np.radians(np.arange(0.0, 360.0, 0.25))
    lat, lon = destination(CENTRE, bearings, 4.999)
    assert shapely.contains_xy(polygon, lon, lat).all()
    lat, lon = destination(CENTRE, bearings, 5.01)
    assert not shapely.contains_xy(polygon, lon, lat).any()
    assert geocode_key(" NIS5 ", " 21001") == ("nis", "21001") == geocode_key("INS", "21001")
    assert geocode_key("zip", "1000") == ("postcode", "1000")
