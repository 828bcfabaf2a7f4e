"""A campaign's final report, pure: the figures per channel and language, and the CSV.

The report is made from the store's tallies whenever it is asked for, so the report made at
the end of sending is updated by every late receipt. Per channel and language it gives:
planned (every delivery the plan made), sent (handed to a provider: submitted, delivered or
failed), delivered, failed and skipped (each by reason), cancelled, still awaiting an outcome,
the first and last send time, SMS parts and the cost. The CSV has one row per delivery;
personal data (member, name, address) only for an account allowed to see members.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from hub.campaigns.progress import TallyBase
from hub.domain import Account, DeliveryState

SENT_STATES = frozenset({DeliveryState.SUBMITTED.value, DeliveryState.DELIVERED.value,
                         DeliveryState.FAILED.value})
AWAITING_STATES = frozenset({DeliveryState.PENDING.value, DeliveryState.QUEUED.value,
                             DeliveryState.SENDING.value, DeliveryState.SUBMITTED.value})
CSV_COLUMNS = ("delivery", "channel", "language", "state", "reason", "parts", "cost_eur", "attempts",
               "sent_at", "updated_at")
PERSONAL_COLUMNS = ("member", "name", "address")
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


class TallyRow(TallyBase, Protocol):
    @property
    def parts(self) -> int: ...
    @property
    def first_sent(self) -> datetime | None: ...
    @property
    def last_sent(self) -> datetime | None: ...


class DeliveryLine(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def member_id(self) -> int | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def channel(self) -> str: ...
    @property
    def address(self) -> str | None: ...
    @property
    def language(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def parts(self) -> int: ...
    @property
    def cost_eur(self) -> float: ...
    @property
    def attempts(self) -> int: ...
    @property
    def sent_at(self) -> datetime | None: ...
    @property
    def updated_at(self) -> datetime: ...


def may_see_personal_data(account: Account) -> bool:
    """Personal data in a report only for an account that manages members of every group of
    its entity: a delivery may come from any of them, and a report cannot tell which."""
    return account.grants.manage_members and account.grants.groups is None


@dataclass
class Line:
    """The figures of one channel and language (or of a channel, or of everything)."""

    channel: str
    language: str
    planned: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    awaiting: int = 0
    parts: int = 0
    cost_eur: float = 0.0
    first_sent: datetime | None = None
    last_sent: datetime | None = None
    failed_reasons: dict[str, int] = field(default_factory=dict)
    skipped_reasons: dict[str, int] = field(default_factory=dict)

    def add(self, state: str, count: int, parts: int, cost: float, first: datetime | None,
            last: datetime | None) -> None:
        self.planned += count
        self.sent += count if state in SENT_STATES else 0
        self.delivered += count if state == DeliveryState.DELIVERED.value else 0
        self.failed += count if state == DeliveryState.FAILED.value else 0
        self.skipped += count if state == DeliveryState.SKIPPED.value else 0
        self.cancelled += count if state == DeliveryState.CANCELLED.value else 0
        self.awaiting += count if state in AWAITING_STATES else 0
        self.parts += parts
        self.cost_eur = round(self.cost_eur + cost, 6)
        if first is not None and (self.first_sent is None or first < self.first_sent):
            self.first_sent = first
        if last is not None and (self.last_sent is None or last > self.last_sent):
            self.last_sent = last

    def merge(self, other: Line) -> None:
        self.add("", 0, other.parts, other.cost_eur, other.first_sent, other.last_sent)
        for name in ("planned", "sent", "delivered", "failed", "skipped", "cancelled", "awaiting"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in ((self.failed_reasons, other.failed_reasons),
                             (self.skipped_reasons, other.skipped_reasons)):
            for reason, n in theirs.items():
                mine[reason] = mine.get(reason, 0) + n

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel, "language": self.language, "planned": self.planned, "sent": self.sent,
            "delivered": self.delivered, "failed": self.failed, "failedReasons": self.failed_reasons,
            "skipped": self.skipped, "skippedReasons": self.skipped_reasons, "cancelled": self.cancelled,
            "awaiting": self.awaiting, "parts": self.parts, "cost_eur": self.cost_eur,
            "firstSent": _iso(self.first_sent), "lastSent": _iso(self.last_sent),
        }


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat() if at else None


@dataclass
class Report:
    lines: list[Line]  # per channel and language, in channel then language order
    channels: list[Line]  # per channel
    total: Line
    timeline: dict[str, list[tuple[int, int]]]  # channel -> (epoch seconds, deliveries final then)
    bucket_seconds: int


def build(tallies: Iterable[TallyRow], reasons: Iterable[tuple[str, str, str, str, int]],
          timeline: Iterable[tuple[str, int, int]] = (), bucket_seconds: int = 1) -> Report:
    """The report's figures from the store's tallies, reasons (channel, language, state,
    reason, count) and timeline (channel, bucket start, count)."""
    by_key: dict[tuple[str, str], Line] = {}
    for t in tallies:
        line = by_key.setdefault((t.channel, t.language), Line(t.channel, t.language))
        line.add(t.state, t.count, t.parts, t.cost_eur, t.first_sent, t.last_sent)
    for channel, language, state, reason, n in reasons:
        line = by_key.setdefault((channel, language), Line(channel, language))
        if state == DeliveryState.FAILED.value:
            line.failed_reasons[reason or "unknown"] = line.failed_reasons.get(reason or "unknown", 0) + n
        elif state == DeliveryState.SKIPPED.value:
            line.skipped_reasons[reason or "unknown"] = line.skipped_reasons.get(reason or "unknown", 0) + n
    lines = [by_key[k] for k in sorted(by_key)]
    channels: dict[str, Line] = {}
    total = Line("all", "all")
    for line in lines:
        channels.setdefault(line.channel, Line(line.channel, "all")).merge(line)
        total.merge(line)
    series: dict[str, list[tuple[int, int]]] = {}
    for channel, start, n in timeline:
        series.setdefault(channel, []).append((start, n))
    return Report(lines, list(channels.values()), total, series, bucket_seconds)


def to_json(report: Report) -> dict[str, Any]:
    return {
        "totals": report.total.to_json(),
        "channels": [c.to_json() for c in report.channels],
        "lines": [line.to_json() for line in report.lines],
        "timeline": {"bucketSeconds": report.bucket_seconds,
                     "series": {c: [[t, n] for t, n in points] for c, points in report.timeline.items()}},
    }


def bucket_for(first: datetime | None, last: datetime | None, *, buckets: int = 60) -> int:
    """A chart bucket width (seconds) that shows a campaign of any length in ~``buckets`` bars."""
    if first is None or last is None:
        return 1
    span = max(1.0, (last - first).total_seconds())
    for width in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200):
        if span / width <= buckets:
            return width
    return 86400


def csv_header(personal: bool) -> str:
    return _csv_line(CSV_COLUMNS + (PERSONAL_COLUMNS if personal else ()))


def csv_lines(rows: Sequence[DeliveryLine], personal: bool) -> str:
    """The CSV lines of these deliveries (``personal``: with member, name and address)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for r in rows:
        values: list[object] = [r.id, r.channel, r.language, r.state, r.reason or "", r.parts,
                                f"{r.cost_eur:.6f}".rstrip("0").rstrip("."), r.attempts,
                                _iso(r.sent_at) or "", _iso(r.updated_at)]
        if personal:
            values += [r.member_id if r.member_id is not None else "", r.name or "", r.address or ""]
        writer.writerow([_no_formula(v) for v in values])
    return buf.getvalue()


def _csv_line(values: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(values)
    return buf.getvalue()


def _no_formula(value: object) -> object:
    """A text cell a spreadsheet would run as a formula is quoted with an apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") and not _is_number(value):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    return text.lstrip("+-").replace(".", "", 1).isdigit()
