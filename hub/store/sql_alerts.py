"""Stored alerts, the links between them, their states and expiry: the SQL."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from hub.domain import AlertState, StoredAlert
from hub.store.base import NewAlert, NotFound
from hub.store.sql_common import (
    SqlBase,
    from_utc_text,
    ids_json,
    integrity,
    opt_utc,
    utc_text,
    where_clause,
)

ALERT_COLUMNS = (
    "id, sender, identifier, sent, status, msg_type, scope, expires_utc, refs, entity_id, "
    "account_id, state, received, signed, answer, digest, received_at, superseded_by, simulation"
)

_INSERT_ALERT = (
    "INSERT INTO alerts (sender, identifier, sent, sent_utc, status, msg_type, scope, expires_utc, "
    "refs, areas_json, entity_id, account_id, state, received, signed, answer, digest, received_at, "
    "simulation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def alert_row(row: Sequence[Any]) -> StoredAlert:
    return StoredAlert(
        id=row[0], sender=row[1], identifier=row[2], sent=row[3], status=row[4],
        msg_type=row[5], scope=row[6],
        expires=None if row[7] is None else from_utc_text(row[7]),
        references=row[8], entity_id=row[9], account_id=row[10], state=AlertState(row[11]),
        received=bytes(row[12]), signed=bytes(row[13]), answer=bytes(row[14]), digest=row[15],
        received_at=from_utc_text(row[16]), superseded_by=row[17], simulation=bool(row[18]),
    )


class AlertSql(SqlBase):
    async def find_alert(self, sender: str, identifier: str, sent_utc: datetime) -> StoredAlert | None:
        row = await self._read_one(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE sender = ? AND identifier = ? AND sent_utc = ?",
            (sender, identifier, utc_text(sent_utc)))
        return None if row is None else alert_row(row)

    async def insert_alert(
        self, alert: NewAlert, *, references: Sequence[int] = (),
        supersede: Sequence[int] = (), cancel: Sequence[int] = (),
    ) -> StoredAlert:
        key = f"{alert.sender},{alert.identifier},{alert.sent}"
        params = (
            alert.sender, alert.identifier, alert.sent, utc_text(alert.sent_utc), alert.status,
            alert.msg_type, alert.scope, opt_utc(alert.expires), alert.references,
            alert.areas_json, alert.entity_id, alert.account_id, str(alert.state), alert.received,
            alert.signed, alert.answer, alert.digest, utc_text(alert.received_at), int(alert.simulation),
        )
        links = list(dict.fromkeys(int(i) for i in references))
        supersede_ids, cancel_ids = ids_json(supersede), ids_json(cancel)

        async def op(conn: aiosqlite.Connection) -> StoredAlert:
            try:
                row = await conn.execute_insert(_INSERT_ALERT, params)
            except sqlite3.IntegrityError as exc:
                raise integrity(exc, f"alert {key} exists",
                                f"alert {key}: its entity or account does not exist") from exc
            assert row is not None
            alert_id = int(row[0])
            if links:
                try:
                    await conn.executemany(
                        "INSERT INTO alert_links (alert_id, referenced_id) VALUES (?, ?)",
                        [(alert_id, ref) for ref in links])
                except sqlite3.IntegrityError as exc:
                    raise NotFound(f"alert {key}: a referenced alert does not exist") from exc
            await _set_states(conn, supersede_ids, AlertState.UPDATED, alert_id,
                              f"alert {key}: an alert it updates does not exist")
            await _set_states(conn, cancel_ids, AlertState.CANCELLED, None,
                              f"alert {key}: an alert it cancels does not exist")
            return _stored(alert_id, alert)

        plain = not links and supersede_ids == "[]" and cancel_ids == "[]"
        return await self._write(op, single_statement=plain, sql_only=True)

    async def alert(self, alert_id: int) -> StoredAlert | None:
        row = await self._read_one(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,))
        return None if row is None else alert_row(row)

    async def list_alerts(
        self, *, status: str | None = None, since: datetime | None = None,
        sender: str | None = None, public_only: bool = False, limit: int = 100,
        before_id: int | None = None, identifier: str | None = None,
    ) -> list[StoredAlert]:
        """Newest first (by id). ``since`` keeps alerts sent at or after that instant."""
        if limit <= 0:
            return []
        clause, params = where_clause(
            [("status = ?", status), ("sent_utc >= ?", opt_utc(since)), ("sender = ?", sender),
             ("identifier = ?", identifier), ("id < ?", before_id)],
            fixed=["scope = 'Public' AND status = 'Actual'"] if public_only else [])
        rows = await self._read(
            f"SELECT {ALERT_COLUMNS} FROM alerts {clause}ORDER BY id DESC LIMIT ?", (*params, limit))
        return [alert_row(row) for row in rows]

    async def active_alerts(self, *, statuses: Sequence[str], now: datetime, scope: str = "Public",
                            limit: int = 10_000) -> list[StoredAlert]:
        """Alerts in state active whose expiry has not passed at ``now`` (the sweep may not have
        marked them yet), of this scope and one of ``statuses``: newest sent first."""
        marks = ", ".join("?" for _ in statuses)
        if not marks or limit <= 0:
            return []
        rows = await self._read(
            # The partial index of active alerts: a feed's cost follows what is active, not
            # the whole history of Actual alerts (which the planner would otherwise scan).
            f"SELECT {ALERT_COLUMNS} FROM alerts INDEXED BY alerts_active_expiry WHERE state = 'active' "
            f"AND (expires_utc IS NULL OR expires_utc > ?) AND scope = ? AND status IN ({marks}) "
            "ORDER BY sent_utc DESC, id DESC LIMIT ?",
            (utc_text(now), scope, *statuses, limit))
        return [alert_row(row) for row in rows]

    async def active_mark(self, now: datetime) -> tuple[int, int]:
        """How many alerts are active and unexpired at ``now``, and the sum of their ids. Ids
        only grow, so any change to that set (a new alert, a state change, an expiry passing)
        changes the pair: a cheap fingerprint for caches of what is active."""
        row = await self._read_one(
            "SELECT count(*), coalesce(sum(id), 0) FROM alerts WHERE state = 'active' "
            "AND (expires_utc IS NULL OR expires_utc > ?)", (utc_text(now),))
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    async def unrouted_alerts(self, *, limit: int = 1000) -> list[int]:
        """Active Alert and Update messages that have no campaign yet: their
        ``alert.accepted`` event never reached a router (the broker lost it, or the hub
        stopped between storing and publishing). Oldest first."""
        rows = await self._read(
            "SELECT a.id FROM alerts a WHERE a.state = 'active' AND a.msg_type IN ('Alert', 'Update') "
            "AND NOT EXISTS (SELECT 1 FROM campaigns c WHERE c.alert_id = a.id) ORDER BY a.id LIMIT ?",
            (limit,))
        return [int(r[0]) for r in rows]

    async def expire_alerts(self, now: datetime) -> list[int]:
        cutoff = utc_text(now)

        async def op(conn: aiosqlite.Connection) -> list[int]:
            rows = await conn.execute_fetchall(
                "UPDATE alerts SET state = 'expired' "
                "WHERE state = 'active' AND expires_utc <= ? RETURNING id", (cutoff,))
            return sorted(int(row[0]) for row in rows)

        return await self._write(op, single_statement=True)

    async def set_state(self, alert_id: int, state: AlertState) -> None:
        async def op(conn: aiosqlite.Connection) -> None:
            cursor = await conn.execute("UPDATE alerts SET state = ? WHERE id = ?",
                                        (str(AlertState(state)), alert_id))
            if cursor.rowcount == 0:
                raise NotFound(f"no alert {alert_id}")

        await self._write(op, single_statement=True)


    async def set_signed(self, alert_id: int, signed: bytes) -> None:
        async def op(conn: aiosqlite.Connection) -> None:
            cursor = await conn.execute("UPDATE alerts SET signed = ? WHERE id = ?", (signed, alert_id))
            if cursor.rowcount == 0:
                raise NotFound(f"no alert {alert_id}")

        await self._write(op, single_statement=True)


async def _set_states(conn: aiosqlite.Connection, ids: str, state: AlertState,
                      superseded_by: int | None, missing: str) -> None:
    """Set ``state`` on the alerts listed (a JSON array); all must exist."""
    wanted = len(json.loads(ids))
    if not wanted:
        return
    if superseded_by is None:
        sql = "UPDATE alerts SET state = ? WHERE id IN (SELECT value FROM json_each(?))"
        cursor = await conn.execute(sql, (str(state), ids))
    else:
        sql = ("UPDATE alerts SET state = ?, superseded_by = ? "
               "WHERE id IN (SELECT value FROM json_each(?))")
        cursor = await conn.execute(sql, (str(state), superseded_by, ids))
    if cursor.rowcount != wanted:
        raise NotFound(missing)


def _stored(alert_id: int, alert: NewAlert) -> StoredAlert:
    return StoredAlert(
        id=alert_id, sender=alert.sender, identifier=alert.identifier, sent=alert.sent,
        status=alert.status, msg_type=alert.msg_type, scope=alert.scope,
        expires=None if alert.expires is None else alert.expires.astimezone(UTC),
        references=alert.references, entity_id=alert.entity_id, account_id=alert.account_id,
        state=alert.state, received=alert.received, signed=alert.signed, answer=alert.answer,
        digest=alert.digest, received_at=alert.received_at.astimezone(UTC), simulation=alert.simulation,
    )
