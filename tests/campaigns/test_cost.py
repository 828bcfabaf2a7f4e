"""What deliveries cost: SMS per part, calls per started minute, per-prefix prices (pure)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from hub.campaigns.cost import Prices, euro, started_minutes
from hub.config import CostSettings, load
from hub.errors import ConfigError


def test_defaults_are_bealert_figures() -> None:
    prices = Prices.from_settings(CostSettings())
    assert prices.sms("+32477123456", 1) == Decimal("0.055")
    assert prices.sms("+32477123456", 3) == Decimal("0.165")
    assert prices.voice("+3225112233", 60) == Decimal("0.055")
    assert prices.voice("+3225112233", 61) == Decimal("0.110")
    assert prices.voice("+3225112233", 0) == 0  # not answered: not charged
    assert prices.delivery("email", "an@example.be") == 0
    assert prices.delivery("sms", "+32477123456", parts=2) == Decimal("0.110")
    assert prices.delivery("voice", None, seconds=1) == Decimal("0.055")


def test_a_prefix_price_applies_to_its_numbers_the_longest_first() -> None:
    prices = Prices.from_settings(CostSettings(sms_prefix_eur={"+33": 0.08, "+3247": 0.05, "+32": 0.06},
                                               voice_prefix_eur={"+44": 0.2}))
    assert prices.sms("+33612345678", 2) == Decimal("0.16")
    assert prices.sms_part("+32477123456") == Decimal("0.05")
    assert prices.sms_part("+3225112233") == Decimal("0.06")
    assert prices.sms_part("+31612345678") == Decimal("0.055")
    assert prices.sms_part(None) == Decimal("0.055")  # an erased number
    assert prices.voice("+447700900123", 90) == Decimal("0.4")
    assert prices.voice("+33612345678", 90) == Decimal("0.110")


def test_many_parts_add_up_exactly() -> None:
    prices = Prices()
    total = sum((prices.sms("+32477123456", 1) for _ in range(100_000)), Decimal(0))
    assert total == Decimal("5500.000") and euro(total) == 5500.0


@pytest.mark.parametrize("seconds, minutes", [(0, 0), (0.4, 1), (59.9, 1), (60, 1), (60.1, 2), (-3, 0)])
def test_started_minutes(seconds: float, minutes: int) -> None:
    assert started_minutes(seconds) == minutes


@pytest.mark.parametrize(("settings", "needle"), [
    (CostSettings(sms_prefix_eur={"33": 0.08}), "cost.sms_prefix_eur: '33' is not a country prefix"),
    (CostSettings(voice_prefix_eur={"+3x": 0.08}), "cost.voice_prefix_eur: '+3x' is not a country prefix"),
    (CostSettings(sms_eur=-0.01), "cost.sms_eur = -0.01: a price must be"),
    (CostSettings(sms_prefix_eur={"+33": float("nan")}), "cost.sms_prefix_eur.+33"),
])
def test_bad_prices_name_the_setting(settings: CostSettings, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Prices.from_settings(settings)
    assert needle in str(exc.value)


def test_prefix_prices_from_toml_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('[cost]\nsms_eur = 0.06\n[cost.sms_prefix_eur]\n"+33" = 0.08\n')
    cost = load(path, environ={}).cost
    assert cost.sms_eur == 0.06 and cost.sms_prefix_eur == {"+33": 0.08}
    env = load(None, environ={"CAPHUB_COST_VOICE_PREFIX_EUR": "+33=0.1, +44=0.2"}).cost
    assert env.voice_prefix_eur == {"+33": 0.1, "+44": 0.2}
    with pytest.raises(ConfigError, match="CAPHUB_COST_SMS_PREFIX_EUR = '\\+33': not a table"):
        load(None, environ={"CAPHUB_COST_SMS_PREFIX_EUR": "+33"})
    with pytest.raises(ConfigError, match="\\+33: not a number"):
        load(None, environ={"CAPHUB_COST_SMS_PREFIX_EUR": "+33=cheap"})
