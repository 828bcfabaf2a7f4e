"""The RabbitMQ topology of cap-hub, as names and arguments only (no I/O).

For an events exchange ``caphub`` and a stage queue ``deliver.sms``::

    caphub (topic) ──topic patterns──▶ deliver.sms ──consumer──▶ handler
                                          │  nack / x-dead-letter-exchange
                                          ▼
    caphub.dead (direct) ──"deliver.sms"──▶ deliver.sms.dead
    default exchange ──▶ deliver.sms.retry.<ms> ──expired (x-dead-letter-*)──▶ deliver.sms

A ``Retry(delay)`` republishes the message, with its attempt count in a header and a
per-message expiration of ``delay``, to one of the stage's retry queues; when it expires,
RabbitMQ dead-letters it straight back to the stage queue (not through the events exchange,
so other stages bound to the same topic do not see it twice).

RabbitMQ only expires messages at the head of a queue, so one retry queue for all delays
would hold a 1 s retry behind a 10 min one. Delays are therefore spread over a fixed ladder
of retry queues (created on first use); within one rung a message waits at most the rung's
width longer than asked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Upper bounds of the retry rungs, in milliseconds: a delay goes to the first rung >= it.
RETRY_LADDER_MS: tuple[int, ...] = (
    0, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 150_000, 300_000,
    600_000, 1_800_000, 3_600_000, 14_400_000, 86_400_000,
)

ATTEMPT_HEADER = "x-caphub-attempt"  # 1 on first delivery, +1 on each retry
TOPIC_HEADER = "x-caphub-topic"  # the original routing key, kept across retry and dead letter
REASON_HEADER = "x-caphub-reason"  # why a message was dead-lettered
QUEUE_HEADER = "x-caphub-queue"  # the stage a dead letter came from
# Headers the broker machinery owns: never handed to handlers, never copied on republish.
INTERNAL_HEADERS = frozenset({
    ATTEMPT_HEADER, TOPIC_HEADER, REASON_HEADER, QUEUE_HEADER,
    "x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
    "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason",
})


def retry_rung_ms(delay: float) -> int:
    """The retry rung (in ms) for a delay in seconds; delays past the ladder share its top."""
    wanted = max(0, math.ceil(delay * 1000))
    for rung in RETRY_LADDER_MS:
        if wanted <= rung:
            return rung
    return RETRY_LADDER_MS[-1]


@dataclass(frozen=True, slots=True)
class Topology:
    exchange: str = "caphub"
    prefix: str = ""  # prepended to every exchange and queue name (e.g. one per deployment)

    @property
    def events_exchange(self) -> str:
        return f"{self.prefix}{self.exchange}"

    @property
    def dead_exchange(self) -> str:
        return f"{self.prefix}{self.exchange}.dead"

    def stage(self, queue: str) -> str:
        return f"{self.prefix}{queue}"

    def dead_queue(self, queue: str) -> str:
        return f"{self.stage(queue)}.dead"

    def retry_queue(self, queue: str, rung_ms: int) -> str:
        return f"{self.stage(queue)}.retry.{rung_ms}"

    def stage_arguments(self, queue: str) -> dict[str, str]:
        """A rejected message goes to the dead exchange, keyed by its stage."""
        return {"x-dead-letter-exchange": self.dead_exchange,
                "x-dead-letter-routing-key": self.stage(queue)}

    def retry_arguments(self, queue: str) -> dict[str, str]:
        """An expired retry goes back to its stage through the default exchange."""
        return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": self.stage(queue)}
