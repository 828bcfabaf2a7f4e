"""`cap-hub admin ledger ENTITY [--activate] [--buy AMOUNT] [--json]`: an entity's ledger, as
the administrator of the data directory (every change audited)."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from hub.cli_common import add_data_option, with_store
from hub.config import Settings
from hub.errors import HubError
from hub.services import ledger
from hub.services.admin import ADMIN
from hub.services.ledger import Statement
from hub.store.sqlite import SqliteStore


def register(admin_cmds: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = admin_cmds.add_parser("ledger", help="an entity's ledger: fees, prepaid packages, usage, balance")
    p.add_argument("entity")
    p.add_argument("--activate", action="store_true",
                   help="record the entity's activation (the one-time fee; subscription years count from it)")
    p.add_argument("--buy", metavar="EUR", help="record a prepaid package of this many euro")
    p.add_argument("--note", default="", help="a note for the package (an order or invoice number)")
    p.add_argument("--json", action="store_true", help="print the ledger as JSON")
    add_data_option(p)
    p.set_defaults(run=_ledger)


def _ledger(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    async def work(store: SqliteStore) -> Statement:
        entity = await store.entity_by_name(args.entity)
        if entity is None:
            raise HubError(f"no entity {args.entity!r}")
        if args.activate:
            await ledger.activate(store, entity, settings.ledger, actor=ADMIN)
        if args.buy is not None:
            await ledger.buy(store, entity, args.buy, actor=ADMIN, note=args.note)
        return await ledger.ledger_of(store, entity, settings.ledger)

    found = with_store(args, settings, work)
    if args.json:
        json.dump(found.to_json(), out, indent=2, ensure_ascii=False)
        out.write("\n")
        return 0
    print(render(found), file=out)
    return 0


def render(s: Statement) -> str:
    """The ledger as text for a terminal."""
    doc = s.to_json()
    lines = [f"ledger of {s.entity} (entity {s.entity_id}), EUR excluding VAT"]
    if s.activated_at is None:
        lines.append("  activation       not recorded")
    else:
        lines.append(f"  activation       {s.activated_at:%Y-%m-%d}  {s.activation_fee:>12.2f}")
        lines.append(f"  subscription     {len(s.subscription_years)} started year(s) × "
                     f"{s.subscription_per_year:.2f}  {doc['subscription']['totalEur']:>12.2f}")
    for p in s.packages:
        lines.append(f"  package          {p.at:%Y-%m-%d}  {p.amount_eur:>12.2f}  {p.note}".rstrip())
    for c in s.campaigns:
        mark = " (simulation)" if c.simulation else ""
        over = f"  overdraft {c.overdraft:.4f}" if c.overdraft else ""
        lines.append(f"  campaign {c.campaign_id:<7} {c.at:%Y-%m-%d}  {-c.cost:>12.4f}  {c.kind}{mark}{over}")
    lines.append(f"  prepaid balance  {s.balance:>24.4f}  (bought {s.bought:.2f}, used {s.consumed:.4f})")
    lines.append(f"  policy: {ledger.POLICY}")
    lines += [f"  WARNING: {w}" for w in s.warnings]
    return "\n".join(lines)
