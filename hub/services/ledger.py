"""The per-entity ledger: activation fee, yearly subscription, prepaid packages and their use.

Amounts are euro excluding VAT, from the ``[ledger]`` settings (200 EUR activation, 788.88
EUR per started year of subscription, in the seed figures). The activation fee and the
subscription are invoiced; they do not draw on the prepaid balance. Prepaid packages are
bought (``cap-hub admin ledger ENTITY --buy 500``) and consumed by usage: each campaign's
cost, as its deliveries are billed (SMS per part, calls per started minute; e-mail free).
Simulation campaigns cost nothing and are listed as such.

**When the prepaid balance runs out mid-campaign, sending goes on.** A half-sent alert is
worse than a debt, and a campaign cannot be told apart by its kind at the moment a single
SMS is due: so no campaign is ever stopped or slowed for money. The part of a campaign's
cost the balance did not cover is its *overdraft*: recorded per campaign on the ledger
(``overdraftEur``), the balance goes negative, and the ledger warns until a package covers
it (the next package pays the overdraft first). The ledger warns too when the balance is
below ``low_balance_eur``.

``statement`` is pure; ``ledger_of``, ``buy`` and ``activate`` read and write the store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from hub.config import LedgerSettings
from hub.domain import Entity
from hub.errors import HubError
from hub.store.base import Conflict
from hub.store.sql_ledger import CampaignUsage, LedgerEntry

POLICY = ("sending never stops for money: a campaign that outruns the prepaid balance is sent "
          "in full, and the part the balance did not cover is recorded as its overdraft")
_CENT = Decimal("0.0001")
MAX_PACKAGE_EUR = Decimal("1000000")


class LedgerError(HubError):
    """A ledger request that cannot be carried out; the message says why."""


def _eur(value: float | Decimal | str) -> Decimal:
    return Decimal(str(value)).quantize(_CENT, rounding=ROUND_HALF_UP)


def _add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February in a year that has none
        return moment.replace(year=moment.year + years, day=28)


@dataclass(frozen=True, slots=True)
class CampaignLine:
    campaign_id: int
    identifier: str
    kind: str
    state: str
    simulation: bool
    at: datetime
    cost: Decimal  # what it costs the entity (0 for a simulation)
    prepaid: Decimal  # the part the prepaid balance covered
    overdraft: Decimal  # the part it did not

    def to_json(self) -> dict[str, Any]:
        return {"campaign": self.campaign_id, "alert": self.identifier, "kind": self.kind,
                "state": self.state, "simulation": self.simulation, "at": self.at.isoformat(),
                "costEur": float(self.cost), "prepaidEur": float(self.prepaid),
                "overdraftEur": float(self.overdraft), "href": f"/campaigns/{self.campaign_id}"}


@dataclass(frozen=True, slots=True)
class Statement:
    entity_id: int
    entity: str
    activated_at: datetime | None
    activation_fee: Decimal
    subscription_years: tuple[tuple[datetime, datetime], ...]  # each started year (from, to)
    subscription_per_year: Decimal
    packages: tuple[LedgerEntry, ...]
    campaigns: tuple[CampaignLine, ...]
    bought: Decimal
    consumed: Decimal
    balance: Decimal  # bought - consumed; negative: overdrawn
    low_balance: Decimal
    warnings: tuple[str, ...] = field(default=())

    @property
    def overdraft(self) -> Decimal:
        return sum((c.overdraft for c in self.campaigns), Decimal(0))

    def line(self, campaign_id: int) -> CampaignLine | None:
        return next((c for c in self.campaigns if c.campaign_id == campaign_id), None)

    def to_json(self) -> dict[str, Any]:
        subscription = self.subscription_per_year * len(self.subscription_years)
        return {
            "entity": {"id": self.entity_id, "name": self.entity},
            "currency": "EUR", "vat": "excluded",
            "activation": {"at": self.activated_at.isoformat() if self.activated_at else None,
                           "feeEur": float(self.activation_fee) if self.activated_at else 0.0},
            "subscription": {"perYearEur": float(self.subscription_per_year),
                             "years": [{"from": a.isoformat(), "to": b.isoformat(),
                                        "eur": float(self.subscription_per_year)}
                                       for a, b in self.subscription_years],
                             "totalEur": float(subscription)},
            "invoicedEur": float((self.activation_fee if self.activated_at else 0) + subscription),
            "prepaid": {
                "packages": [{"id": p.id, "at": p.at.isoformat(), "eur": p.amount_eur, "note": p.note}
                             for p in self.packages],
                "boughtEur": float(self.bought), "consumedEur": float(self.consumed),
                "balanceEur": float(self.balance), "overdraftEur": float(self.overdraft),
                "lowBalanceEur": float(self.low_balance),
            },
            "usage": [c.to_json() for c in self.campaigns],
            "policy": POLICY,
            "warnings": list(self.warnings),
        }


def statement(entity: Entity, entries: Sequence[LedgerEntry], usage: Sequence[CampaignUsage],
              settings: LedgerSettings, *, now: datetime) -> Statement:
    """The entity's ledger at ``now``: packages and campaigns in time order, each campaign
    drawing on what the packages bought before it left."""
    activation = next((e for e in entries if e.kind == "activation"), None)
    packages = tuple(e for e in entries if e.kind == "package")
    years: list[tuple[datetime, datetime]] = []
    if activation is not None:
        start = activation.at
        while start <= now:
            end = _add_years(activation.at, len(years) + 1)
            years.append((start, end))
            start = end
    events: list[tuple[datetime, int, LedgerEntry | CampaignUsage]] = (
        [(p.at, 0, p) for p in packages] + [(u.created_at, 1, u) for u in usage])
    events.sort(key=lambda e: (e[0], e[1]))
    balance = bought = consumed = Decimal(0)
    lines: list[CampaignLine] = []
    for _, _, event in events:
        if isinstance(event, LedgerEntry):
            bought += _eur(event.amount_eur)
            balance += _eur(event.amount_eur)
            continue
        cost = Decimal(0) if event.simulation else _eur(event.cost_eur)
        covered = min(cost, max(balance, Decimal(0)))
        balance -= cost
        consumed += cost
        lines.append(CampaignLine(event.campaign_id, event.identifier, event.kind, event.state,
                                  event.simulation, event.created_at, cost, covered, cost - covered))
    low = _eur(settings.low_balance_eur)
    warnings: list[str] = []
    if activation is None:
        warnings.append("not activated: no activation is recorded for this entity")
    overdrawn = [c.campaign_id for c in lines if c.overdraft > 0]
    if balance < 0:
        warnings.append(f"overdrawn: {-balance:.2f} EUR used beyond the prepaid packages "
                        f"(campaigns {', '.join(map(str, overdrawn))} ran on credit); buy a package")
    elif balance < low:
        warnings.append(f"low prepaid balance: {balance:.2f} EUR left, below {low:.2f} EUR; buy a package")
    return Statement(entity.id, entity.name, activation.at if activation else None,
                     _eur(activation.amount_eur) if activation else Decimal(0), tuple(years),
                     _eur(settings.subscription_eur), packages, tuple(lines), bought, consumed,
                     balance, low, tuple(warnings))


# --- store I/O ------------------------------------------------------------------------------


class LedgerStore(Protocol):
    async def add_ledger_entry(self, entity_id: int, kind: str, amount_eur: float, *, at: datetime,
                               note: str = "") -> LedgerEntry: ...

    async def ledger_entries(self, entity_id: int) -> list[LedgerEntry]: ...

    async def campaign_usage(self, entity_id: int) -> list[CampaignUsage]: ...

    async def audit(self, actor: str, action: str, target: str, outcome: str, detail: str = "{}",
                    *, at: datetime) -> None: ...


async def ledger_of(store: LedgerStore, entity: Entity, settings: LedgerSettings,
                    now: datetime | None = None) -> Statement:
    when = now or datetime.now(UTC)
    return statement(entity, await store.ledger_entries(entity.id), await store.campaign_usage(entity.id),
                     settings, now=when)


async def billing_of(store: LedgerStore, entity: Entity, settings: LedgerSettings,
                     campaign_id: int) -> dict[str, Any] | None:
    """What a campaign report says about money: the campaign's cost, the part the prepaid
    balance covered, its overdraft and the policy; None for a campaign not of ``entity``."""
    line = (await ledger_of(store, entity, settings)).line(campaign_id)
    if line is None:
        return None
    return {"costEur": float(line.cost), "prepaidEur": float(line.prepaid),
            "overdraftEur": float(line.overdraft), "simulation": line.simulation, "policy": POLICY}


async def buy(store: LedgerStore, entity: Entity, amount: str | float, *, actor: str,
              note: str = "", at: datetime | None = None) -> LedgerEntry:
    """Record a prepaid package of ``amount`` euro."""
    try:
        value = Decimal(str(amount))
        value = value.quantize(_CENT, rounding=ROUND_HALF_UP) if value.is_finite() else value
    except ArithmeticError as exc:
        raise LedgerError(f"--buy {amount!r}: not an amount in euro") from exc
    if not value.is_finite() or not Decimal(0) < value <= MAX_PACKAGE_EUR:
        raise LedgerError(f"--buy {amount}: a package is more than 0 and at most {MAX_PACKAGE_EUR} EUR")
    when = at or datetime.now(UTC)
    entry = await store.add_ledger_entry(entity.id, "package", float(value), at=when, note=note)
    await store.audit(actor, "ledger.package", f"entity:{entity.id}", "ok",
                      json.dumps({"eur": float(value)}), at=when)
    return entry


async def activate(store: LedgerStore, entity: Entity, settings: LedgerSettings, *, actor: str,
                   at: datetime | None = None) -> LedgerEntry:
    """Record the entity's activation (its one-time fee; the subscription years count from it)."""
    if any(e.kind == "activation" for e in await store.ledger_entries(entity.id)):
        raise LedgerError(f"entity {entity.name!r} is already activated")
    when = at or datetime.now(UTC)
    try:
        fee = float(_eur(settings.activation_fee_eur))
        entry = await store.add_ledger_entry(entity.id, "activation", fee, at=when)
    except Conflict:  # activated meanwhile by another command: the store keeps one activation
        raise LedgerError(f"entity {entity.name!r} is already activated") from None
    await store.audit(actor, "ledger.activation", f"entity:{entity.id}", "ok", at=when)
    return entry
