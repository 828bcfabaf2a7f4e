"""What the SQLite store's parts share: time encoding, error mapping, and ``SqlBase``, the
two primitives (``_write``, ``_read``) each area's mixin builds on.

``hub.store.sqlite.SqliteStore`` implements the primitives (the engine: connections and the
group-commit writer) and composes the areas' mixins (``sql_entities``, ``sql_alerts``,
``sql_audit``, ``sql_members``). A mixin holds only SQL and the mapping of rows to domain
values; it never touches a connection outside an ``op`` handed to ``_write``.
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiosqlite

from hub.errors import HubError, StoreError
from hub.store.base import Conflict, NotFound

T = TypeVar("T")
Op = Callable[[aiosqlite.Connection], Awaitable[T]]

UNIQUE = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})
FOREIGN_KEY = "SQLITE_CONSTRAINT_FOREIGNKEY"


def utc_text(moment: datetime) -> str:
    """An aware datetime as fixed-width UTC text: ``2024-05-01T10:00:00.000000Z``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the store keeps instants: pass a timezone-aware datetime")
    u = moment.astimezone(UTC)
    return (f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
            f".{u.microsecond:06d}Z")


def from_utc_text(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def opt_utc(moment: datetime | None) -> str | None:
    return None if moment is None else utc_text(moment)


def where_clause(conditions: Iterable[tuple[str, Any]], *,
                 fixed: Iterable[str] = ()) -> tuple[str, list[Any]]:
    """``"WHERE a = ? AND ... "`` (or ``""``) and its parameters, for the optional filters of a
    listing. ``conditions``: (SQL with one ``?``, value), left out where the value is None;
    ``fixed``: conditions without parameters, kept literal so that a partial index can match."""
    where: list[str] = []
    params: list[Any] = []
    for sql, value in conditions:
        if value is not None:
            where.append(sql)
            params.append(value)
    where.extend(fixed)
    return (f"WHERE {' AND '.join(where)} " if where else ""), params


def ids_json(ids: Iterable[int]) -> str:
    """Distinct ids as a JSON array, in first-seen order (for ``json_each``)."""
    return json.dumps(list(dict.fromkeys(int(i) for i in ids)))


def error_name(exc: sqlite3.Error) -> str:
    return str(getattr(exc, "sqlite_errorname", ""))


def integrity(exc: sqlite3.IntegrityError, conflict: str, missing: str) -> StoreError:
    """A constraint failure as ``Conflict`` (unique key, trigger) or ``NotFound`` (a
    reference to a row that does not exist)."""
    if error_name(exc) == FOREIGN_KEY:
        return NotFound(missing)
    return Conflict(conflict)


def mapped(exc: Exception) -> Exception:
    """What a failed job raises to its caller."""
    if isinstance(exc, HubError):
        return exc
    result: StoreError
    if isinstance(exc, sqlite3.IntegrityError):
        result = integrity(exc, f"constraint failed: {exc}", f"reference not found: {exc}")
    elif isinstance(exc, sqlite3.Error):
        result = StoreError(f"could not write: {exc}")
    else:
        return exc  # a bug, not a store failure: let it through unchanged
    result.__cause__ = exc
    return result


class SqlBase(ABC):
    """The primitives the areas' mixins use; ``SqliteStore`` implements them."""

    @abstractmethod
    async def _write(self, op: Op[T], *, single_statement: bool = False, sql_only: bool = False) -> T:
        """Run ``op`` on the writer's connection inside a transaction; return once committed.
        ``single_statement``: ``op`` runs exactly one statement (no savepoint needed).
        ``sql_only`` (implied by ``single_statement``): ``op`` awaits nothing but the
        connection's methods, so it may run on the connection's own thread."""

    @abstractmethod
    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """One statement on the read connection (one consistent snapshot)."""

    async def _read_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = await self._read(sql, params)
        return rows[0] if rows else None
