"""Templates (ready scenarios of one entity): the SQL. The body is JSON that the store does
not read; ``hub.services.templates`` owns what it means."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from hub.store.sql_common import SqlBase, from_utc_text, integrity, utc_text

TEMPLATE_COLUMNS = "id, entity_id, name, body, created_at, updated_at"


@dataclass(frozen=True, slots=True)
class StoredTemplate:
    id: int
    entity_id: int
    name: str  # unique within the entity
    body: str  # JSON
    created_at: datetime
    updated_at: datetime


def template_row(row: Sequence[Any]) -> StoredTemplate:
    return StoredTemplate(id=row[0], entity_id=row[1], name=row[2], body=row[3],
                          created_at=from_utc_text(row[4]), updated_at=from_utc_text(row[5]))


class TemplateSql(SqlBase):
    async def add_template(self, entity_id: int, name: str, body: str, *, at: datetime) -> StoredTemplate:
        """Raises ``Conflict`` when the entity has a template of that name."""
        now = utc_text(at)

        async def op(conn: aiosqlite.Connection) -> StoredTemplate:
            try:
                row = await conn.execute_insert(
                    "INSERT INTO templates (entity_id, name, body, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)", (entity_id, name, body, now, now))
            except sqlite3.IntegrityError as exc:
                raise integrity(exc, f"a template named {name!r} exists", f"no entity {entity_id}") from exc
            assert row is not None
            return StoredTemplate(int(row[0]), entity_id, name, body, from_utc_text(now), from_utc_text(now))

        return await self._write(op, single_statement=True)

    async def template(self, entity_id: int, key: int | str) -> StoredTemplate | None:
        """The entity's template by id (an int) or by name (a str); another entity's is None."""
        column = "id" if isinstance(key, int) else "name"
        row = await self._read_one(
            f"SELECT {TEMPLATE_COLUMNS} FROM templates WHERE entity_id = ? AND {column} = ?",
            (entity_id, key))
        return None if row is None else template_row(row)

    async def templates(self, entity_id: int) -> list[StoredTemplate]:
        rows = await self._read(f"SELECT {TEMPLATE_COLUMNS} FROM templates WHERE entity_id = ? ORDER BY name",
                                (entity_id,))
        return [template_row(r) for r in rows]

    async def update_template(self, template_id: int, name: str, body: str, *,
                              at: datetime) -> StoredTemplate | None:
        """Replace a template's name and body; None when it does not exist. Raises
        ``Conflict`` when another template of the entity has that name."""
        now = utc_text(at)

        async def op(conn: aiosqlite.Connection) -> StoredTemplate | None:
            try:
                await conn.execute("UPDATE templates SET name = ?, body = ?, updated_at = ? WHERE id = ?",
                                   (name, body, now, template_id))
            except sqlite3.IntegrityError as exc:
                raise integrity(exc, f"a template named {name!r} exists", "no such template") from exc
            rows = list(await conn.execute_fetchall(
                f"SELECT {TEMPLATE_COLUMNS} FROM templates WHERE id = ?", (template_id,)))
            return template_row(rows[0]) if rows else None

        return await self._write(op)

    async def delete_template(self, template_id: int) -> bool:
        async def op(conn: aiosqlite.Connection) -> bool:
            cursor = await conn.execute("DELETE FROM templates WHERE id = ?", (template_id,))
            return cursor.rowcount > 0

        return await self._write(op, single_statement=True)
