"""The report's figures, CSV and HTML page (pure)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hub.campaigns.report import bucket_for, build, csv_header, csv_lines, may_see_personal_data, to_json
from hub.campaigns.report_html import chart, render
from hub.domain import Account, Grants, Role

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class T:
    channel: str
    language: str
    state: str
    count: int
    parts: int = 0
    cost_eur: float = 0.0
    first_sent: datetime | None = None
    last_sent: datetime | None = None


@dataclass
class D:
    id: int
    channel: str
    language: str
    state: str
    reason: str | None = None
    parts: int = 1
    cost_eur: float = 0.055
    attempts: int = 1
    sent_at: datetime | None = T0
    updated_at: datetime = T0
    member_id: int | None = 7
    name: str | None = "=HYPERLINK(\"x\")"
    address: str | None = "+32477123456"


TALLIES = [
    T("sms", "nl", "delivered", 8, 8, 0.44, T0, T0 + timedelta(seconds=5)),
    T("sms", "nl", "failed", 2, 2, 0.11, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)),
    T("sms", "fr", "submitted", 3, 6, 0.33, T0 + timedelta(seconds=3), T0 + timedelta(seconds=9)),
    T("sms", "fr", "skipped", 1),
    T("email", "nl", "delivered", 10, 0, 0.0, T0, T0 + timedelta(seconds=1)),
    T("email", "nl", "cancelled", 4),
]
REASONS = [("sms", "nl", "failed", "UNDELIV err:001", 2), ("sms", "fr", "skipped", "expired", 1),
           ("email", "nl", "cancelled", "alert cancelled", 4)]


def test_figures_per_channel_and_language() -> None:
    report = build(TALLIES, REASONS, [("sms", 100, 8), ("email", 100, 10)], 5)
    lines = {(line.channel, line.language): line for line in report.lines}
    nl = lines[("sms", "nl")]
    assert (nl.planned, nl.sent, nl.delivered, nl.failed, nl.awaiting) == (10, 10, 8, 2, 0)
    assert nl.failed_reasons == {"UNDELIV err:001": 2} and nl.cost_eur == 0.55 and nl.parts == 10
    assert (nl.first_sent, nl.last_sent) == (T0, T0 + timedelta(seconds=5))
    fr = lines[("sms", "fr")]
    assert (fr.planned, fr.sent, fr.awaiting, fr.skipped, fr.skipped_reasons) == (4, 3, 3, 1, {"expired": 1})
    email = lines[("email", "nl")]
    assert (email.planned, email.sent, email.cancelled, email.cost_eur) == (14, 10, 4, 0.0)
    sms = next(c for c in report.channels if c.channel == "sms")
    assert (sms.planned, sms.delivered, sms.cost_eur) == (14, 8, 0.88)
    assert sms.last_sent == T0 + timedelta(seconds=9)
    assert sms.failed_reasons == {"UNDELIV err:001": 2}
    assert report.total.planned == 28 and report.total.delivered == 18
    body = to_json(report)
    assert body["totals"]["cost_eur"] == 0.88 and body["timeline"]["bucketSeconds"] == 5
    assert body["timeline"]["series"] == {"sms": [[100, 8]], "email": [[100, 10]]}
    assert body["lines"][0]["firstSent"] == T0.isoformat()


def test_bucket_width_fits_any_campaign_length() -> None:
    assert bucket_for(None, None) == 1
    assert bucket_for(T0, T0 + timedelta(seconds=30)) == 1
    assert bucket_for(T0, T0 + timedelta(minutes=10)) == 10
    assert bucket_for(T0, T0 + timedelta(hours=24)) == 1800
    assert bucket_for(T0, T0 + timedelta(days=60)) == 86400


def test_csv_one_row_per_delivery_personal_data_only_when_allowed() -> None:
    rows = [D(1, "sms", "nl", "delivered"), D(2, "email", "fr", "failed", "550 no such user", 0, 0.0,
                                             address="luc@example.be")]
    private = csv_header(False) + csv_lines(rows, False)
    read = list(csv.DictReader(io.StringIO(private)))
    assert [r["delivery"] for r in read] == ["1", "2"] and read[1]["reason"] == "550 no such user"
    assert read[0]["cost_eur"] == "0.055" and read[1]["cost_eur"] == "0"
    assert "+32477" not in private and "luc@" not in private and "HYPERLINK" not in private
    full = list(csv.DictReader(io.StringIO(csv_header(True) + csv_lines(rows, True))))
    assert full[0]["address"] == "+32477123456" and full[1]["address"] == "luc@example.be"
    assert full[0]["name"].startswith("'=")  # a spreadsheet must not run it as a formula
    assert full[0]["member"] == "7"


def test_who_sees_personal_data() -> None:
    def account(role: Role, grants: Grants) -> Account:
        return Account(1, 1, "a", role, grants)

    assert may_see_personal_data(account(Role.COORDINATOR, Grants()))
    assert not may_see_personal_data(account(Role.MANDATED, Grants(manage_members=False)))
    assert not may_see_personal_data(account(Role.CO_COORDINATOR, Grants(groups=frozenset({"plp-a"}))))


def test_html_page_is_self_contained_and_escaped() -> None:
    report = build(TALLIES, REASONS + [("sms", "nl", "failed", "<script>x</script>", 1)],
                   [("sms", 1_772_355_600, 8), ("sms", 1_772_355_605, 2), ("email", 1_772_355_600, 10)], 5)
    page = render(report, {"id": 3, "alert": "A<1>", "state": "done", "simulation": True})
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "&lt;script&gt;" in page
    assert "A&lt;1&gt;" in page and "SIMULATION" in page
    assert page.count("<polyline") == 2 and page.count("<table>") == 3
    assert not re.search(r'(src|href)="', page)  # nothing to fetch
    assert "No delivery" in chart({}, 1)
