"""Token buckets for channel rate limits, with an injected clock.

Pure apart from the optional :func:`acquire` helper, whose ``sleep`` is injected too. The caller
counts the cost: SMS parts for SMS (a 3-part SMS costs 3), recipients for e-mail.

**Reservation.** :meth:`TokenBucket.take` always takes the tokens, letting the balance go
below zero, and returns how long to wait before sending; concurrent takers thus queue in
order with no retry loop, and a take larger than the bucket is allowed.

**The 1-second guarantee.** The issue asks for an achieved rate within 2% of the setting and
never above it in any 1-second window. A plain bucket refilling at the rate ``r`` lets
``burst + r`` through in the second after an idle spell, so the refill is lowered instead::

    refill = (rate - burst) * (1 - headroom)

In any window of T seconds, at most ``max(burst, n) + refill * T`` tokens are sent, where
``n`` is the largest single take (a take that waits accrues its tokens *before* its send time).
With every take at most ``burst`` that is below ``rate`` for T = 1: the window limit holds by
construction, and ``headroom`` leaves room for senders that wake up late (0.4% of the rate
covers about 4 ms of sleep overshoot). The long-run rate is ``refill``: with the defaults
(burst 0.6% of the rate, headroom 0.4%) 99.0% of the setting, within the 2% target.

So keep each take at most ``burst``: an SMS takes one message's parts (the default burst is
3 at 500/s; pass a larger ``burst`` if ``max_parts`` is larger); e-mail at 2,500/s (burst 15)
takes at most 15 recipients at a time, i.e. acquire before each group of RCPT TO rather than
once per 500-recipient message. A larger take is allowed but loosens the window bound to
``refill + n``.

A rate of 0 means unlimited: :meth:`take` returns 0 and never reads the clock.

**Measured at the peer.** The bound above holds for the times the tokens fall due, not for
the instants the messages reach the SMSC or the SMTP server: a sender woken late (a busy event
loop, a slow store commit) sends what fell due meanwhile all at once, and a peer's 1-second
window then holds more than the rate (519 in one second at 500/s was measured so). So the
senders go through a :class:`Pacer`: the bucket spaces the sends out (the mean rate), and a
:class:`SendWindow` (a log of what was actually sent) holds back any send that would take a
1-second window of *actual sends* above ``window_share`` of the rate, or run more than
``AHEAD_SHARE`` of it ahead of sends spaced at that rate (so what a stall held back does not
go at once: a peer whose clock runs a few ms behind ours would count it in the next window).
``window_share`` is 99.3% by default: the rest covers ~7 ms of jitter between our write and
the peer's clock. A step of ``n`` tokens leaves ``floor(window_share × rate / n) × n`` per
window, so keep ``n`` at most 1% of the rate. The bucket refills at ``mean_share`` of the
rate (98.8%): the mean stays within the 2% target, the send log binds only when sends bunch
up. The check and the record happen with no await in between, right before the write, so
concurrent senders cannot both slip through.

**Counted until answered.** Where the peer answers each send and stamps it before answering
(SMTP's reply to DATA, SMPP's submit_sm_resp), a send may be admitted *open* and counted until
the answer, less the steady part of the peer's delay: then a peer that stalls and reads a
backlog at once cannot fill a window above the log's limit (see :class:`SendWindow`), and
:meth:`Pacer.till_answered` runs at the rate with no spacing. The channel workers pace SMTP
and SMPP so. A sink that stalled now and then had shown 2,550 in one second at 2,500/s with
sends counted as written; counted until answered, at most the rate in any second at the peer.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

DEFAULT_BURST_SHARE = 0.006
DEFAULT_HEADROOM = 0.004
DEFAULT_WINDOW_SHARE = 0.993
DEFAULT_MEAN_SHARE = 0.988
INF = float("inf")
# Sends counted until answered (SendWindow, Pacer.till_answered):
FLOOR_SPAN = 10.0  # seconds of answers whose shortest delay every stamp is taken to lag by
FLOOR_AFTER = 1.0  # seconds of answers counted whole first (a peer warming up is slow, then bunches)
FLOOR_SLACK = 0.005  # s of the shortest delay still counted: stamps may come sooner by its jitter
CATCH_UP = 0.1  # seconds of tokens a till-answered pacer's bucket banks for after a stall
AHEAD_SHARE = 0.004  # how far a send may run ahead of the spacing: this share of the limit, or itself


class TokenBucket:
    """A token bucket of ``burst`` tokens, refilled so that no 1-second window ever carries
    more than ``rate_per_s`` tokens (see the module docstring).

    ``burst`` defaults to 0.6% of the rate; it must be below the rate. The bucket starts full.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        headroom: float = DEFAULT_HEADROOM,
        mean_share: float | None = None,
    ) -> None:
        """``mean_share``: refill at ``mean_share`` × the rate whatever the burst, when the
        1-second guarantee comes from a :class:`SendWindow` instead (see :class:`Pacer`)."""
        if mean_share is not None and not 0 < mean_share <= 1:
            raise ValueError("mean_share must be in (0, 1]")
        self._clock = clock
        self._headroom = headroom
        self._mean_share = mean_share
        self._last = 0.0
        self._balance = 0.0
        self._started = False  # the first set_rate fills the bucket
        self.rate_per_s = 0.0
        self.burst = 0.0
        self.refill_per_s = 0.0
        self.set_rate(rate_per_s, burst)

    def set_rate(self, rate_per_s: float, burst: float | None = None) -> None:
        """Change the rate (and burst), e.g. to slow a throttled SMPP bind down. Tokens
        already reserved stay reserved; the balance is clipped to the new burst."""
        if rate_per_s < 0:
            raise ValueError("rate_per_s must not be negative")
        if not 0 <= self._headroom < 1:
            raise ValueError("headroom must be in [0, 1)")
        if burst is None:
            burst = rate_per_s * DEFAULT_BURST_SHARE
        if rate_per_s and not 0 <= burst < rate_per_s:
            raise ValueError("burst must be at least 0 and below the rate")
        self._settle()
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst) if rate_per_s else 0.0
        self.refill_per_s = (self.rate_per_s - self.burst) * (1 - self._headroom) \
            if self._mean_share is None else self.rate_per_s * self._mean_share
        if not rate_per_s:
            self._balance = 0.0
        else:
            self._balance = min(self._balance, self.burst) if self._started else self.burst
        self._started = True
        self._last = self._clock() if rate_per_s else 0.0

    @property
    def unlimited(self) -> bool:
        return self.rate_per_s == 0

    def _settle(self) -> None:
        """Add what was refilled since the last look, up to ``burst``."""
        if self.unlimited or not self._started:
            return
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._balance = min(self.burst, self._balance + elapsed * self.refill_per_s)
        self._last = now

    def take(self, n: float = 1) -> float:
        """Reserve ``n`` tokens; returns the seconds to wait before using them (0: now)."""
        if n < 0:
            raise ValueError("n must not be negative")
        if self.unlimited:
            return 0.0
        self._settle()
        self._balance -= n
        return 0.0 if self._balance >= 0 else -self._balance / self.refill_per_s

    def available(self) -> float:
        """Tokens available now (negative while reservations are pending)."""
        if self.unlimited:
            return float("inf")
        self._settle()
        return self._balance


async def acquire(
    bucket: TokenBucket,
    n: float = 1,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> float:
    """Take ``n`` tokens and wait until they may be used; returns the wait. A task cancelled
    while waiting loses its reservation: the channel runs slower for a moment, never faster."""
    delay = bucket.take(n)
    if delay > 0:
        await sleep(delay)
    return delay


class SendWindow:
    """At most ``limit`` tokens in any window of ``span`` seconds of the sends recorded with
    :meth:`add`, and no further than ``AHEAD_SHARE`` × ``limit`` tokens (or the send itself)
    ahead of the sends before it spaced at ``limit / span``, so sends do not bunch up (a log
    alone lets what a stall held back go at once, and a peer whose clock is a few ms off then
    sees two windows' worth in one).

    **Sends the peer has not answered yet.** A send recorded ``open`` counts in every window
    until :meth:`close` says the peer answered it. Whatever instant the peer stamps it at,
    between our write and its answer, every window that instant can fall in then counts it: a
    new send at ``t`` is admitted only if what still counts, what is open and itself fit in
    ``limit``, and every send stamped in a window ``[t0, t0 + span)`` is among those for the last
    send of it. So a peer that stalls and then reads a backlog at once sees no window above the
    limit: its answers come late and hold the sends after them back.

    Once answered, a send counts until ``span`` after its answer, less the shortest delay of
    the answers of the last ``FLOOR_SPAN`` seconds beyond ``FLOOR_SLACK`` (in the first
    ``FLOOR_AFTER`` seconds of answers it counts whole: no steady delay is known yet). Counted
    whole, a steady delay would cost throughput (a peer 50 ms away would get 95% of the limit),
    yet it moves every stamp alike and bunches none: the network's round trip and the peer's
    usual handling are left out, what a stall adds is counted. This reads each stamp as
    lagging its write by that shortest delay less the answer's way back; ``FLOOR_SLACK`` of it
    stays counted for stamps that come sooner by the jitter of that delay (a peer on this
    machine, a few ms away, is thus counted whole). Where every send is counted so, the
    spacing has nothing left to guard against and may be turned off (``ahead_share=None``):
    what a stall of our own held back may then go as soon as the window has room, and the
    stall costs no throughput.
    Pure: the caller passes the time."""

    def __init__(self, limit: float, span: float = 1.0, *, ahead_share: float | None = AHEAD_SHARE) -> None:
        if limit <= 0 or span <= 0:
            raise ValueError("limit and span must be positive")
        self.limit = float(limit)
        self.span = float(span)
        self._ahead = ahead_share
        # [sent at, tokens, counted until - span]: the send time, the answer's when closed,
        # infinity while open. In the order sent.
        self._sent: deque[list[float]] = deque()
        self._total = 0.0
        self._open = 0
        self._next = float("-inf")  # when the sends so far, spaced at the rate, are through
        self._floors: deque[tuple[float, float]] = deque()  # (answered at, delay): recent minimum
        self._first: float | None = None  # the first answer

    def _expire(self, now: float) -> None:
        """Forget the sends at the front that count no more (one still open there keeps those
        behind it: :meth:`delay` knows they are free)."""
        while self._sent and self._sent[0][2] <= now - self.span:
            self._total -= self._sent.popleft()[1]

    def delay(self, n: float, now: float) -> float:
        """Seconds until ``n`` more tokens may be sent (0: now; infinity: not before an open
        send is closed). A send larger than ``limit`` waits for an empty window and then goes
        alone."""
        self._expire(now)
        spacing = -INF if self._ahead is None else \
            self._next - max(n, self.limit * self._ahead) * self.span / self.limit - now
        excess = self._total + n - self.limit if n <= self.limit else self._total
        if excess <= 0:
            return max(spacing, 0.0) + (1e-6 if spacing > 0 else 0.0)
        # Sends leave the window ``span`` after they are counted until, in that order; with
        # none open that is the order sent.
        leaving = ((until, count) for _, count, until in self._sent) if not self._open else \
            sorted((until, count) for _, count, until in self._sent)
        freed = 0.0
        for until, count in leaving:
            if until == INF:
                return INF
            freed += count
            if freed >= excess - 1e-9:
                return max(until + self.span - now, spacing, 0.0) + 1e-6
        raise AssertionError("unreachable: the window holds what it recorded")

    def add(self, n: float, now: float, *, open: bool = False) -> list[float]:
        """Record ``n`` tokens sent at ``now`` (not before the last one recorded). ``open``:
        the send counts until :meth:`close` is called with what this returns."""
        self._expire(now)
        entry = [now, float(n), INF if open else now]
        self._sent.append(entry)
        self._total += n
        self._open += open
        self._next = max(self._next, now) + n * self.span / self.limit
        return entry

    def close(self, entry: list[float], now: float) -> None:
        """The peer answered the open send ``entry`` at ``now`` (idempotent). It counts on until
        ``span`` after the answer, less the shortest recent delay beyond ``FLOOR_SLACK`` (see
        the class docstring)."""
        if entry[2] != INF:
            return
        delay = max(0.0, now - entry[0])
        floors = self._floors
        while floors and floors[-1][1] >= delay:  # a sliding minimum: increasing delays
            floors.pop()
        floors.append((now, delay))
        while floors[0][0] <= now - FLOOR_SPAN:
            floors.popleft()
        if self._first is None:
            self._first = now
        floor = floors[0][1] if now - self._first >= FLOOR_AFTER else 0.0  # no steady delay known yet
        entry[2] = now - max(0.0, floor - FLOOR_SLACK)
        self._open -= 1

    @property
    def open(self) -> int:
        """Sends not answered yet."""
        return self._open

    def in_window(self, now: float) -> float:
        """Tokens that count in the window ending at ``now``."""
        self._expire(now)
        if not self._open:
            return self._total
        return sum(count for _, count, until in self._sent if until > now - self.span)


class Pacer:
    """A :class:`TokenBucket` (the pace) and a :class:`SendWindow` of ``window_share`` × the rate
    (the guarantee at the peer), behind one awaitable: ``await pacer.pace(n)`` returns when
    ``n`` tokens may be sent; send right after it, with no await in between."""

    @classmethod
    def for_rate(cls, rate_per_s: float, burst: float, *, mean_share: float = DEFAULT_MEAN_SHARE,
                 window_share: float = DEFAULT_WINDOW_SHARE, ahead_share: float | None = AHEAD_SHARE,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> Pacer:
        """A pacer whose mean is ``mean_share`` × the rate (98.8%: within the 2% target) with
        sends of up to ``burst`` tokens, and whose 1-second windows stay under ``window_share``
        × the rate (99.3%)."""
        if rate_per_s and burst >= rate_per_s:
            burst = rate_per_s * DEFAULT_BURST_SHARE
        bucket = TokenBucket(rate_per_s, burst, clock=clock, mean_share=mean_share)
        return cls(bucket, window_share=window_share, ahead_share=ahead_share, clock=clock, sleep=sleep)

    @classmethod
    def till_answered(cls, rate_per_s: float, burst: float, *,
                      clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> Pacer:
        """A pacer for a sender that admits every send with ``answered=False`` and reports each
        answer (SMTP's DATA, SMPP's submit_sm_resp): its log holds the rate with no spacing
        (see :class:`SendWindow`), so a stall of ours is made up as soon as the window has
        room."""
        # The bucket may bank CATCH_UP seconds of tokens: what a stall of ours held back then
        # goes once it ends (the log still caps every second), where a small bucket loses it.
        bucket = TokenBucket(rate_per_s, max(burst, rate_per_s * CATCH_UP) if rate_per_s else 0.0,
                             clock=clock, mean_share=1.0)
        return cls(bucket, window_share=1.0, ahead_share=None, clock=clock, sleep=sleep)

    def __init__(self, bucket: TokenBucket, *, window_share: float = DEFAULT_WINDOW_SHARE,
                 ahead_share: float | None = AHEAD_SHARE,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        if not 0 < window_share <= 1:
            raise ValueError("window_share must be in (0, 1]")
        self.bucket = bucket
        self._share = window_share
        self._ahead = ahead_share
        self._clock = clock
        self._sleep = sleep
        self.window = self._new_window()
        self._answer = asyncio.Event()  # set when an open send is answered

    def _new_window(self) -> SendWindow | None:
        rate = self.bucket.rate_per_s
        return SendWindow(rate * self._share, ahead_share=self._ahead) if rate else None

    @property
    def unlimited(self) -> bool:
        return self.bucket.unlimited

    def set_rate(self, rate_per_s: float, burst: float | None = None) -> None:
        """Change the rate; what was sent in the last second still counts (open sends as if
        answered now: their tickets close them in the old window)."""
        old = self.window
        self.bucket.set_rate(rate_per_s, burst)
        self.window = self._new_window()
        if old is not None and self.window is not None:
            now = self._clock()
            self.window.add(old.in_window(now), now)

    async def pace(self, n: float) -> float:
        """Wait until ``n`` tokens may be sent and record them as sent; returns the wait."""
        if self.bucket.unlimited:
            return 0.0
        start = self._clock()
        await self.reserve(n)
        await self.admit(n)
        return self._clock() - start

    async def reserve(self, n: float) -> None:
        """The bucket's part alone: wait until ``n`` tokens fall due (then :meth:`admit` them
        right before the send, when something is done in between, e.g. SMTP's RCPT TOs)."""
        if not self.bucket.unlimited:
            delay = self.bucket.take(n)
            if delay > 0:
                await self._sleep(delay)

    async def admit(self, n: float, *, answered: bool = True) -> Ticket | None:
        """The send log's part alone: wait until ``n`` tokens fit in the last second of sends,
        and record them as sent now. ``answered=False``: the send counts until the peer's
        answer, which the caller reports with :meth:`answered` and the ticket returned (see
        :class:`SendWindow`); that is how SMTP's DATA and SMPP's submit_sm are counted, as the
        peer stamps them somewhere between our write and its answer."""
        window = self.window
        while window is not None and not self.bucket.unlimited:
            wait = window.delay(n, self._clock())
            if wait <= 0:
                entry = window.add(n, self._clock(), open=not answered)
                return None if answered else Ticket(window, entry)
            if wait == INF:  # only an answer can make room
                self._answer.clear()
                await self._answer.wait()
            else:
                await self._sleep(wait)
            window = self.window
        return None

    def answered(self, ticket: Ticket | None) -> None:
        """The peer answered the send of ``ticket`` (None: nothing to do). Call it whatever
        the answer, a failure or a lost connection included, else the window stays full."""
        if ticket is not None:
            ticket.window.close(ticket.entry, self._clock())
            self._answer.set()


@dataclass(frozen=True, slots=True)
class Ticket:
    """An open send in a :class:`SendWindow`, as :meth:`Pacer.admit` recorded it."""

    window: SendWindow
    entry: list[float]
