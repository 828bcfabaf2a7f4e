"""Templates, pure: the skeleton's checks, placeholders, and the CAP message built from it."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.cap.parse import parse
from hub.services.templates import (
    TemplateError,
    build_cap,
    check_template,
    check_values,
    placeholders,
    placeholders_in,
    values_from_pairs,
)
from hub.store.sql_templates import StoredTemplate
from tests.api.test_templates import FIRE

NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def stored(body: dict[str, object]) -> StoredTemplate:
    return StoredTemplate(7, 1, "brand", "{}", NOW, NOW)


def test_defaults_and_placeholders() -> None:
    body = check_template("brand", {k: v for k, v in FIRE.items()
                                    if k not in ("groups", "kind", "expires_in")})
    assert (body["status"], body["scope"], body["kind"], body["expires_in"]) == (
        "Actual", "Public", "alert", 120)
    assert placeholders(body) == ["straat"]
    assert placeholders_in("{{literal}} {a} {b_2} {a}", "x") == ["a", "b_2", "a"]


@pytest.mark.parametrize(("text", "needle"), [
    ("{0}", "placeholder {0}"), ("{a!r}", "placeholder {a!r}"), ("{a:>3}", "placeholder {a:>3}"),
    ("{a", "expected '}'"), ("}", "Single '}'"),
])
def test_malformed_placeholders(text: str, needle: str) -> None:
    with pytest.raises(TemplateError, match="where") as exc:
        placeholders_in(text, "where")
    assert needle in str(exc.value)


@pytest.mark.parametrize("name", ["", "12", "has space", "-dash", "x" * 65])
def test_bad_names(name: str) -> None:
    with pytest.raises(TemplateError, match="name"):
        check_template(name, FIRE)


def test_values_checked() -> None:
    body = check_template("brand", FIRE)
    assert check_values(body, {"straat": 12}) == {"straat": "12"}
    with pytest.raises(TemplateError, match="'straat' has no value"):
        check_values(body, {})
    with pytest.raises(TemplateError, match="'x' is not in this template"):
        check_values(body, {"straat": "a", "x": "b"})
    with pytest.raises(TemplateError, match="must be text"):
        check_values(body, {"straat": ["a"]})
    assert values_from_pairs(["a=b=c", "d="]) == {"a": "b=c", "d": ""}
    with pytest.raises(TemplateError, match="NAME=VALUE"):
        values_from_pairs(["novalue"])


def test_built_cap_is_valid_and_escaped() -> None:
    body = check_template("brand", FIRE)
    data = build_cap(stored(body), body, {"straat": "A & <B>"}, sender="pz@example.be", now=NOW,
                     identifier="tpl-7-x")
    result = parse(data, now=NOW)
    assert result.ok and result.alert is not None, result.problems
    alert = result.alert
    assert alert.identifier == "tpl-7-x" and alert.sent == NOW and alert.address_list == ("plp-a",)
    assert [i.headline for i in alert.infos] == ["Brand in de A & <B>", "Incendie rue A & <B>"]
    assert alert.infos[0].areas[0].area_desc == "A & <B>"
    assert {p.value_name: p.value for p in alert.infos[0].parameters} == {
        "messageKind": "alert", "channels": "sms,email"}
    assert b"<sent>2026-05-01T10:00:00-00:00</sent>" in data


def test_built_cap_with_a_bad_value_is_not_valid() -> None:
    body = check_template("brand", dict(copy.deepcopy(FIRE), certainty="{zeker}"))
    data = build_cap(stored(body), body, {"straat": "a", "zeker": "Maybe"}, sender="pz@example.be", now=NOW)
    assert not parse(data, now=NOW).ok


def test_the_example_template_is_valid_and_builds_valid_cap() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "template.example.json"
    body = check_template("brand", json.loads(example.read_text()))
    assert placeholders(body) == ["straat", "lat", "lon", "straal"]
    values = {"straat": "Kerkstraat", "lat": "50.85", "lon": "4.35", "straal": "0.5"}
    result = parse(build_cap(stored(body), body, values, sender="pz@example.be", now=NOW), now=NOW)
    assert result.ok, result.problems
