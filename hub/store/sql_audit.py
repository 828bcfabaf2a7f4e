"""The audit trail (append-only; the schema's triggers refuse updates and deletes): the SQL."""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from hub.store.base import AuditEntry
from hub.store.sql_common import SqlBase, from_utc_text, utc_text


class AuditSql(SqlBase):
    async def audit(self, actor: str, action: str, target: str, outcome: str, detail: str = "{}",
                    *, at: datetime) -> None:
        params = (utc_text(at), actor, action, target, outcome, detail)

        async def op(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "INSERT INTO audit (at, actor, action, target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?)",
                params)

        await self._write(op, single_statement=True)

    async def audit_entries(self, *, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""
        if limit <= 0:
            return []
        rows = await self._read(
            "SELECT id, at, actor, action, target, outcome, detail FROM audit ORDER BY id DESC LIMIT ?",
            (limit,))
        return [AuditEntry(id=r[0], at=from_utc_text(r[1]), actor=r[2], action=r[3], target=r[4],
                           outcome=r[5], detail=r[6]) for r in rows]
