"""E-mail providers: SMTP through a small pool of aiosmtplib connections, and a simulator.

**One message, many recipients.** Alert content is identical per language, so
:meth:`SmtpProvider.send` takes the already-rendered bytes (see
:mod:`hub.outputs.email_render`) and a list of recipients, and sends one SMTP transaction
per batch of at most ``batch_size`` recipients (``MAIL FROM``, one ``RCPT TO`` each,
``DATA``). Batches of one call go out concurrently, one per pooled connection.

**Outcomes.** Every recipient gets exactly one :class:`Outcome`, in the order given:

* ``RCPT TO`` refused with 5xx: that recipient fails permanently with the server's reply;
  4xx: that recipient is transient. The rest of the batch goes on.
* ``452 4.5.3`` (too many recipients) once some were accepted is the server's limit per
  message (RFC 5321 §4.5.3.1.10), no failure: the message goes to those accepted and the rest
  of the batch in the next transaction at once; later batches are cut to that limit.
* ``MAIL FROM`` or ``DATA`` refused (including 451 after the message): every recipient still
  in the transaction is transient for 4xx, permanent for 5xx.
* Connection lost, refused or timed out, or a 421 (the server closing): every recipient of
  the batch not already refused is transient, and the connection is reopened on next use.
  A connection lost after the message was sent but before the reply may have delivered it;
  SMTP cannot tell (RFC 1047), so it is retried, and a recipient may rarely get it twice.

Transient outcomes carry ``retry_after`` (a setting); the retry policy belongs to the worker.

**Setup errors are raised, not reported per recipient.** A refused AUTH or an unusable
STARTTLS says the settings are wrong, not the recipients: :class:`SmtpAuthError` /
:class:`SmtpSetupError` (both :class:`~hub.errors.DeliveryError`) come out of
:meth:`SmtpProvider.open` and :meth:`SmtpProvider.send`, ``permanent`` for a 5xx reply. Should
one batch of a ``send`` hit such an error while others went out, the delivered outcomes are
kept and that batch's recipients carry the error as their outcome instead.

**Rate.** With a :class:`~hub.outputs.ratelimit.TokenBucket`, the provider acquires tokens
before each group of at most ``burst`` ``RCPT TO`` (see :mod:`hub.outputs.ratelimit`); a
bucket of rate 0 costs nothing. Or ``send(..., pacer=)``, the worker's
:class:`~hub.outputs.ratelimit.Pacer`: each transaction reserves its recipients before it
takes a connection (the pace) and is admitted by the pacer's send log right before DATA, with
the recipients accepted, and counted in the send log until the server's reply to DATA, so that
no second carries more than the rate where the server counts (a message is only delivered at
DATA, and a server that stalls answers late: the sends after it wait).

Addresses are never logged: the log names the server, batch sizes and reply codes only; a
recipient's address echoed in a server's reply is replaced by ``recipient`` in ``reason``,
and :class:`Outcome` leaves the recipient out of its repr.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import aiosmtplib
from aiosmtplib.email import quote_address

from hub.errors import DeliveryError
from hub.outputs.ratelimit import Pacer, TokenBucket, acquire

log = logging.getLogger(__name__)


Security = Literal["none", "starttls", "tls"]


@dataclass(slots=True)
class Outcome:
    """What happened to one recipient of a message. ``reason`` is the server's reply
    (``"550 5.1.1 no such user"``) or what went wrong; empty when ``ok``. Not frozen: one is
    built per recipient, and a frozen dataclass's ``__init__`` costs several times more."""

    recipient: str = field(repr=False)  # kept out of reprs, hence out of logs
    ok: bool
    permanent: bool = False
    reason: str = ""
    retry_after: float | None = None

    @classmethod
    def delivered(cls, recipient: str) -> Outcome:
        return cls(recipient, True)

    @classmethod
    def failed(cls, recipient: str, reason: str, *, permanent: bool,
               retry_after: float | None = None) -> Outcome:
        return cls(recipient, False, permanent, reason, None if permanent else retry_after)

    def error(self) -> DeliveryError | None:
        """The failure as a :class:`DeliveryError`, or None when delivered."""
        if self.ok:
            return None
        return DeliveryError(self.reason, permanent=self.permanent, retry_after=self.retry_after)


class EmailProvider(Protocol):
    """What the e-mail worker needs from a provider."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, message_bytes: bytes, sender: str, recipients: Sequence[str]) -> list[Outcome]:
        """One outcome per recipient, in order."""
        ...


class SmtpSetupError(DeliveryError):
    """The SMTP session could not be set up as configured (STARTTLS, AUTH)."""


class SmtpAuthError(SmtpSetupError):
    """The server refused our AUTH: the username or password setting is wrong."""


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """How to reach the SMTP relay. ``security``: ``"none"``, ``"starttls"`` (required, port
    587) or ``"tls"`` (implicit TLS, port 465). AUTH is used when ``username`` is set."""

    host: str = "localhost"
    port: int = 25
    security: Security = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    pool_size: int = 4
    batch_size: int = 500
    timeout: float = 30.0
    retry_after: float = 60.0
    validate_certs: bool = True
    cert_bundle: str | None = None
    local_hostname: str | None = None

    def __post_init__(self) -> None:
        if self.security not in ("none", "starttls", "tls"):
            raise ValueError(f"unknown SMTP security {self.security!r}")
        if self.pool_size < 1 or self.batch_size < 1:
            raise ValueError("pool_size and batch_size must be at least 1")
        if self.timeout <= 0 or self.retry_after < 0:
            raise ValueError("timeout must be positive and retry_after not negative")

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"


class _Lost(Exception):
    """The connection is gone (or must be dropped); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}".strip()


def _too_many_recipients(exc: aiosmtplib.SMTPResponseException) -> bool:
    """The server's limit of recipients per message (RFC 5321 §4.5.3.1.10: 452, enhanced code
    4.5.3), not a 452 about this one mailbox (4.2.2 mailbox full) or the server's storage."""
    text = exc.message.lower()
    return exc.code == 452 and (text.startswith("4.5.3") or "too many recipients" in text)


def _redact(reason: str, address: str) -> str:
    """The reply without the recipient's address (servers often echo it): reasons end up in
    the store and in logs, addresses must not."""
    return re.sub(re.escape(address), "recipient", reason, flags=re.IGNORECASE) if address else reason


class SmtpProvider:
    """SMTP over up to ``pool_size`` connections, opened lazily and reopened after a loss."""

    def __init__(self, settings: SmtpSettings, *, bucket: TokenBucket | None = None) -> None:
        self.settings = settings
        self.bucket = bucket
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP | None] = asyncio.LifoQueue()
        for _ in range(settings.pool_size):
            self._idle.put_nowait(None)  # a free slot, not yet connected
        self._closed = False
        # Recipients per message the server takes, once it said so (452 4.5.3): batches are
        # cut to it from then on rather than refused past it every time.
        self.rcpt_limit: int | None = None

    async def __aenter__(self) -> SmtpProvider:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect (and log in) every pool slot now, so bad settings show at start-up.
        Raises :class:`SmtpSetupError` / :class:`SmtpAuthError`, or a transient
        :class:`DeliveryError` if the server cannot be reached."""
        self._closed = False
        slots = [await self._idle.get() for _ in range(self.settings.pool_size)]
        try:
            for i, client in enumerate(slots):
                if client is None:
                    try:
                        slots[i] = await self._connect()
                    except _Lost as exc:
                        raise DeliveryError(f"SMTP {self.settings.server}: {exc.reason}", permanent=False,
                                            retry_after=self.settings.retry_after) from exc
        finally:
            for client in slots:
                self._idle.put_nowait(client)

    async def close(self) -> None:
        """Say QUIT on every idle connection. Call once no send is running."""
        self._closed = True
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client is not None and client.is_connected:
                try:
                    await client.quit(timeout=2)
                except (aiosmtplib.SMTPException, OSError):
                    client.close()
        for _ in range(self.settings.pool_size):
            self._idle.put_nowait(None)

    async def _connect(self) -> aiosmtplib.SMTP:
        """A new connected, logged-in client. Raises _Lost (transient) or SmtpSetupError."""
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.host, port=s.port, timeout=s.timeout, use_tls=s.security == "tls",
            start_tls=s.security == "starttls", validate_certs=s.validate_certs,
            cert_bundle=s.cert_bundle, local_hostname=s.local_hostname,
        )
        try:
            await client.connect()
            if s.username is not None:
                await client.login(s.username, s.password or "")
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            raise SmtpAuthError(f"SMTP {s.server} refused AUTH for user {s.username!r}: {_reply(exc)}",
                                permanent=exc.code >= 500,
                                retry_after=None if exc.code >= 500 else s.retry_after) from exc
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError,
                aiosmtplib.SMTPTimeoutError, OSError) as exc:
            client.close()
            raise _Lost(f"connection failed: {exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            if exc.code == 421 or exc.code < 500:
                raise _Lost(f"session refused: {_reply(exc)}") from exc
            raise SmtpSetupError(f"SMTP {s.server} refused the session: {_reply(exc)}",
                                 permanent=True) from exc
        except aiosmtplib.SMTPException as exc:  # AUTH or STARTTLS not offered, and the like
            client.close()
            raise SmtpSetupError(f"SMTP {s.server}: {exc}", permanent=True) from exc
        return client

    async def send(self, message_bytes: bytes, sender: str, recipients: Sequence[str], *,
                   pacer: Pacer | None = None) -> list[Outcome]:
        """Send ``message_bytes`` to every recipient, ``batch_size`` RCPT TO per transaction;
        one outcome per recipient, in order. See the module docstring for the mapping. With a
        ``pacer``, each transaction reserves its recipients before MAIL FROM and is admitted
        right before DATA (see :class:`~hub.outputs.ratelimit.Pacer`)."""
        if self._closed:
            raise RuntimeError("provider is closed")
        size = min(self.settings.batch_size, self.rcpt_limit or self.settings.batch_size)
        batches = [recipients[i:i + size] for i in range(0, len(recipients), size)]
        results = await asyncio.gather(*(self._send_batch(message_bytes, sender, b, pacer) for b in batches),
                                       return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, DeliveryError):
                raise r
        errors = [r for r in results if isinstance(r, DeliveryError)]
        if errors and len(errors) == len(results):
            raise errors[0]
        # Some batches went out: their outcomes must not be lost, so a batch that hit a setup
        # error reports it per recipient instead.
        out: list[Outcome] = []
        for b, r in zip(batches, results, strict=True):
            if isinstance(r, DeliveryError):
                out += [Outcome.failed(rcpt, r.reason, permanent=r.permanent, retry_after=r.retry_after)
                        for rcpt in b]
            else:
                assert not isinstance(r, BaseException)
                out += r
        return out

    async def _send_batch(self, message: bytes, sender: str, recipients: Sequence[str],
                          pacer: Pacer | None) -> list[Outcome]:
        if pacer is not None:
            await pacer.reserve(len(recipients))  # before taking a connection: none waits idle
        out: list[Outcome] = []
        while recipients:  # more than one transaction when the server limits recipients per message
            outcomes, recipients = await self._on_a_connection(message, sender, recipients, pacer)
            out += outcomes
        return out

    async def _on_a_connection(self, message: bytes, sender: str, recipients: Sequence[str],
                               pacer: Pacer | None) -> tuple[list[Outcome], Sequence[str]]:
        """One transaction on a pooled connection: the outcomes of the recipients it took, in
        order, and those it left for another (past the server's limit per message)."""
        client = await self._idle.get()
        try:
            for attempt in (1, 2):
                reused = client is not None and client.is_connected
                if client is None or not reused:
                    try:
                        client = await self._connect()
                    except _Lost as exc:
                        client = None
                        log.warning("SMTP %s: %s; %d recipients transient",
                                    self.settings.server, exc.reason, len(recipients))
                        return [self._transient(r, exc.reason) for r in recipients], ()
                try:
                    outcomes, keep, taken = await self._transaction(client, message, sender, recipients,
                                                                    pacer)
                except _Stale:
                    # An idle connection the server had dropped: nothing was sent, so reconnect
                    # once before calling the batch lost.
                    client.close()
                    client = None
                    if reused and attempt == 1:
                        continue
                    reason = "connection lost before MAIL FROM"
                    return [self._transient(r, reason) for r in recipients], ()
                if not keep:
                    client.close()
                    client = None
                return outcomes, recipients[taken:]
            raise AssertionError("unreachable")
        except BaseException:
            if client is not None:
                client.close()
                client = None
            raise
        finally:
            self._idle.put_nowait(client)

    def _transient(self, recipient: str, reason: str) -> Outcome:
        return Outcome.failed(recipient, reason, permanent=False, retry_after=self.settings.retry_after)

    def _by_code(self, recipient: str, code: int, reason: str) -> Outcome:
        return Outcome.failed(recipient, reason, permanent=code >= 500,
                              retry_after=self.settings.retry_after)

    async def _transaction(self, client: aiosmtplib.SMTP, message: bytes, sender: str,
                           recipients: Sequence[str], pacer: Pacer | None = None,
                           ) -> tuple[list[Outcome], bool, int]:
        """One MAIL/RCPT.../DATA on ``client``: the outcomes of the first ``taken`` recipients
        (all, unless the server's limit per message left the rest for another transaction),
        whether to keep the connection, and ``taken``. Raises _Stale if the connection turns
        out dead before anything was sent."""
        refused: dict[int, Outcome] = {}
        taken = len(recipients)
        try:
            encoding = await self._mail_from(client, sender, recipients)
            accepted, taken = await self._rcpt_to(client, recipients, encoding, refused)
            if accepted:
                ticket = await pacer.admit(accepted, answered=False) if pacer is not None else None
                try:
                    await client.data(message)
                except aiosmtplib.SMTPDataError as exc:
                    raise _Refused(exc) from exc
                finally:  # the server stamps DATA somewhere before its reply: counted till then
                    if pacer is not None:
                        pacer.answered(ticket)
            else:
                await self._rset(client)
        except _Refused as exc:
            log.warning("SMTP %s: transaction refused with %d; %d recipients %s", self.settings.server,
                        exc.code, len(recipients) - len(refused),
                        "permanent" if exc.code >= 500 else "transient")
            keep = exc.code != 421 and client.is_connected and await self._rset(client)
            return [refused.get(i) or self._by_code(r, exc.code, exc.reason)
                    for i, r in enumerate(recipients[:taken])], keep, taken
        except _Lost as exc:
            return self._lost(recipients[:taken], refused, exc.reason), False, taken
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            return self._lost(recipients[:taken], refused, f"connection lost: {exc}"), False, taken
        except aiosmtplib.SMTPResponseException as exc:  # an unexpected reply: start afresh
            return self._lost(recipients[:taken], refused, f"unexpected reply: {_reply(exc)}"), False, taken
        if refused:
            log.info("SMTP %s: %d of %d recipients refused", self.settings.server, len(refused), taken)
        return [refused.get(i) or Outcome.delivered(r) for i, r in enumerate(recipients[:taken])], True, taken

    @staticmethod
    async def _mail_from(client: aiosmtplib.SMTP, sender: str, recipients: Sequence[str]) -> str:
        """MAIL FROM, with SMTPUTF8 when an address needs it and the server offers it; returns
        the encoding for RCPT TO."""
        utf8 = not (sender.isascii() and all(r.isascii() for r in recipients))
        try:
            if utf8 and client.is_ehlo_or_helo_needed:
                await client.ehlo()  # to see whether SMTPUTF8 is offered
            if utf8 and client.supports_extension("smtputf8"):
                await client.mail(sender, options=["SMTPUTF8"], encoding="utf-8")
                return "utf-8"
            await client.mail(sender)
            return "ascii"
        except aiosmtplib.SMTPSenderRefused as exc:
            if exc.code == 421:
                raise _Lost(f"connection closed by server: {_reply(exc)}") from exc
            raise _Refused(exc) from exc
        except (aiosmtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Stale() from exc

    async def _rcpt_to(self, client: aiosmtplib.SMTP, recipients: Sequence[str], encoding: str,
                       refused: dict[int, Outcome]) -> tuple[int, int]:
        """RCPT TO each recipient, recording refusals in ``refused``; returns how many were
        accepted and how many were taken: all, unless the server said it takes no more
        recipients in this message (452 4.5.3 once some were accepted: RFC 5321 §4.5.3.1.10),
        the rest then going in another. Takes rate-limit tokens before each group of
        ``burst`` recipients."""
        bucket = self.bucket if self.bucket is not None and not self.bucket.unlimited else None
        step = max(1, int(bucket.burst)) if bucket is not None else 0
        accepted = 0
        for i, rcpt in enumerate(recipients):
            if bucket is not None and i % step == 0:
                await acquire(bucket, min(step, len(recipients) - i))
            try:
                await _rcpt(client, rcpt, encoding)
                accepted += 1
            except aiosmtplib.SMTPRecipientRefused as exc:
                if exc.code == 421 or not client.is_connected:
                    raise _Lost(f"connection closed by server: {_redact(_reply(exc), rcpt)}") from exc
                if accepted and _too_many_recipients(exc):
                    if self.rcpt_limit is None or accepted < self.rcpt_limit:
                        self.rcpt_limit = accepted
                        log.info("SMTP %s takes %d recipients per message; batches cut to that",
                                 self.settings.server, accepted)
                    return accepted, i
                refused[i] = self._by_code(rcpt, exc.code, _redact(_reply(exc), rcpt))
            except ValueError:  # not encodable (no SMTPUTF8) or not an address at all
                refused[i] = Outcome.failed(rcpt, "address cannot be sent to this server", permanent=True)
        return accepted, len(recipients)

    def _lost(self, recipients: Sequence[str], refused: dict[int, Outcome], reason: str) -> list[Outcome]:
        log.warning("SMTP %s: %s; %d recipients transient", self.settings.server, reason,
                    len(recipients) - len(refused))
        return [refused.get(i) or self._transient(r, reason) for i, r in enumerate(recipients)]

    @staticmethod
    async def _rset(client: aiosmtplib.SMTP) -> bool:
        """Reset the envelope; False if the connection is no good any more."""
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError):
            return False
        return True


# A plain address needs no parsing: aiosmtplib's rcpt() runs email.utils.parseaddr on each
# recipient, a third of the CPU an alert's 500-recipient transaction costs here.
_PLAIN = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+")


async def _rcpt(client: aiosmtplib.SMTP, recipient: str, encoding: str) -> None:
    """``client.rcpt(recipient)``, parsing only what is not a plain address."""
    quoted = f"<{recipient}>" if _PLAIN.fullmatch(recipient) else quote_address(recipient)
    response = await client.execute_command(b"RCPT", b"TO:" + quoted.encode(encoding))
    if response.code not in (250, 251):
        raise aiosmtplib.SMTPRecipientRefused(response.code, response.message, recipient)


class _Stale(Exception):
    """The connection was dead before MAIL FROM: nothing was sent."""


class _Refused(Exception):
    """MAIL FROM or DATA was refused: it applies to every recipient still in the batch."""

    def __init__(self, exc: aiosmtplib.SMTPResponseException) -> None:
        super().__init__(_reply(exc))
        self.code = exc.code
        self.reason = _reply(exc)


class SimulatorEmailProvider:
    """Sends nothing; reports outcomes as a real relay might.

    Each recipient is delivered with probability ``delivery_ratio``; a failure is permanent
    (``550 5.1.1``) with probability ``permanent_share`` and transient (``451 4.3.0``)
    otherwise. Each batch of ``batch_size`` takes a latency drawn uniformly from ``latency``
    (seconds). ``seed`` makes the draws repeatable; ``sleep`` is injectable for tests.
    """

    def __init__(self, *, delivery_ratio: float = 0.98, permanent_share: float = 0.5,
                 latency: tuple[float, float] = (0.0, 0.0), batch_size: int = 500,
                 retry_after: float = 60.0, seed: int | None = None,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        if not 0 <= delivery_ratio <= 1 or not 0 <= permanent_share <= 1:
            raise ValueError("delivery_ratio and permanent_share must be in [0, 1]")
        if not 0 <= latency[0] <= latency[1]:
            raise ValueError("latency must be (low, high) with 0 <= low <= high")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.delivery_ratio, self.permanent_share = delivery_ratio, permanent_share
        self.latency, self.batch_size, self.retry_after = latency, batch_size, retry_after
        self._random = random.Random(seed)
        self._sleep = sleep
        self.messages = 0  # transactions "sent", for tests and the simulation's counters

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def send(self, message_bytes: bytes, sender: str, recipients: Sequence[str]) -> list[Outcome]:
        """One simulated outcome per recipient, in order."""
        out: list[Outcome] = []
        rnd = self._random
        for start in range(0, len(recipients), self.batch_size):
            batch = recipients[start:start + self.batch_size]
            delay = rnd.uniform(*self.latency)
            if delay > 0:
                await self._sleep(delay)
            self.messages += 1
            for rcpt in batch:
                if rnd.random() < self.delivery_ratio:
                    out.append(Outcome.delivered(rcpt))
                elif rnd.random() < self.permanent_share:
                    out.append(Outcome.failed(rcpt, "550 5.1.1 simulated: mailbox unavailable",
                                              permanent=True))
                else:
                    out.append(Outcome.failed(rcpt, "451 4.3.0 simulated: try again later",
                                              permanent=False, retry_after=self.retry_after))
        return out
