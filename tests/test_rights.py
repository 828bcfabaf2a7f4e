"""hub.rights on hand-built values: no store, no event loop.

Every test starts from one valid alert, account and entity (which pass every check) and
changes one thing.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from hub import rights
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
    Polygon,
    Scope,
    Severity,
    Status,
    Urgency,
)
from hub.cap.problems import Level, Problem
from hub.domain import KIND_PARAMETER, Account, Entity, EntityType, Grants, Kind, Role

SENDER = "police@example.be"
# A square around the centre of Brussels, as GeoJSON ([lon, lat]).
TERRITORY = json.dumps({"type": "Polygon", "coordinates": [
    [[4.30, 50.80], [4.45, 50.80], [4.45, 50.90], [4.30, 50.90], [4.30, 50.80]]]})
INSIDE = Area("Centrum", polygons=(Polygon("50.83,4.33 50.83,4.38 50.87,4.38 50.87,4.33 50.83,4.33"),))
ACROSS = Area("Rand", circles=(Circle("50.90,4.45 5"),))  # partly inside: allowed
OUTSIDE = Area("Antwerpen", polygons=(Polygon("51.19,4.38 51.19,4.44 51.24,4.44 51.24,4.38 51.19,4.38"),))
GEOCODE_ONLY = Area("Elsene", geocodes=(Geocode("NIS", "21009"),))

INFO = Info(categories=(Category.SAFETY,), event="Brand", urgency=Urgency.IMMEDIATE,
            severity=Severity.SEVERE, certainty=Certainty.OBSERVED, language="nl-BE",
            headline="Rook", areas=(INSIDE,))
ALERT = Alert(identifier="police-1", sender=SENDER, sent=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
              status=Status.ACTUAL, msg_type=MsgType.ALERT, scope=Scope.PUBLIC, infos=(INFO,))
ENTITY = Entity(id=1, name="police", type=EntityType.AREA, senders=(SENDER, "zone@example.be"),
                territory=TERRITORY)
ACCOUNT = Account(id=7, entity_id=1, name="dispatch", role=Role.COORDINATOR, grants=Grants())


def with_areas(*areas: Area) -> Alert:
    return replace(ALERT, infos=(replace(INFO, areas=areas),))


def with_parameters(*pairs: tuple[str, str]) -> Alert:
    return replace(ALERT, infos=(replace(INFO, parameters=tuple(Parameter(n, v) for n, v in pairs)),))


def granted(**grants: object) -> Account:
    return replace(ACCOUNT, grants=Grants(**grants))  # type: ignore[arg-type]


def codes(found: list[Problem]) -> list[str]:
    return [str(p.code) for p in found]


def test_the_valid_alert_passes() -> None:
    assert rights.check_sender(ALERT, ENTITY) is None
    assert rights.check(ALERT, ACCOUNT, ENTITY) == []


# --- sender -------------------------------------------------------------------------------


def test_any_registered_sender_of_the_entity_is_fine() -> None:
    assert rights.check_sender(replace(ALERT, sender="zone@example.be"), ENTITY) is None


def test_sender_not_registered_to_the_entity() -> None:
    problem = rights.check_sender(replace(ALERT, sender="someone@else.be"), ENTITY)
    assert problem is not None
    assert (problem.path, str(problem.code), problem.level) == (
        "/alert/sender", "sender-not-registered", Level.ERROR)
    assert "someone@else.be" in problem.message


# --- kind ---------------------------------------------------------------------------------


def test_kind_is_alert_without_the_parameter() -> None:
    assert rights.message_kind(ALERT) is Kind.ALERT


@pytest.mark.parametrize(("value", "kind"), [
    ("prevention", Kind.PREVENTION), ("news", Kind.NEWS), ("alert", Kind.ALERT),
    (" Prevention ", Kind.PREVENTION),  # case and surrounding blanks do not matter
])
def test_kind_from_the_parameter(value: str, kind: Kind) -> None:
    assert rights.message_kind(with_parameters(("other", "x"), (KIND_PARAMETER, value))) is kind


def test_kind_with_an_unknown_value_is_a_finding_with_its_path() -> None:
    found = rights.message_kind(with_parameters(("other", "x"), (KIND_PARAMETER, "gossip")))
    assert isinstance(found, Problem)
    assert (found.path, str(found.code), found.level) == (
        "/alert/info[1]/parameter[2]/value", "message-kind", Level.ERROR)
    assert "'gossip'" in found.message and "prevention" in found.message


def test_an_unknown_kind_is_refused_even_with_every_kind_granted() -> None:
    assert codes(rights.check(with_parameters((KIND_PARAMETER, "gossip")), ACCOUNT, ENTITY)) == [
        "message-kind"]


# --- grants: kinds ------------------------------------------------------------------------


def test_no_kinds_grant_means_every_kind() -> None:
    news = with_parameters((KIND_PARAMETER, "news"))
    assert rights.check(news, granted(kinds=None), ENTITY) == []


def test_kind_within_the_grant() -> None:
    prevention = with_parameters((KIND_PARAMETER, "prevention"))
    account = granted(kinds=frozenset({Kind.PREVENTION, Kind.NEWS}))
    assert rights.check(prevention, account, ENTITY) == []


def test_kind_outside_the_grant() -> None:
    account = granted(kinds=frozenset({Kind.PREVENTION}))
    found = rights.check(ALERT, account, ENTITY)  # no parameter: an alert
    assert codes(found) == ["kind-not-granted"] and "alert" in found[0].message


def test_an_empty_kinds_grant_allows_nothing() -> None:
    account = granted(kinds=frozenset())
    for kind in Kind:
        assert codes(rights.check(with_parameters((KIND_PARAMETER, kind.value)), account, ENTITY)) == [
            "kind-not-granted"]


# --- grants: groups of a Private message ---------------------------------------------------


def private(addresses: str) -> Alert:
    return replace(ALERT, scope=Scope.PRIVATE, addresses=addresses)


def test_private_addresses_within_the_groups_grant() -> None:
    account = granted(groups=frozenset({"plp-a", "plp b"}))
    assert rights.check(private('plp-a "plp b"'), account, ENTITY) == []


def test_no_groups_grant_means_every_group() -> None:
    assert rights.check(private("plp-a plp-z"), granted(groups=None), ENTITY) == []


def test_each_address_outside_the_grant_is_a_finding() -> None:
    account = granted(groups=frozenset({"plp-a"}))
    found = rights.check(private("plp-a plp-b plp-c"), account, ENTITY)
    assert codes(found) == ["group-not-granted", "group-not-granted"]
    assert ["plp-b" in found[0].message, "plp-c" in found[1].message] == [True, True]


def test_an_empty_groups_grant_reaches_no_group() -> None:
    assert codes(rights.check(private("plp-a"), granted(groups=frozenset()), ENTITY)) == [
        "group-not-granted"]


def test_groups_are_not_checked_on_public_or_restricted_messages() -> None:
    account = granted(groups=frozenset())
    assert rights.check(replace(ALERT, addresses="plp-a"), account, ENTITY) == []
    restricted = replace(ALERT, scope=Scope.RESTRICTED, restriction="staff", addresses="plp-a")
    assert rights.check(restricted, account, ENTITY) == []


# --- territory ----------------------------------------------------------------------------


def test_area_partly_inside_the_territory_is_fine() -> None:
    assert rights.check(with_areas(ACROSS), ACCOUNT, ENTITY) == []


def test_area_outside_the_territory() -> None:
    found = rights.check(with_areas(INSIDE, OUTSIDE), ACCOUNT, ENTITY)
    assert [(p.path, str(p.code)) for p in found] == [("/alert/info[1]/area[2]", "area-outside-territory")]
    assert "Antwerpen" in found[0].message


def test_area_of_geocodes_only_cannot_be_decided_against_polygons() -> None:
    found = rights.check(with_areas(GEOCODE_ONLY), ACCOUNT, ENTITY)
    assert [(p.path, str(p.code)) for p in found] == [("/alert/info[1]/area[1]", "area-undecidable")]


def test_geocode_listed_by_the_territory_is_inside() -> None:
    territory = json.dumps({"type": "Feature", "geometry": None,
                            "properties": {"geocodes": {"NIS": ["21009", "21004"]}}})
    entity = replace(ENTITY, territory=territory)
    assert rights.check(with_areas(GEOCODE_ONLY), ACCOUNT, entity) == []
    other = Area("Antwerpen", geocodes=(Geocode("NIS", "11002"),))
    assert codes(rights.check(with_areas(other), ACCOUNT, entity)) == ["area-outside-territory"]


def test_without_a_territory_any_area_is_fine() -> None:
    entity = replace(ENTITY, territory=None)
    assert rights.check(with_areas(OUTSIDE, GEOCODE_ONLY), ACCOUNT, entity) == []


def test_an_alert_without_areas_passes_the_territory_check() -> None:
    assert rights.check(with_areas(), ACCOUNT, ENTITY) == []


def test_findings_add_up() -> None:
    account = granted(kinds=frozenset({Kind.NEWS}), groups=frozenset())
    alert = replace(with_areas(OUTSIDE), scope=Scope.PRIVATE, addresses="plp-a")
    assert codes(rights.check(alert, account, ENTITY)) == [
        "kind-not-granted", "group-not-granted", "area-outside-territory"]


# --- answers ------------------------------------------------------------------------------


@pytest.mark.parametrize("msg_type", [MsgType.ACK, MsgType.ERROR])
def test_ack_and_error_skip_kind_group_and_area_checks(msg_type: MsgType) -> None:
    nothing = granted(kinds=frozenset(), groups=frozenset())
    answer = replace(with_areas(OUTSIDE, GEOCODE_ONLY), msg_type=msg_type, scope=Scope.PRIVATE,
                     addresses="plp-a", references=f"{SENDER},police-0,2024-05-01T09:00:00+00:00")
    assert rights.check(answer, nothing, ENTITY) == []
    assert rights.check(replace(answer, infos=(replace(INFO, parameters=(
        Parameter(KIND_PARAMETER, "gossip"),)),)), nothing, ENTITY) == []


@pytest.mark.parametrize("msg_type", [MsgType.ACK, MsgType.ERROR])
def test_ack_and_error_still_need_a_registered_sender(msg_type: MsgType) -> None:
    answer = replace(ALERT, msg_type=msg_type, sender="someone@else.be")
    problem = rights.check_sender(answer, ENTITY)
    assert problem is not None and str(problem.code) == "sender-not-registered"


@pytest.mark.parametrize("msg_type", [MsgType.UPDATE, MsgType.CANCEL])
def test_update_and_cancel_are_checked_like_alerts(msg_type: MsgType) -> None:
    update = replace(with_areas(OUTSIDE), msg_type=msg_type)
    assert codes(rights.check(update, granted(kinds=frozenset()), ENTITY)) == [
        "kind-not-granted", "area-outside-territory"]
