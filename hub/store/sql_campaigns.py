"""Campaigns and their deliveries: the SQL.

Deliveries are written in batches (``executemany`` in one writer job) and identified by
(campaign, channel, address), so a router that plans the same alert twice (a redelivered
event) adds nothing the second time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from hub.domain import Campaign, CampaignState, Channel, DeliveryRow, DeliveryState, Kind
from hub.store.base import NotFound
from hub.store.sql_common import SqlBase, from_utc_text, integrity, utc_text, where_clause

CAMPAIGN_COLUMNS = "id, alert_id, entity_id, kind, simulation, state, plan, created_at"
DELIVERY_COLUMNS = "id, campaign_id, member_id, channel, address, language, info, state"
# Deliveries a Cancel stops: those no provider has taken yet.
NOT_YET_SENT = (DeliveryState.PENDING.value, DeliveryState.QUEUED.value)
# Deliveries a campaign still owes: not yet sent, being sent, or sent and awaiting their outcome.
OWED = (*NOT_YET_SENT, DeliveryState.SENDING.value, DeliveryState.SUBMITTED.value)
# Outcomes that need no provider: they never replace a submitted delivery's.
_UNSENT_OUTCOMES = {DeliveryState.SKIPPED, DeliveryState.CANCELLED}
_UNSENT_FROM = (*NOT_YET_SENT, DeliveryState.SENDING.value)
# An outcome: (delivery id, state, reason, parts, cost in euro)
Outcome = tuple[int, DeliveryState, str | None, int, float]
# What a delivery's outcome costs: (delivery id, channel, address, parts, cost given) -> euro.
Pricer = Callable[[int, str, str | None, int, float], float]


def campaign_row(row: Sequence[Any]) -> Campaign:
    return Campaign(id=row[0], alert_id=row[1], entity_id=row[2], kind=Kind(row[3]),
                    simulation=bool(row[4]), state=CampaignState(row[5]), plan=row[6],
                    created_at=from_utc_text(row[7]))


# Enum members by value: a dict lookup is ~10x cheaper than calling the enum, and a large
# campaign reads back hundreds of thousands of rows.
_CHANNELS = {c.value: c for c in Channel}
_STATES = {s.value: s for s in DeliveryState}


def delivery_row(row: Sequence[Any]) -> DeliveryRow:
    return DeliveryRow(row[0], row[1], row[2], _CHANNELS[row[3]], row[4], row[5], row[6], _STATES[row[7]])


_CHUNK = 400  # rows per INSERT statement (7 parameters each, well under SQLite's limit)


async def _stored(conn: aiosqlite.Connection, campaign_id: int,
                  part: Sequence[tuple[int | None, Channel, str, str, int]],
                  new: set[tuple[Channel, str | None]]) -> list[DeliveryRow]:
    """The rows of ``part`` that were stored before (not in ``new``), one channel at a time so
    that the lookup uses the (campaign, channel, address) index."""
    by_channel: dict[Channel, list[str]] = {}
    for _, channel, address, _, _ in part:
        if (channel, address) not in new:
            by_channel.setdefault(channel, []).append(address)
    out: list[DeliveryRow] = []
    for channel, addresses in by_channel.items():
        marks = ",".join("?" for _ in addresses)
        rows = await conn.execute_fetchall(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE campaign_id = ? AND channel = ? "
            f"AND address IN ({marks})", (campaign_id, str(channel), *addresses))
        out.extend(delivery_row(r) for r in rows)
    return out


class CampaignSql(SqlBase):
    async def open_campaign(self, alert_id: int, entity_id: int | None, kind: Kind, *,
                            simulation: bool, at: datetime) -> tuple[Campaign, bool]:
        """The campaign of ``alert_id``, created if there is none; True when created."""
        now = utc_text(at)

        async def op(conn: aiosqlite.Connection) -> tuple[Campaign, bool]:
            cursor = await conn.execute(
                "INSERT OR IGNORE INTO campaigns (alert_id, entity_id, kind, simulation, state, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (alert_id, entity_id, str(kind), int(simulation), CampaignState.PLANNING.value, now, now))
            created = cursor.rowcount > 0
            rows = list(await conn.execute_fetchall(
                f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE alert_id = ?", (alert_id,)))
            return campaign_row(rows[0]), created

        try:
            return await self._write(op)
        except sqlite3.IntegrityError as exc:
            raise integrity(exc, "campaign exists", f"no alert {alert_id}") from exc

    async def campaign(self, campaign_id: int) -> Campaign | None:
        row = await self._read_one(f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?", (campaign_id,))
        return None if row is None else campaign_row(row)

    async def campaign_for_alert(self, alert_id: int) -> Campaign | None:
        row = await self._read_one(f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE alert_id = ?",
                                   (alert_id,))
        return None if row is None else campaign_row(row)

    async def campaigns(self, *, alert_id: int | None = None, entity_id: int | None = None,
                        limit: int = 100, before_id: int | None = None) -> list[Campaign]:
        clause, params = where_clause([("alert_id = ?", alert_id), ("entity_id = ?", entity_id),
                                       ("id < ?", before_id)])
        rows = await self._read(f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns {clause}ORDER BY id DESC LIMIT ?",
                                (*params, limit))
        return [campaign_row(r) for r in rows]

    async def add_deliveries(self, campaign_id: int,
                             deliveries: Sequence[tuple[int | None, Channel, str, str, int]],
                             *, at: datetime) -> list[DeliveryRow]:
        """Store (member, channel, address, language, info) rows; those already stored for
        the campaign are left as they are. Returns every row of the batch, new or not."""
        now = utc_text(at)

        async def op(conn: aiosqlite.Connection) -> list[DeliveryRow]:
            out: list[DeliveryRow] = []
            for start in range(0, len(deliveries), _CHUNK):
                part = deliveries[start:start + _CHUNK]
                values = ",".join("(?, ?, ?, ?, ?, ?, ?)" for _ in part)
                # RETURNING gives the new rows; only those a redelivered plan already stored
                # (ignored here) are read back, by the unique index on (campaign, channel, address).
                rows = await conn.execute_fetchall(
                    "INSERT OR IGNORE INTO deliveries (campaign_id, member_id, channel, address, language, "
                    f"info, updated_at) VALUES {values} RETURNING {DELIVERY_COLUMNS}",
                    [v for m, c, a, lang, i in part for v in (campaign_id, m, str(c), a, lang, i, now)])
                new = [delivery_row(r) for r in rows]
                out.extend(new)
                if len(new) < len(part):
                    out.extend(await _stored(conn, campaign_id, part, {(d.channel, d.address) for d in new}))
            return out

        return await self._write(op)

    async def set_plan(self, campaign_id: int, plan: str, state: CampaignState, *, at: datetime) -> None:
        async def op(conn: aiosqlite.Connection) -> None:
            cursor = await conn.execute(
                "UPDATE campaigns SET plan = ?, state = ?, updated_at = ? WHERE id = ? AND state != ?",
                (plan, state.value, utc_text(at), campaign_id, CampaignState.CANCELLED.value))
            if cursor.rowcount == 0 and await self._missing(conn, campaign_id):
                raise NotFound(f"no campaign {campaign_id}")

        await self._write(op, single_statement=True)

    @staticmethod
    async def _missing(conn: aiosqlite.Connection, campaign_id: int) -> bool:
        rows = await conn.execute_fetchall("SELECT 1 FROM campaigns WHERE id = ?", (campaign_id,))
        return not list(rows)

    async def mark_queued(self, delivery_ids: Sequence[int], *, at: datetime) -> None:
        """Deliveries handed to the broker (pending → queued; others stay as they are)."""
        now = utc_text(at)

        async def op(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "UPDATE deliveries SET state = ?, published_at = ?, updated_at = ? "
                "WHERE id IN (SELECT value FROM json_each(?)) AND state IN (?, ?)",
                (DeliveryState.QUEUED.value, now, now, json.dumps(list(delivery_ids)), *NOT_YET_SENT))

        await self._write(op)

    async def unsent_deliveries(self, *, published_before: datetime, limit: int = 10_000,
                                after_id: int = 0) -> list[DeliveryRow]:
        """Deliveries still owed and not in flight: pending since before ``published_before``
        (a router stopped between storing and publishing them; one still at work is left
        alone), queued before it (the broker may have lost them), or claimed for sending
        before it (a worker may have died before the provider answered: the worker that gets
        them again decides, see ``hub.services.worker``). Start-up republishes."""
        before = utc_text(published_before)
        rows = await self._read(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id > ? AND address IS NOT NULL AND "
            "((state = ? AND updated_at < ?) OR (state = ? AND published_at < ?) "
            "OR (state = ? AND submitted_at < ?)) ORDER BY id LIMIT ?",
            (after_id, DeliveryState.PENDING.value, before, DeliveryState.QUEUED.value, before,
             DeliveryState.SENDING.value, before, limit))
        return [delivery_row(r) for r in rows]

    async def cancel_campaigns(self, alert_ids: Sequence[int], *, at: datetime) -> list[int]:
        """Cancel the campaigns of these alerts: every delivery not yet sent is cancelled at
        once (workers skip them). Returns the campaign ids."""
        now = utc_text(at)

        async def op(conn: aiosqlite.Connection) -> list[int]:
            marks = ",".join("?" for _ in alert_ids)
            ids = [r[0] for r in await conn.execute_fetchall(
                f"SELECT id FROM campaigns WHERE alert_id IN ({marks})", tuple(alert_ids))]
            if not ids:
                return []
            cmarks = ",".join("?" for _ in ids)
            await conn.execute(
                f"UPDATE deliveries SET state = ?, reason = ?, updated_at = ? "
                f"WHERE campaign_id IN ({cmarks}) AND state IN (?, ?)",
                (DeliveryState.CANCELLED.value, "alert cancelled", now, *ids, *NOT_YET_SENT))
            await conn.execute(f"UPDATE campaigns SET state = ?, updated_at = ? WHERE id IN ({cmarks})",
                               (CampaignState.CANCELLED.value, now, *ids))
            return ids

        return await self._write(op)

    async def delivery_states(self, campaign_id: int) -> dict[tuple[str, str], int]:
        """Counts of the campaign's deliveries by (channel, state)."""
        rows = await self._read("SELECT channel, state, COUNT(*) FROM deliveries WHERE campaign_id = ? "
                                "GROUP BY channel, state", (campaign_id,))
        return {(r[0], r[1]): r[2] for r in rows}

    async def claim(self, delivery_ids: Sequence[int], *, at: datetime,
                    stale_before: datetime | None = None) -> tuple[dict[int, int], list[int]]:
        """pending/queued → sending, atomically, and so are deliveries left sending by a
        worker that claimed them before ``stale_before`` (taken over). Returns the ids moved
        with their attempt count (this one included), and the ids still sending under a
        claim too recent to take over. A redelivered batch finds its deliveries submitted or
        final already and gets nothing to send."""
        if not delivery_ids:
            return {}, []
        now = utc_text(at)
        stale = utc_text(stale_before) if stale_before is not None else ""

        async def op(conn: aiosqlite.Connection) -> tuple[dict[int, int], list[int]]:
            # Read, then update what was read: the same rows, as this runs in the writer's
            # transaction. Each as one row (a JSON array), not a row per delivery: each row
            # fetched takes the GIL back from the event loop, which is sending meanwhile.
            ids = json.dumps(list(delivery_ids))
            [(found,)] = await conn.execute_fetchall(
                "SELECT json_group_array(json_array(id, attempts + 1, state = ?)) FROM deliveries "
                "WHERE id IN (SELECT value FROM json_each(?)) AND (state IN (?, ?, ?))",
                (DeliveryState.SENDING.value, ids, *NOT_YET_SENT, DeliveryState.SENDING.value))
            rows: list[list[Any]] = json.loads(found)
            old: set[int] = set()
            if any(r[2] for r in rows):  # sending: taken over only when claimed before ``stale``
                [(stale_ids,)] = await conn.execute_fetchall(
                    "SELECT json_group_array(id) FROM deliveries "
                    "WHERE id IN (SELECT value FROM json_each(?)) AND state = ? AND submitted_at < ?",
                    (json.dumps([r[0] for r in rows if r[2]]), DeliveryState.SENDING.value, stale))
                old = set(json.loads(stale_ids))
            claimed = {r[0]: r[1] for r in rows if not r[2] or r[0] in old}
            if claimed:
                await conn.execute(
                    "UPDATE deliveries SET state = ?, submitted_at = ?, updated_at = ?, "
                    "attempts = attempts + 1 WHERE id IN (SELECT value FROM json_each(?))",
                    (DeliveryState.SENDING.value, now, now, json.dumps(list(claimed))))
            sending = [r[0] for r in rows if r[2] and r[0] not in claimed]
            return claimed, sorted(sending)

        return await self._write(op, sql_only=True)

    async def record_outcomes(self, rows: Sequence[Outcome], *, at: datetime,
                              price: Pricer | None = None) -> list[int]:
        """Store (delivery, state, reason, parts, cost_eur) outcomes in one transaction. Only
        owed deliveries change (a final state stays final); skipped/cancelled never replace
        a submitted delivery. ``price(id, channel, address, parts, cost)`` gives the cost to
        store for each one that changes (default: the row's). Returns the campaigns touched."""
        if not rows:
            return []
        now = utc_text(at)
        return await self._write(lambda conn: record_outcomes_op(conn, rows, now, price))

    async def finish_campaigns(self, campaign_ids: Sequence[int], *, at: datetime) -> list[int]:
        """sending → done for those of these campaigns that owe nothing any more."""
        if not campaign_ids:
            return []
        now = utc_text(at)
        return await self._write(lambda conn: finish_campaigns_op(conn, campaign_ids, now))

    async def campaign_cost(self, campaign_id: int) -> float:
        row = await self._read_one("SELECT COALESCE(SUM(cost_eur), 0) FROM deliveries WHERE campaign_id = ?",
                                   (campaign_id,))
        return round(float(row[0]), 6) if row is not None else 0.0

    async def directory_rows(self, gids: Sequence[str]) -> tuple[
            list[tuple[int, str, float | None, float | None, str | None]],
            list[tuple[int, str, str]], list[tuple[int, str]], list[tuple[str, int]]]:
        """Members, phones, e-mails and memberships of these groups, as the router's
        ``Directory.from_rows`` takes them."""
        if not gids:
            return [], [], [], []
        marks = ",".join("?" for _ in gids)
        scope = (f"SELECT DISTINCT gm.member_id FROM group_members gm JOIN groups g ON g.id = gm.group_id "
                 f"WHERE g.gid IN ({marks})")
        members = await self._read(
            f"SELECT id, language, lat, lon, channels FROM members WHERE id IN ({scope}) ORDER BY id",
            tuple(gids))
        phones = await self._read(
            f"SELECT member_id, number, kind FROM phones WHERE member_id IN ({scope})", tuple(gids))
        emails = await self._read(
            f"SELECT member_id, address FROM emails WHERE member_id IN ({scope})", tuple(gids))
        links = await self._read(
            f"SELECT g.gid, gm.member_id FROM group_members gm JOIN groups g ON g.id = gm.group_id "
            f"WHERE g.gid IN ({marks})", tuple(gids))
        # members.channels is a JSON list; the directory takes "sms,email" (None: no preference)
        return ([(r[0], r[1], r[2], r[3], ",".join(json.loads(r[4])) or None) for r in members],
                [(r[0], r[1], r[2]) for r in phones],
                [(r[0], r[1]) for r in emails], [(r[0], r[1]) for r in links])


async def record_outcomes_op(conn: aiosqlite.Connection, rows: Sequence[Outcome], now: str,
                             price: Pricer | None) -> list[int]:
    """``record_outcomes`` inside a writer job (the tracker joins it with others in one)."""
    # Read first, so that only what changes is written (a worker that stored its own
    # outcomes leaves nothing here) and priced where its channel and number are known.
    found = {r[0]: (r[1], r[2], r[3], r[4]) for r in await conn.execute_fetchall(
        "SELECT id, campaign_id, channel, address, state FROM deliveries "
        "WHERE id IN (SELECT value FROM json_each(?))", (json.dumps([r[0] for r in rows]),))}
    params = []
    for delivery_id, state, reason, parts, cost in rows:
        stored = found.get(delivery_id)
        # A delivery being sent ('sending') may still be cancelled or skipped by the worker
        # that claimed it, when it stops before sending; never once it was submitted.
        allowed = _UNSENT_FROM if state in _UNSENT_OUTCOMES else OWED
        if stored is None or stored[3] not in allowed:
            continue
        if price is not None:
            cost = price(delivery_id, stored[1], stored[2], parts, cost)
        params.append((state.value, reason, parts, cost, now, delivery_id,
                       *allowed, *([allowed[-1]] * (len(OWED) - len(allowed)))))
    if params:
        await conn.executemany(
            "UPDATE deliveries SET state = ?, reason = ?, parts = ?, cost_eur = ?, updated_at = ? "
            "WHERE id = ? AND state IN (?, ?, ?, ?)", params)
    return sorted({c for c, *_ in found.values()})


async def finish_campaigns_op(conn: aiosqlite.Connection, campaign_ids: Sequence[int], now: str) -> list[int]:
    """``finish_campaigns`` inside a writer job."""
    rows = await conn.execute_fetchall(
        "UPDATE campaigns SET state = ?, updated_at = ?, ended_at = ?, sent_at = COALESCE(sent_at, ?) "
        "WHERE id IN (SELECT value FROM json_each(?)) AND state = ? AND NOT EXISTS "
        "(SELECT 1 FROM deliveries d WHERE d.campaign_id = campaigns.id AND d.state IN (?, ?, ?, ?)) "
        "RETURNING id",
        (CampaignState.DONE.value, now, now, now, json.dumps(list(campaign_ids)),
         CampaignState.SENDING.value, *OWED))
    return sorted(r[0] for r in rows)
