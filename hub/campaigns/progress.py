"""A campaign's live progress from its delivery tallies: pure (the time is given).

From the store's tallies per (channel, language, state) it makes what ``GET /campaigns/{id}``
and the SSE stream show: counts per channel and state (the shape harnesses read), the same
per channel and language, how many are final and how many still owed, the rate at which
deliveries reached a final state over the last ``RATE_WINDOW`` seconds, the estimated time
to completion at that rate, and the cost so far.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from hub.domain import CampaignState, DeliveryState

RATE_WINDOW = 10.0  # seconds
FINAL_STATES = frozenset({DeliveryState.DELIVERED.value, DeliveryState.FAILED.value,
                          DeliveryState.SKIPPED.value, DeliveryState.CANCELLED.value})
# A campaign in one of these states changes no more, but for late outcomes (counted when they
# come): a live stream ends there.
ENDED_STATES = frozenset({CampaignState.DONE, CampaignState.NOTHING, CampaignState.CANCELLED})


class TallyBase(Protocol):
    """What progress and the report both read of a store tally (one channel, language, state)."""

    @property
    def channel(self) -> str: ...
    @property
    def language(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def count(self) -> int: ...
    @property
    def cost_eur(self) -> float: ...


class TallyLike(TallyBase, Protocol):
    @property
    def recent(self) -> int: ...


@dataclass
class Progress:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    languages: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    total: int = 0
    final: int = 0
    recent: int = 0
    cost_eur: float = 0.0

    @property
    def owed(self) -> int:
        return self.total - self.final

    @property
    def rate(self) -> float:
        """Deliveries per second that reached a final state over the last ``RATE_WINDOW`` s."""
        return self.recent / RATE_WINDOW

    def eta_seconds(self, state: CampaignState) -> float | None:
        """Seconds until every delivery is final at the current rate: 0 once the campaign
        ended, None while nothing moves (no rate to go by)."""
        if state in ENDED_STATES or self.owed == 0:
            return 0.0
        if self.recent == 0:
            return None
        return round(self.owed / self.rate, 1)

    def to_json(self, state: CampaignState, *, sent_at: datetime | None,
                ended_at: datetime | None) -> dict[str, Any]:
        """The progress fields of a campaign's JSON (beside ``counts`` and ``cost_eur``)."""
        return {
            "languages": self.languages,
            "total": self.total,
            "final": self.final,
            "owed": self.owed,
            "rate": round(self.rate, 1),
            "rateWindow": RATE_WINDOW,
            "etaSeconds": self.eta_seconds(state),
            "sentAt": sent_at.isoformat() if sent_at else None,
            "endedAt": ended_at.isoformat() if ended_at else None,
            "ended": state in ENDED_STATES,
        }


def progress(tallies: Iterable[TallyLike]) -> Progress:
    out = Progress()
    cost = 0.0
    for t in sorted(tallies, key=lambda t: (t.channel, t.language, t.state)):
        by_state = out.counts.setdefault(t.channel, {})
        by_state[t.state] = by_state.get(t.state, 0) + t.count
        by_lang = out.languages.setdefault(t.channel, {}).setdefault(t.language, {})
        by_lang[t.state] = by_lang.get(t.state, 0) + t.count
        out.total += t.count
        if t.state in FINAL_STATES:
            out.final += t.count
            out.recent += t.recent
        cost += t.cost_eur
    out.cost_eur = round(cost, 6)
    return out
