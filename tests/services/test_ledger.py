"""The ledger, pure: packages and campaigns in time order, overdraft, warnings, subscription."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hub.config import LedgerSettings
from hub.domain import Entity, EntityType
from hub.services.ledger import POLICY, statement
from hub.store.sql_ledger import CampaignUsage, LedgerEntry

T0 = datetime(2024, 2, 29, 9, 0, tzinfo=UTC)
ENTITY = Entity(1, "PZ", EntityType.GROUPS, ("pz@example.be",))
SETTINGS = LedgerSettings()


def package(eur: float, at: datetime) -> LedgerEntry:
    return LedgerEntry(0, 1, at, "package", eur)


def usage(campaign: int, eur: float, at: datetime, *, simulation: bool = False) -> CampaignUsage:
    return CampaignUsage(campaign, campaign, f"a-{campaign}", "alert", "done", simulation, at, eur)


def test_nothing_recorded() -> None:
    s = statement(ENTITY, [], [], SETTINGS, now=T0)
    assert s.balance == 0 and s.subscription_years == ()
    assert s.warnings[0].startswith("not activated") and s.warnings[1].startswith("low prepaid balance")


def test_activation_and_subscription_per_started_year() -> None:
    entries = [LedgerEntry(1, 1, T0, "activation", 200.0), package(500, T0)]
    s = statement(ENTITY, entries, [], SETTINGS, now=T0 + timedelta(days=400))
    assert len(s.subscription_years) == 2  # the second year has started
    assert s.subscription_years[1][0] == datetime(2025, 2, 28, 9, 0, tzinfo=UTC)  # no 29 Feb in 2025
    doc = s.to_json()
    assert doc["activation"]["feeEur"] == 200.0 and doc["subscription"]["totalEur"] == 1577.76
    assert doc["invoicedEur"] == 1777.76 and doc["vat"] == "excluded" and doc["warnings"] == []


def test_usage_draws_on_packages_and_overdraft_is_recorded_per_campaign() -> None:
    entries = [LedgerEntry(1, 1, T0, "activation", 200.0), package(1.0, T0)]
    used = [usage(1, 0.55, T0 + timedelta(hours=1)),
            usage(2, 0.66, T0 + timedelta(hours=2)),  # runs out mid-campaign: 0.45 prepaid, 0.21 on credit
            usage(3, 99.0, T0 + timedelta(hours=3), simulation=True)]  # a simulation costs nothing
    s = statement(ENTITY, entries, used, SETTINGS, now=T0 + timedelta(days=1))
    assert [(c.prepaid, c.overdraft) for c in s.campaigns] == [
        (Decimal("0.55"), 0), (Decimal("0.45"), Decimal("0.21")), (0, 0)]
    assert s.balance == Decimal("-0.21") and s.consumed == Decimal("1.21") and s.overdraft == Decimal("0.21")
    assert s.warnings == ("overdrawn: 0.21 EUR used beyond the prepaid packages (campaigns 2 ran on "
                          "credit); buy a package",)
    line = s.to_json()["usage"][1]
    assert line["overdraftEur"] == 0.21 and line["prepaidEur"] == 0.45 and s.to_json()["policy"] == POLICY
    # a package bought later pays the overdraft first
    later = statement(ENTITY, [*entries, package(100, T0 + timedelta(hours=5))], used, SETTINGS,
                      now=T0 + timedelta(days=1))
    assert later.balance == Decimal("99.79") and later.campaigns[1].overdraft == Decimal("0.21")
    assert later.warnings == ()


def test_low_balance_warning_at_the_threshold() -> None:
    entries = [LedgerEntry(1, 1, T0, "activation", 200.0), package(60, T0)]
    s = statement(ENTITY, entries, [usage(1, 10.01, T0 + timedelta(hours=1))], SETTINGS, now=T0)
    assert s.warnings == ("low prepaid balance: 49.99 EUR left, below 50.00 EUR; buy a package",)
    s = statement(ENTITY, entries, [usage(1, 10.0, T0 + timedelta(hours=1))], SETTINGS, now=T0)
    assert s.warnings == ()
