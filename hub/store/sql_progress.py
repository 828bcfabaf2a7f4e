"""How far campaigns got: the SQL of live progress, the final report and campaign ends.

Counts are read from the deliveries themselves, grouped (one pass over a campaign's rows
by the ``deliveries_campaign`` index), never kept as separate counters: every stage changes
delivery states in its own transactions, in its own process, and a late receipt hours later
is counted because it changes its delivery's row like any other outcome.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from hub.domain import CampaignState, DeliveryState
from hub.store.sql_campaigns import Outcome, Pricer, finish_campaigns_op, record_outcomes_op
from hub.store.sql_common import SqlBase, from_utc_text, utc_text

FINAL = (DeliveryState.DELIVERED.value, DeliveryState.FAILED.value, DeliveryState.SKIPPED.value,
         DeliveryState.CANCELLED.value)
# Not yet handed to a provider (or being handed): sending has not ended while one is left.
UNSENT = (DeliveryState.PENDING.value, DeliveryState.QUEUED.value, DeliveryState.SENDING.value)


@dataclass(frozen=True, slots=True)
class Tally:
    """The deliveries of one (channel, language, state) of a campaign."""

    channel: str
    language: str
    state: str
    count: int
    recent: int  # of them, final since the ``since`` asked for
    parts: int
    cost_eur: float
    first_sent: datetime | None  # the earliest and latest claims for sending
    last_sent: datetime | None
    last_update: datetime | None


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One delivery as the report's CSV lists it. ``address`` and ``name`` are personal data."""

    id: int
    member_id: int | None
    name: str | None
    channel: str
    address: str | None
    language: str
    state: str
    reason: str | None
    parts: int
    cost_eur: float
    attempts: int
    sent_at: datetime | None
    updated_at: datetime


def _time(text: str | None) -> datetime | None:
    return from_utc_text(text) if text else None


class ProgressSql(SqlBase):
    async def campaign_tally(self, campaign_id: int, *, since: datetime, detail: bool = False) -> list[Tally]:
        """The campaign's deliveries per (channel, language, state), in one statement. Without
        ``detail`` (live progress) it reads the ``deliveries_campaign`` index alone, and
        leaves parts and send times out; with it (the report), every row."""
        if not detail:
            rows = await self._read(
                "SELECT channel, language, state, COUNT(*), SUM(updated_at >= ?), SUM(cost_eur) "
                "FROM deliveries WHERE campaign_id = ? GROUP BY state, channel, language",
                (utc_text(since), campaign_id))
            return [Tally(r[0], r[1], r[2], r[3], int(r[4] or 0) if r[2] in FINAL else 0, 0,
                          float(r[5] or 0.0), None, None, None) for r in rows]
        marks = ",".join("?" for _ in FINAL)
        rows = await self._read(
            f"SELECT channel, language, state, COUNT(*), SUM(state IN ({marks}) AND updated_at >= ?), "
            "SUM(parts), SUM(cost_eur), MIN(submitted_at), MAX(submitted_at), MAX(updated_at) "
            "FROM deliveries WHERE campaign_id = ? GROUP BY channel, language, state",
            (*FINAL, utc_text(since), campaign_id))
        return [Tally(r[0], r[1], r[2], r[3], int(r[4] or 0), int(r[5] or 0), float(r[6] or 0.0),
                      _time(r[7]), _time(r[8]), _time(r[9])) for r in rows]

    async def campaign_reasons(self, campaign_id: int) -> list[tuple[str, str, str, str, int]]:
        """(channel, language, state, reason, count) of the failed, skipped and cancelled."""
        rows = await self._read(
            "SELECT channel, language, state, COALESCE(reason, ''), COUNT(*) FROM deliveries "
            "WHERE campaign_id = ? AND state IN (?, ?, ?) GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC",
            (campaign_id, DeliveryState.FAILED.value, DeliveryState.SKIPPED.value,
             DeliveryState.CANCELLED.value))
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def campaign_timeline(self, campaign_id: int, *, bucket_seconds: int) -> list[tuple[str, int, int]]:
        """(channel, bucket start in epoch seconds, count) of the deliveries that reached a
        final state, by the time they did."""
        width = max(1, int(bucket_seconds))
        marks = ",".join("?" for _ in FINAL)
        rows = await self._read(
            f"SELECT channel, CAST(strftime('%s', substr(updated_at, 1, 19)) AS INTEGER) / ? * ? AS b, "
            f"COUNT(*) FROM deliveries WHERE campaign_id = ? AND state IN ({marks}) GROUP BY 1, 2 ORDER BY 2",
            (width, width, campaign_id, *FINAL))
        return [(r[0], int(r[1]), int(r[2])) for r in rows]

    async def campaign_times(self, campaign_id: int) -> tuple[datetime | None, datetime | None]:
        """When the campaign's sending ended (its report is ready) and when it ended."""
        row = await self._read_one("SELECT sent_at, ended_at FROM campaigns WHERE id = ?", (campaign_id,))
        return (None, None) if row is None else (_time(row[0]), _time(row[1]))

    async def report_rows(self, campaign_id: int, *, after_id: int = 0,
                          limit: int = 10_000) -> list[ReportRow]:
        """The campaign's deliveries in id order, ``limit`` at a time after ``after_id``."""
        rows = await self._read(
            "SELECT d.id, d.member_id, m.name, d.channel, d.address, d.language, d.state, d.reason, d.parts, "
            "d.cost_eur, d.attempts, d.submitted_at, d.updated_at FROM deliveries d "
            "LEFT JOIN members m ON m.id = d.member_id WHERE d.campaign_id = ? AND d.id > ? "
            "ORDER BY d.id LIMIT ?", (campaign_id, after_id, limit))
        return [ReportRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], _time(r[11]),
                          from_utc_text(r[12])) for r in rows]

    async def mark_sent(self, campaign_ids: Sequence[int], *, at: datetime) -> list[int]:
        """Record the end of sending of those of these campaigns (planned, not cancelled)
        that have nothing left to hand a provider; returns those that just got there."""
        if not campaign_ids:
            return []
        now = utc_text(at)
        return await self._write(lambda conn: mark_sent_op(conn, campaign_ids, now), single_statement=True)

    async def tracking_needed(self, delivery_ids: Sequence[int],
                              campaign_ids: Sequence[int] = ()) -> tuple[list[int], bool]:
        """Read only: the campaigns of these deliveries, and whether ``track_outcomes`` would
        change anything (a delivery still owed, a campaign whose sending or whose whole end
        is due). Lets the tracker skip the writer, which it shares with the workers, for the
        outcomes a worker stored itself; what commits later sends its own event."""
        owed = ",".join("?" for _ in (*UNSENT, DeliveryState.SUBMITTED.value))
        touched: set[int] = set(campaign_ids)
        if delivery_ids:
            rows = await self._read(
                f"SELECT campaign_id, SUM(state IN ({owed})) FROM deliveries "
                "WHERE id IN (SELECT value FROM json_each(?)) GROUP BY campaign_id",
                (*UNSENT, DeliveryState.SUBMITTED.value, json.dumps(list(delivery_ids))))
            if any(r[1] for r in rows):
                return sorted({*touched, *(r[0] for r in rows)}), True
            touched.update(r[0] for r in rows)
        if not touched:
            return [], False
        unsent = ",".join("?" for _ in UNSENT)
        due = await self._read(
            "SELECT id FROM campaigns c WHERE id IN (SELECT value FROM json_each(?)) AND ("
            f"(sent_at IS NULL AND state IN (?, ?) AND NOT EXISTS (SELECT 1 FROM deliveries d "
            f"WHERE d.campaign_id = c.id AND d.state IN ({unsent}))) OR "
            f"(state = ? AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.campaign_id = c.id "
            f"AND d.state IN ({owed})))) LIMIT 1",
            (json.dumps(sorted(touched)), CampaignState.SENDING.value, CampaignState.DONE.value, *UNSENT,
             CampaignState.SENDING.value, *UNSENT, DeliveryState.SUBMITTED.value))
        return sorted(touched), bool(due)

    async def delivery_costs(self, delivery_ids: Sequence[int]) -> dict[int, tuple[str, str | None, float]]:
        """(channel, address, cost so far) of these deliveries: what re-pricing needs."""
        if not delivery_ids:
            return {}
        rows = await self._read("SELECT id, channel, address, cost_eur FROM deliveries "
                                "WHERE id IN (SELECT value FROM json_each(?))",
                                (json.dumps(list(delivery_ids)),))
        return {r[0]: (r[1], r[2], float(r[3])) for r in rows}

    async def track_outcomes(self, rows: Sequence[Outcome], *, at: datetime, price: Pricer | None = None,
                             campaign_ids: Sequence[int] = (),
                             costs: Sequence[tuple[int, float]] = ()) -> tuple[list[int], list[int]]:
        """The tracker's one writer job per event: ``record_outcomes``, the corrected ``costs``
        (delivery, euro) of outcomes stored before, then ``mark_sent`` and ``finish_campaigns``
        for the campaigns touched (and ``campaign_ids``). Returns the campaigns whose sending
        just ended, and those just done."""
        now = utc_text(at)

        async def op(conn: aiosqlite.Connection) -> tuple[list[int], list[int]]:
            touched = await record_outcomes_op(conn, rows, now, price) if rows else []
            if costs:
                await conn.executemany("UPDATE deliveries SET cost_eur = ? WHERE id = ?",
                                       [(cost, i) for i, cost in costs])
            ids = sorted({*touched, *campaign_ids})
            if not ids:
                return [], []
            return await mark_sent_op(conn, ids, now), await finish_campaigns_op(conn, ids, now)

        return await self._write(op)

    async def end_waiting_campaigns(self, waits: Mapping[str, float], *, at: datetime) -> list[int]:
        """sending → done for the campaigns whose sending ended and whose every delivery still
        owed was sent longer ago than its channel's wait (``waits``: seconds per channel):
        those outcomes are not waited for any more. A late one still counts when it comes."""
        cutoff = {channel: utc_text(datetime.fromtimestamp(at.timestamp() - seconds, at.tzinfo))
                  for channel, seconds in waits.items()}
        cases = " ".join("WHEN ? THEN ?" for _ in cutoff)
        unsent = ",".join("?" for _ in UNSENT)
        now = utc_text(at)

        async def op(conn: aiosqlite.Connection) -> list[int]:
            rows = await conn.execute_fetchall(
                "UPDATE campaigns SET state = ?, ended_at = ?, sent_at = COALESCE(sent_at, ?), "
                "updated_at = ? WHERE state = ? AND NOT EXISTS (SELECT 1 FROM deliveries d "
                "WHERE d.campaign_id = campaigns.id "
                f"AND (d.state IN ({unsent}) OR (d.state = ? AND d.updated_at > CASE d.channel {cases} "
                "ELSE '' END))) RETURNING id",
                (CampaignState.DONE.value, now, now, now, CampaignState.SENDING.value, *UNSENT,
                 DeliveryState.SUBMITTED.value, *[v for item in cutoff.items() for v in item]))
            return sorted(r[0] for r in rows)

        return await self._write(op, single_statement=True)


async def mark_sent_op(conn: aiosqlite.Connection, campaign_ids: Sequence[int], now: str) -> list[int]:
    marks = ",".join("?" for _ in UNSENT)
    rows = await conn.execute_fetchall(
        "UPDATE campaigns SET sent_at = ? WHERE id IN (SELECT value FROM json_each(?)) "
        "AND sent_at IS NULL AND state IN (?, ?) AND NOT EXISTS (SELECT 1 FROM deliveries d "
        f"WHERE d.campaign_id = campaigns.id AND d.state IN ({marks})) RETURNING id",
        (now, json.dumps(list(campaign_ids)), CampaignState.SENDING.value, CampaignState.DONE.value, *UNSENT))
    return sorted(r[0] for r in rows)
