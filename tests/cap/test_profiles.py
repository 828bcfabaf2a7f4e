"""Profiles: the valid alert of test_rules, changed one thing per test."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from hub.cap.model import Alert, Area, EventCode, Geocode, MsgType, Status
from hub.cap.problems import Level
from hub.cap.profiles import BE_AREA_DESC_MAX, PROFILES, Profile, get_profile
from hub.cap.rules import check
from tests.cap.test_rules import assert_one, valid_alert, with_area, with_info

BE = get_profile("be")
IPAWS = get_profile("ipaws")


def ipaws_alert() -> Alert:
    """The valid alert made to meet CAP-IPAWS v1.0: code, one SAME event, SAME geocodes."""
    alert = valid_alert()
    area = Area("Anderlecht", geocodes=(Geocode("SAME", "021001"),))
    infos = tuple(
        replace(info, language=lang, event_codes=(EventCode("SAME", "FRW"),),
                categories=alert.infos[0].categories, effective=None, onset=None,
                description="A large fire.", instruction="Stay inside.", areas=(area,))
        for info, lang in zip(alert.infos, ("en-US", "es-US"), strict=True)
    )
    return replace(alert, codes=("IPAWSv1.0",), infos=infos)


def test_registry() -> None:
    assert sorted(PROFILES) == ["be", "ipaws"]
    assert all(isinstance(p, Profile) and p.name == name for name, p in PROFILES.items())
    with pytest.raises(KeyError, match="be, ipaws"):
        get_profile("cap-cp")


def test_valid_alert_meets_be() -> None:
    assert BE.check(valid_alert()) == []


def test_be_languages() -> None:
    for lang in ("nl-BE", "fr-BE", "de-BE", "en", "en-US", None):
        assert BE.check(with_info(valid_alert(), language=lang)) == []
    p = assert_one(BE.check(with_info(valid_alert(), language="es-ES")), "be-language", Level.ERROR,
                   "/alert/info[1]/language")
    assert p.message.startswith("be: ")


def test_be_actual_alert_needs_info_and_area() -> None:
    assert_one(BE.check(replace(valid_alert(), infos=())), "be-info", Level.ERROR, "/alert")
    assert_one(BE.check(with_info(valid_alert(), areas=())), "be-area", Level.ERROR, "/alert/info[1]")
    # A Test message or a Cancel need not be routable.
    assert BE.check(replace(valid_alert(), status=Status.TEST, infos=())) == []
    assert BE.check(replace(valid_alert(), msg_type=MsgType.CANCEL, infos=())) == []


def test_be_long_area_desc_is_a_warning() -> None:
    assert_one(BE.check(with_area(area_desc="x" * (BE_AREA_DESC_MAX + 1))), "be-area-desc",
               Level.WARNING, "/alert/info[1]/area[1]/areaDesc")


def test_be_headline() -> None:
    assert_one(BE.check(with_info(valid_alert(), headline=None)), "be-headline", Level.WARNING,
               "/alert/info[1]/headline")
    assert_one(BE.check(with_info(valid_alert(), headline="h" * 161)), "be-headline", Level.WARNING,
               "/alert/info[1]/headline")


def test_be_expires_required() -> None:
    assert_one(BE.check(with_info(valid_alert(), expires=None)), "be-expires", Level.ERROR,
               "/alert/info[1]")


def test_valid_ipaws_alert() -> None:
    alert = ipaws_alert()
    assert check(alert) == []
    assert IPAWS.check(alert) == []


def test_ipaws_code_required() -> None:
    p = assert_one(IPAWS.check(replace(ipaws_alert(), codes=())), "ipaws-code", Level.ERROR, "/alert")
    assert p.message.startswith("ipaws: ") and "CAP-IPAWS v1.0" in p.message


def test_ipaws_expires_required() -> None:
    assert_one(IPAWS.check(with_info(ipaws_alert(), expires=None)), "ipaws-expires", Level.ERROR,
               "/alert/info[1]")


def test_ipaws_exactly_one_same_event_code() -> None:
    for codes in ((), (EventCode("SAME", "FRW"), EventCode("SAME", "EVI")), (EventCode("SAME", "FIRE"),)):
        alert = replace(ipaws_alert(), infos=tuple(
            replace(info, event_codes=codes) for info in ipaws_alert().infos))
        problems = IPAWS.check(alert)
        assert [(p.code, p.path) for p in problems] == [
            ("ipaws-same-event", "/alert/info[1]"), ("ipaws-same-event", "/alert/info[2]")]


def test_ipaws_area_required() -> None:
    alert = replace(ipaws_alert(), infos=tuple(replace(i, areas=()) for i in ipaws_alert().infos))
    problems = IPAWS.check(alert)
    assert [(p.code, p.level) for p in problems] == [("ipaws-area", Level.ERROR)] * 2


def test_ipaws_info_blocks_agree() -> None:
    alert = ipaws_alert()
    second = replace(alert.infos[1], event_codes=(*alert.infos[1].event_codes, EventCode("NWS", "x")))
    assert_one(IPAWS.check(replace(alert, infos=(alert.infos[0], second))), "ipaws-event-codes",
               Level.ERROR, "/alert/info[2]")


def test_ipaws_recommendations_are_warnings() -> None:
    alert = with_info(ipaws_alert(), effective=ipaws_alert().sent + timedelta(minutes=1))
    assert_one(IPAWS.check(alert), "ipaws-ignored", Level.WARNING, "/alert/info[1]/effective")
    assert_one(IPAWS.check(with_info(ipaws_alert(), instruction=None)), "ipaws-text", Level.WARNING,
               "/alert/info[1]")
    problems = IPAWS.check(with_info(ipaws_alert(), areas=(Area("x", geocodes=(Geocode("UGC", "X"),)),)))
    assert_one(problems, "ipaws-same-geocode", Level.WARNING, "/alert/info[1]/area[1]")
