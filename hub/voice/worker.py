"""The voice worker: ``deliver.voice`` batches in, calls placed, outcomes out.

Calls differ from SMS and e-mail in one way that shapes this worker: each lasts tens of
seconds, so a batch is worked through as many calls at once as ``max_concurrent`` allows,
each started when the pacer says so (``calls_per_minute``: :mod:`hub.voice.pacing` keeps every
10-second window under the setting and makes up for stalls).

The script (:mod:`hub.voice.script`) is made once per campaign × info, and its audio rendered
once per campaign × language (:class:`hub.voice.tts.AudioCache`) when the provider plays audio
(a script the engine cannot render fails its deliveries: "speech: ..."). Then, for each
delivery, once its slot and turn on the pacer's grid are there: the info's expiry is checked,
the delivery **claimed** in the store on its own (pending/queued → sending), so a redelivered
batch calls nobody twice and a claim is never older than one call, and the campaign read
again (after a Cancel, this and the rest of the batch are published cancelled). The provider
then awaits the worker's **gate** right before it dials, with the line and audio ready: one
more look for a Cancel and the pacer's admission, whose time is the call's recorded start.
So no call starts after a Cancel, and the 10-second cap holds on the dials themselves.

Outcomes are stored and published to ``delivery.events`` as they come (every second or 50
calls), like the other channels: delivered (answered; confirmed when the listener pressed 1),
failed (declined, not dialable, busy or unanswered after the last attempt), with the billed
minutes as ``parts`` and their cost. Busy and unanswered calls (and answered but unconfirmed
ones when confirmation is asked) go back to queued and are published again to
``deliver.voice`` with ``not_before`` = now + ``retry_interval``; the minutes already billed
ride along in ``charged`` so that the final outcome carries the whole cost.

A claim older than ``sending_grace`` (longer than any call) belongs to a dead worker and is
taken over; with ``sole`` (the embedded broker) any claim older than this worker's start is.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from hub.broker.base import Broker, Message, Reject, Retry
from hub.cap.model import Alert
from hub.domain import Campaign, CampaignState, Channel, DeliveryState
from hub.services.alert_cache import AlertCache
from hub.services.batches import BatchRow, open_batch
from hub.services.router import CHANNEL_QUEUES, EVENTS_QUEUE
from hub.store.base import CampaignStore, Store
from hub.voice.calls import CallOutcome, CallResult, Gate, settle_call
from hub.voice.pacing import CallPacer, pace
from hub.voice.providers import VoiceProvider
from hub.voice.script import VOICE_PRICE_EUR, VoiceScript, voice_script
from hub.voice.tts import AudioCache, TtsError

log = logging.getLogger(__name__)

FLUSH_EVERY = 1.0  # seconds between outcome publications while a batch is called
FLUSH_SIZE = 50
CACHED = 64  # parsed alerts and scripts kept
AUDIO_SWEEP = 600.0  # seconds between sweeps of finished campaigns' rendered audio

# (delivery id, address, language, info index), as in every deliver.<channel> batch
# (delivery id, state, reason, billed minutes, cost, seconds billed): the tracker prices calls
# by the seconds, per started minute, at the number's price
OutcomeRow = tuple[int, DeliveryState, str | None, int, float, float]


class VoiceStore(Store, CampaignStore, Protocol):
    pass


def outcomes_body(rows: Sequence[OutcomeRow]) -> bytes:
    return json.dumps([{"id": i, "state": s.value, "reason": r, "parts": p, "cost_eur": c, "seconds": sec}
                       for i, s, r, p, c, sec in rows], separators=(",", ":")).encode()


class _Run:
    """The state of one batch being called."""

    def __init__(self, batch: dict[str, Any], charged: dict[int, int]) -> None:
        self.batch = batch
        self.charged = charged
        self.outcomes: list[OutcomeRow] = []
        self.retries: list[tuple[BatchRow, str, int]] = []  # row, reason, minutes billed so far
        self.busy: list[int] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.lock = asyncio.Lock()
        self.flushed_at = asyncio.get_running_loop().time()


class VoiceWorker:
    def __init__(self, store: VoiceStore, broker: Broker, provider: VoiceProvider, *,
                 cache: AudioCache | None = None, calls_per_minute: float = 600.0, max_concurrent: int = 10,
                 attempts: int = 3, retry_interval: float = 300.0, confirm: bool = False,
                 max_seconds: float = 90.0, price_per_minute: Decimal = VOICE_PRICE_EUR,
                 sender: str = "BE-Alert", sending_grace: timedelta = timedelta(minutes=3),
                 sole: bool = False, queue: str | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if max_concurrent < 1 or attempts < 1 or retry_interval < 0 or calls_per_minute < 0:
            raise ValueError("max_concurrent and attempts must be at least 1, the rate and interval "
                             "not negative")
        if provider.needs_audio and cache is None:
            raise ValueError("this provider plays audio: give the worker an AudioCache")
        self.channel = Channel.VOICE
        self.queue = queue or CHANNEL_QUEUES[Channel.VOICE]  # the simulation environment has its own
        self._store, self._broker, self.provider, self._cache = store, broker, provider, cache
        self.pacer = CallPacer(calls_per_minute)
        self.max_concurrent = max_concurrent
        self._slots = asyncio.Semaphore(max_concurrent)
        self.attempts, self.retry_interval, self.confirm = attempts, retry_interval, confirm
        self.max_seconds, self.price, self.sender = max_seconds, price_per_minute, sender
        self._grace, self._clock = sending_grace, clock
        self._started = clock() if sole else None
        self._scripts: dict[tuple[int, int], VoiceScript] = {}
        self._alerts = AlertCache(store, CACHED, on_evict=self._scripts.clear)
        self.active = 0  # calls in progress
        self.max_active = 0
        # when each call started (time.monotonic, as the pacer recorded it), for the bench
        self.starts: collections.deque[float] = collections.deque(maxlen=200_000)

    async def sweep_audio(self) -> list[int]:
        """Delete the rendered audio of campaigns that are over (done or cancelled); returns
        them. Each worker sweeps its own data directory: audio is rendered where it is played."""
        if self._cache is None:
            return []

        async def finished(campaign_id: int) -> bool:
            campaign = await self._store.campaign(campaign_id)
            return campaign is None or campaign.state in (CampaignState.DONE, CampaignState.CANCELLED)

        return await self._cache.sweep(finished)

    async def sweep_audio_periodically(self, interval: float = AUDIO_SWEEP) -> None:
        """Run until cancelled: :meth:`sweep_audio` every ``interval`` seconds. A campaign's
        audio is a few MB at most, but every campaign with calls leaves some behind."""
        while True:
            await asyncio.sleep(interval)
            try:
                gone = await self.sweep_audio()
            except Exception:  # a busy store, a file in use: the next sweep tries again
                log.exception("could not sweep the rendered audio")
                continue
            if gone:
                log.info("deleted the rendered audio of %d finished campaign(s)", len(gone))

    async def handle(self, message: Message) -> None:
        """The ``deliver.voice`` queue's consumer."""
        opened = await open_batch(message.body, self._store, self._clock)
        batch, campaign, alert_id, rows = opened.body, opened.campaign, opened.alert_id, opened.deliveries
        try:
            charged = {int(k): int(v) for k, v in (batch.get("charged") or {}).items()}
        except (ValueError, TypeError, AttributeError) as exc:
            raise Reject(f"not a delivery batch: charged: {exc}") from exc
        run = _Run(batch, charged)
        try:
            await self._call_all(run, campaign, alert_id, rows)
        finally:
            if run.tasks:  # cancelled: stop the calls too; their claims are taken over later
                for task in run.tasks:
                    task.cancel()
                await asyncio.gather(*run.tasks, return_exceptions=True)
        await self._flush(run, final=True)
        if run.busy:
            raise Retry(f"{len(run.busy)} deliveries still being called elsewhere",
                        self._grace.total_seconds())

    async def _call_all(self, run: _Run, campaign: Campaign, alert_id: int, rows: Sequence[BatchRow]) -> None:
        if campaign.state is CampaignState.CANCELLED:
            run.outcomes += [(r[0], DeliveryState.CANCELLED, "cancelled", 0, 0.0, 0.0) for r in rows]
            return
        alert = await self._alert(alert_id)
        for index, row in enumerate(rows):
            delivery_id, info_index = row[0], row[3]
            info = alert.infos[info_index] if 0 <= info_index < len(alert.infos) else None
            if info is None:
                run.outcomes.append((delivery_id, DeliveryState.SKIPPED, "no such info in the alert",
                                     0, 0.0, 0.0))
                continue
            script = self._script(campaign, alert, info_index)
            try:  # rendered once per language, before the call's turn: never while it waits
                audio = await self._audio(campaign, script)
            except TtsError as exc:
                run.outcomes.append((delivery_id, DeliveryState.FAILED, f"speech: {exc}", 0, 0.0, 0.0))
                continue
            await self._slots.acquire()
            try:
                await pace(self.pacer)
                now = self._clock()
                if info.expires is not None and info.expires <= now:
                    run.outcomes.append((delivery_id, DeliveryState.SKIPPED, "expired", 0, 0.0, 0.0))
                    self._slots.release()
                    continue
                stale = now - self._grace if self._started is None else max(now - self._grace, self._started)
                claimed, busy = await self._store.claim([delivery_id], at=now, stale_before=stale)
                if await self._cancelled(campaign.id):  # after the claim: a Cancel now leaves it alone
                    run.outcomes += [(r[0], DeliveryState.CANCELLED, "cancelled", 0, 0.0, 0.0)
                                     for r in rows[index:]]
                    self._slots.release()
                    return
                if delivery_id not in claimed:
                    run.busy.extend(busy)  # called before (a redelivered batch) or being called
                    self._slots.release()
                    continue
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.create_task(self._call(run, campaign, row, script, audio, claimed[delivery_id]))
            run.tasks.add(task)
            task.add_done_callback(run.tasks.discard)
        while run.tasks:
            await asyncio.gather(*list(run.tasks))

    async def _cancelled(self, campaign_id: int) -> bool:
        current = await self._store.campaign(campaign_id)
        return current is not None and current.state is CampaignState.CANCELLED

    async def _call(self, run: _Run, campaign: Campaign, row: BatchRow, script: VoiceScript,
                    audio: Path | None, attempt: int) -> None:
        """One call (its slot already taken), then its outcome recorded."""
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            result = await self._place(row[1], script, audio, self._gate(campaign.id))
        finally:
            self.active -= 1
            self._slots.release()
        settled = settle_call(result, attempt=attempt, attempts=self.attempts, confirm=self.confirm,
                              price_per_minute=self.price)
        minutes = run.charged.get(row[0], 0) + settled.minutes
        if settled.retry:
            run.retries.append((row, settled.reason, minutes))
        else:
            # earlier answered attempts as whole minutes, then this call's seconds
            seconds = 60.0 * run.charged.get(row[0], 0) + (result.seconds if settled.minutes else 0.0)
            run.outcomes.append((row[0], settled.state, settled.reason, minutes,
                                 float(self.price * minutes), round(seconds, 1)))
        now = asyncio.get_running_loop().time()
        if len(run.outcomes) + len(run.retries) >= FLUSH_SIZE or now - run.flushed_at >= FLUSH_EVERY:
            await self._flush(run)

    async def _audio(self, campaign: Campaign, script: VoiceScript) -> Path | None:
        if not self.provider.needs_audio:
            return None
        assert self._cache is not None
        return await self._cache.audio(campaign.id, script.language, script.ssml)

    def _gate(self, campaign_id: int) -> Gate:
        """What runs right before the dial: a last look for a Cancel, then the pacer's
        admission (the 10-second cap on the starts themselves, recorded in ``starts``), with
        nothing in between it and the dial; a wait for admission is followed by another look."""

        async def gate() -> bool:
            if await self._cancelled(campaign_id):
                return False
            while (wait := self.pacer.admit()) > 0:
                await asyncio.sleep(wait)
                if await self._cancelled(campaign_id):
                    return False
            self.starts.append(self.pacer.last_start)
            return True

        return gate

    async def _place(self, number: str, script: VoiceScript, audio: Path | None, gate: Gate) -> CallResult:
        try:
            return await self.provider.call(number, script, audio, gate=gate)
        except Exception as exc:  # a provider fault must not lose the delivery: try it again later
            # the type only: a message could quote the number, and numbers are never logged
            log.error("voice provider failed during a call: %s", type(exc).__name__)
            return CallResult(CallOutcome.FAILED, reason=f"provider error: {type(exc).__name__}",
                              transient=True)

    async def _flush(self, run: _Run, *, final: bool = False) -> None:
        """Store and publish what has come in: final outcomes to ``delivery.events``, retries
        to ``deliver.voice`` after the retry interval."""
        async with run.lock:
            run.flushed_at = asyncio.get_running_loop().time()
            outcomes, retries = run.outcomes, run.retries
            run.outcomes, run.retries = [], []
            if not outcomes and not retries:
                return
            now = self._clock()
            await self._store.settle([o[0] for o in outcomes], [(r[0][0], r[1]) for r in retries], at=now)
            if outcomes:
                await self._broker.publish(EVENTS_QUEUE, outcomes_body(outcomes))
            if retries:
                body = dict(run.batch, deliveries=[list(r[0]) for r in retries],
                            not_before=now.timestamp() + self.retry_interval,
                            charged={str(r[0][0]): r[2] for r in retries if r[2]})
                await self._broker.publish(self.queue, json.dumps(body, separators=(",", ":")).encode())

    async def _alert(self, alert_id: int) -> Alert:
        return (await self._alerts.get(alert_id))[1]

    def _script(self, campaign: Campaign, alert: Alert, info_index: int) -> VoiceScript:
        key = (campaign.id, info_index)
        script = self._scripts.get(key)
        if script is None:
            script = self._scripts[key] = voice_script(
                alert.infos[info_index], sender=self.sender, max_seconds=self.max_seconds,
                confirm=self.confirm, price_per_minute=self.price)
        return script
