"""Live progress from tallies (pure): counts per channel and language, rate, time to go."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from hub.campaigns.progress import RATE_WINDOW, progress
from hub.domain import CampaignState


@dataclass
class T:
    channel: str
    language: str
    state: str
    count: int
    recent: int = 0
    cost_eur: float = 0.0


TALLIES = [T("sms", "nl", "delivered", 60, 40, 3.3), T("sms", "fr", "delivered", 20, 10, 2.2),
           T("sms", "nl", "queued", 20), T("email", "nl", "delivered", 70, 50),
           T("email", "fr", "failed", 5, 0),
           T("email", "fr", "submitted", 25), T("voice", "nl", "skipped", 3, 0)]


def test_counts_per_channel_and_state_and_per_language() -> None:
    p = progress(TALLIES)
    assert p.counts == {"email": {"delivered": 70, "failed": 5, "submitted": 25},
                        "sms": {"delivered": 80, "queued": 20}, "voice": {"skipped": 3}}
    assert p.languages["sms"] == {"fr": {"delivered": 20}, "nl": {"delivered": 60, "queued": 20}}
    assert (p.total, p.final, p.owed) == (203, 158, 45)
    assert p.cost_eur == 5.5


def test_rate_and_time_to_completion() -> None:
    p = progress(TALLIES)
    assert p.rate == 100 / RATE_WINDOW
    assert p.eta_seconds(CampaignState.SENDING) == 4.5  # 45 owed at 10/s
    assert p.eta_seconds(CampaignState.DONE) == 0.0  # ended: the rest timed out
    stalled = progress([T("sms", "nl", "queued", 5), T("sms", "nl", "delivered", 5, 0)])
    assert stalled.eta_seconds(CampaignState.SENDING) is None  # nothing moves: no estimate
    assert progress([]).eta_seconds(CampaignState.SENDING) == 0.0


def test_json_fields() -> None:
    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    body = progress(TALLIES).to_json(CampaignState.SENDING, sent_at=at, ended_at=None)
    assert body["sentAt"] == "2026-01-01T12:00:00+00:00" and body["endedAt"] is None
    assert body["ended"] is False and body["rate"] == 10.0 and body["etaSeconds"] == 4.5
    assert progress([]).to_json(CampaignState.NOTHING, sent_at=None, ended_at=None)["ended"] is True
