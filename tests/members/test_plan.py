"""What an import would do, row by row."""

from __future__ import annotations

import dataclasses

from hub.domain import Language, MemberData, Phone, PhoneKind
from hub.members import Action, ImportRow, lookup_keys, plan_import, read_members_csv

JAN = MemberData(name="Jan Peeters", language=Language.NL,
                 phones=(Phone("+32477123456", PhoneKind.MOBILE),), emails=("jan@x.be",))
MARIE = MemberData(name="Marie Dubois", language=Language.FR,
                   phones=(Phone("+32477654321", PhoneKind.MOBILE),), external_id="M2")


def rows(*members: MemberData | None) -> list[ImportRow]:
    return [ImportRow(i, m, () if m else ("no name",)) for i, m in enumerate(members, 2)]


def test_create_update_refuse() -> None:
    plan = plan_import(rows(JAN, MARIE, None), {"M2": 7})
    assert plan.creates == [JAN]
    assert plan.updates == [(7, MARIE)]
    assert [(r.row, r.action, r.matched_on, r.member_id) for r in plan.report] == [
        (2, Action.CREATE, None, None),
        (3, Action.UPDATE, "external id M2", 7),
        (4, Action.REFUSE, None, None),
    ]
    assert plan.report[2].reasons == ("no name",)
    assert plan.refused == 1
    assert plan.counts == {Action.CREATE: 1, Action.UPDATE: 1, Action.UNCHANGED: 0,
                           Action.DUPLICATE: 0, Action.REFUSE: 1}


def test_update_on_a_contact_point() -> None:
    plan = plan_import(rows(JAN), {"jan@x.be": 3})
    assert plan.updates == [(3, JAN)]
    assert plan.report[0].matched_on == "contact point jan@x.be"


def test_the_same_member_twice_in_one_file() -> None:
    other_name = dataclasses.replace(JAN, name="J. Peeters", emails=())
    plan = plan_import(rows(JAN, JAN, other_name), {})
    assert plan.creates == [JAN]
    duplicate, refused = plan.report[1], plan.report[2]
    assert (duplicate.action, duplicate.duplicate_of) == (Action.DUPLICATE, 2)
    assert duplicate.warnings == ("the same member as row 2: skipped",)
    assert (refused.action, refused.duplicate_of) == (Action.REFUSE, 2)
    assert refused.reasons[0].startswith("the same member as row 2 (same external id, number")
    assert plan.refused == 1 and plan.count(Action.DUPLICATE) == 1


def test_the_same_member_twice_from_a_csv_file() -> None:
    imported = read_members_csv(b"Naam;GSM;Taal\nJan;0477 12 34 56;nl\nJan;+32 477/12.34.56;N\n")
    plan = plan_import(imported.rows, {})
    assert [r.action for r in plan.report] == [Action.CREATE, Action.DUPLICATE]
    assert len(plan.creates) == 1


def test_shared_contact_point_with_another_row_is_refused() -> None:
    wife = MemberData(name="An Peeters", language=Language.NL,
                      phones=(Phone("+32477123456", PhoneKind.MOBILE),))
    plan = plan_import(rows(JAN, wife), {})
    assert [r.action for r in plan.report] == [Action.CREATE, Action.REFUSE]


def test_two_rows_on_one_stored_member() -> None:
    by_email = MemberData(name="Jan", language=Language.NL, emails=("jan@x.be",))
    by_phone = MemberData(name="Jan", language=Language.NL, phones=JAN.phones)
    plan = plan_import(rows(by_email, by_phone), {"jan@x.be": 5, "+32477123456": 5})
    assert plan.updates == [(5, by_email)]  # the store must never update one member twice
    assert plan.report[1].action is Action.REFUSE and plan.report[1].duplicate_of == 2


def test_ambiguous_and_conflicting_matches() -> None:
    plan = plan_import(rows(JAN), {"+32477123456": 3, "jan@x.be": 4})
    assert plan.report[0].reasons == (
        "its contact points belong to different members: +32477123456 (#3), jan@x.be (#4)",)
    with_id = dataclasses.replace(JAN, external_id="A1")
    plan = plan_import(rows(with_id), {"A1": 3, "jan@x.be": 4})
    assert plan.report[0].reasons == ("external id A1 is member #3, but jan@x.be belongs to member #4",)
    assert plan.creates == [] and plan.updates == []


def test_with_current_data() -> None:
    stored = dataclasses.replace(JAN, external_id="A1", emails=("jan@x.be", "old@x.be"))
    plan = plan_import(rows(JAN), {"jan@x.be": 3}, current={3: stored})
    (target, data), = plan.updates
    assert target == 3 and data.external_id == "A1"  # kept, not erased
    assert plan.report[0].warnings == ("removes old@x.be from member #3",)
    plan = plan_import(rows(dataclasses.replace(stored)), {"A1": 3}, current={3: stored})
    assert plan.report[0].action is Action.UNCHANGED and plan.updates == []
    plan = plan_import(rows(dataclasses.replace(JAN, external_id="B9")), {"jan@x.be": 3},
                       current={3: stored})
    assert plan.report[0].action is Action.REFUSE
    assert plan.report[0].reasons == (
        "matched member #3 on contact point jan@x.be, but its external id is A1, not B9",)


def test_lookup_keys() -> None:
    assert lookup_keys(rows(JAN, MARIE, None, JAN)) == (
        ["M2"], ["+32477123456", "jan@x.be", "+32477654321"])


def test_warnings_of_the_read_are_kept() -> None:
    row = ImportRow(2, JAN, (), ("no language: nl assumed",))
    assert plan_import([row], {}).report[0].warnings == ("no language: nl assumed",)
