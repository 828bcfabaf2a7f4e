"""Partner subscriptions and their push deliveries: the SQL (schema in migration 6)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from hub.partners import Event, PushDelivery, PushState, Subscription, SubscriptionStats
from hub.store.base import Conflict, NotFound
from hub.store.sql_common import SqlBase, from_utc_text, opt_utc, utc_text, where_clause

_SUB_COLUMNS = "id, name, url, secret, filters, entity_id, created_at"
_PUSH_COLUMNS = "id, subscription_id, alert_id, event, state, attempts, last_error, created_at"


def _subscription(row: Sequence[Any]) -> Subscription:
    return Subscription(id=row[0], name=row[1], url=row[2], secret=row[3], filters=row[4],
                        entity_id=row[5], created_at=from_utc_text(row[6]))


def _push(row: Sequence[Any]) -> PushDelivery:
    return PushDelivery(id=row[0], subscription_id=row[1], alert_id=row[2], event=Event(row[3]),
                        state=PushState(row[4]), attempts=row[5], last_error=row[6],
                        created_at=from_utc_text(row[7]))


class SubscriptionSql(SqlBase):
    async def add_subscription(self, name: str, url: str, secret: str, filters: str, *,
                               entity_id: int | None, at: datetime) -> Subscription:
        params = (name, url, secret, filters, entity_id, utc_text(at))

        async def op(conn: aiosqlite.Connection) -> Subscription:
            try:
                row = await conn.execute_insert(
                    "INSERT INTO subscriptions (name, url, secret, filters, entity_id, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)", params)
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"a subscription named {name!r} exists") from exc
            assert row is not None
            return Subscription(int(row[0]), name, url, secret, filters, entity_id, at)

        return await self._write(op, single_statement=True)

    async def subscriptions(self, *, entity_id: int | None = None) -> list[Subscription]:
        """Every subscription (``entity_id``: only that entity's), by id."""
        if entity_id is None:
            rows = await self._read(f"SELECT {_SUB_COLUMNS} FROM subscriptions ORDER BY id")
        else:
            rows = await self._read(f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE entity_id = ? "
                                    "ORDER BY id", (entity_id,))
        return [_subscription(r) for r in rows]

    async def subscription(self, subscription_id: int) -> Subscription | None:
        row = await self._read_one(f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE id = ?",
                                   (subscription_id,))
        return None if row is None else _subscription(row)

    async def subscription_named(self, name: str) -> Subscription | None:
        row = await self._read_one(f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE name = ?", (name,))
        return None if row is None else _subscription(row)

    async def remove_subscription(self, subscription_id: int, *, at: datetime) -> None:
        """Delete it; what it was still owed is recorded as failed (its rows stay)."""
        when = utc_text(at)

        async def op(conn: aiosqlite.Connection) -> None:
            cursor = await conn.execute("DELETE FROM subscriptions WHERE id = ?", (subscription_id,))
            if cursor.rowcount == 0:
                raise NotFound(f"no subscription {subscription_id}")
            await conn.execute(
                "UPDATE push_deliveries SET state = 'failed', last_error = 'subscription removed', "
                "updated_at = ? WHERE subscription_id = ? AND state = 'pending'", (when, subscription_id))

        await self._write(op)

    async def subscription_stats(self) -> dict[int, SubscriptionStats]:
        """Per subscription id: deliveries by state and the latest failure."""
        counts = await self._read(
            "SELECT subscription_id, state, count(*) FROM push_deliveries GROUP BY subscription_id, state")
        last = await self._read(
            # One pass (a correlated max per failed row took 44 s at 20,000 failed rows).
            "SELECT subscription_id, last_error, updated_at FROM push_deliveries WHERE id IN "
            "(SELECT max(id) FROM push_deliveries WHERE state = 'failed' GROUP BY subscription_id)")
        found: dict[int, dict[str, Any]] = {}
        for sid, state, count in counts:
            found.setdefault(int(sid), {})[str(state)] = int(count)
        failures = {int(r[0]): (r[1], from_utc_text(r[2])) for r in last}
        return {sid: SubscriptionStats(
            delivered=c.get("delivered", 0), pending=c.get("pending", 0), failed=c.get("failed", 0),
            last_failure=failures.get(sid, (None, None))[0],
            last_failure_at=failures.get(sid, (None, None))[1]) for sid, c in found.items()}

    async def open_pushes(self, alert_id: int, event: str, subscription_ids: Sequence[int], *,
                          at: datetime) -> list[int]:
        """Record one pending delivery per subscription for this alert (once: a pair recorded
        before is kept as it is); returns the ids of this alert's pending deliveries to those
        subscriptions never handed to the broker (made now, or by an attempt that failed
        before handing them over)."""
        when = utc_text(at)
        wanted = list(dict.fromkeys(int(i) for i in subscription_ids))

        async def op(conn: aiosqlite.Connection) -> list[int]:
            await conn.executemany(
                "INSERT INTO push_deliveries (subscription_id, alert_id, event, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (subscription_id, alert_id) DO NOTHING",
                [(sid, alert_id, event, when, when) for sid in wanted])
            rows = await conn.execute_fetchall(
                "SELECT id, subscription_id FROM push_deliveries WHERE alert_id = ? AND state = 'pending' "
                "AND published_at IS NULL ORDER BY id", (alert_id,))
            chosen = set(wanted)
            return [int(r[0]) for r in rows if int(r[1]) in chosen]

        if not wanted:
            return []
        return await self._write(op)

    async def push_delivery(self, delivery_id: int) -> PushDelivery | None:
        row = await self._read_one(f"SELECT {_PUSH_COLUMNS} FROM push_deliveries WHERE id = ?",
                                   (delivery_id,))
        return None if row is None else _push(row)

    async def push_deliveries(self, *, subscription_id: int | None = None, alert_id: int | None = None,
                              limit: int = 100) -> list[PushDelivery]:
        """Newest first."""
        clause, params = where_clause([("subscription_id = ?", subscription_id), ("alert_id = ?", alert_id)])
        rows = await self._read(
            f"SELECT {_PUSH_COLUMNS} FROM push_deliveries {clause}ORDER BY id DESC LIMIT ?", (*params, limit))
        return [_push(r) for r in rows]

    async def mark_published(self, delivery_ids: Sequence[int], *, at: datetime) -> None:
        """Handed to the broker at ``at`` (the start-up sweep republishes what waited too long)."""
        when = utc_text(at)
        ids = [(when, i) for i in delivery_ids]
        if not ids:
            return

        async def op(conn: aiosqlite.Connection) -> None:
            await conn.executemany("UPDATE push_deliveries SET published_at = ? WHERE id = ?", ids)

        await self._write(op)

    async def push_outcome(self, delivery_id: int, state: PushState, *, error: str | None,
                           at: datetime, due: datetime | None = None) -> None:
        """One more try, and where it left the delivery. ``due``: when its retry comes back
        from the broker (kept as ``published_at``, so that the start-up sweep leaves a
        delivery waiting in a retry queue alone until it is overdue). A delivery that already
        ended stays as it ended (a repeated message changes nothing)."""
        params = (str(state), error, utc_text(at), opt_utc(due), delivery_id)

        async def op(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "UPDATE push_deliveries SET state = ?, attempts = attempts + 1, last_error = ?, "
                "updated_at = ?, published_at = coalesce(?, published_at) WHERE id = ? AND state = 'pending'",
                params)

        await self._write(op, single_statement=True)

    async def pending_pushes(self, *, published_before: datetime | None, limit: int = 10_000) -> list[int]:
        """Pending deliveries never handed to the broker, or handed before the given time."""
        cutoff = opt_utc(published_before)
        rows = await self._read(
            "SELECT id FROM push_deliveries INDEXED BY push_deliveries_pending WHERE state = 'pending' "
            "AND (published_at IS NULL OR (? IS NOT NULL AND published_at < ?)) ORDER BY id LIMIT ?",
            (cutoff, cutoff, limit))
        return [int(r[0]) for r in rows]
