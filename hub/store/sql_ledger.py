"""The per-entity ledger: the SQL. Entries are what an entity was charged once or bought
(activation, prepaid packages); usage is read from the campaigns' deliveries, never copied,
so that a late receipt that changes a campaign's cost changes the ledger with it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from hub.store.sql_common import SqlBase, from_utc_text, utc_text

ENTRY_KINDS = ("activation", "package")


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    entity_id: int
    at: datetime
    kind: str  # "activation" or "package"
    amount_eur: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class CampaignUsage:
    """What one campaign of the entity cost (its deliveries' cost so far)."""

    campaign_id: int
    alert_id: int
    identifier: str
    kind: str
    state: str
    simulation: bool
    created_at: datetime
    cost_eur: float


def entry_row(row: Sequence[Any]) -> LedgerEntry:
    return LedgerEntry(id=row[0], entity_id=row[1], at=from_utc_text(row[2]), kind=row[3],
                       amount_eur=float(row[4]), note=row[5])


class LedgerSql(SqlBase):
    async def add_ledger_entry(self, entity_id: int, kind: str, amount_eur: float, *, at: datetime,
                               note: str = "") -> LedgerEntry:
        """Raises ``Conflict`` for a second activation, ``NotFound`` for no such entity."""
        if kind not in ENTRY_KINDS:
            raise ValueError(f"ledger entry kind must be one of {ENTRY_KINDS}")
        when = utc_text(at)

        async def op(conn: aiosqlite.Connection) -> LedgerEntry:
            row = await conn.execute_insert(
                "INSERT INTO ledger_entries (entity_id, at, kind, amount_eur, note) VALUES (?, ?, ?, ?, ?)",
                (entity_id, when, kind, amount_eur, note))
            assert row is not None
            return LedgerEntry(int(row[0]), entity_id, from_utc_text(when), kind, amount_eur, note)

        return await self._write(op, single_statement=True)

    async def ledger_entries(self, entity_id: int) -> list[LedgerEntry]:
        rows = await self._read("SELECT id, entity_id, at, kind, amount_eur, note FROM ledger_entries "
                                "WHERE entity_id = ? ORDER BY at, id", (entity_id,))
        return [entry_row(r) for r in rows]

    async def campaign_usage(self, entity_id: int) -> list[CampaignUsage]:
        """Every campaign of the entity with its cost, oldest first."""
        rows = await self._read(
            "SELECT c.id, c.alert_id, a.identifier, c.kind, c.state, c.simulation, c.created_at, "
            "(SELECT COALESCE(SUM(d.cost_eur), 0) FROM deliveries d WHERE d.campaign_id = c.id) "
            "FROM campaigns c JOIN alerts a ON a.id = c.alert_id WHERE c.entity_id = ? ORDER BY c.id",
            (entity_id,))
        return [CampaignUsage(r[0], r[1], r[2], r[3], r[4], bool(r[5]), from_utc_text(r[6]), float(r[7]))
                for r in rows]
