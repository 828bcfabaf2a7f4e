"""The SMTP provider against a real aiosmtpd server on 127.0.0.1, and the simulator provider."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import socket
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, Session

from hub.errors import DeliveryError
from hub.outputs.email_smtp import (
    Outcome,
    SimulatorEmailProvider,
    SmtpAuthError,
    SmtpProvider,
    SmtpSettings,
)
from hub.outputs.ratelimit import Pacer, TokenBucket

SENDER = "no-reply@be-alert.be"
MESSAGE = (b"From: no-reply@be-alert.be\r\nSubject: [Severe] Test\r\nAuto-Submitted: auto-generated\r\n"
           b"\r\nStay inside.\r\n.leading dot\r\n")


def rcpts(n: int) -> list[str]:
    return [f"user{i:05d}@example.org" for i in range(n)]


@dataclass
class Sink:
    """An aiosmtpd handler that records what it accepts and misbehaves on request."""

    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> reply to its RCPT TO
    data_replies: list[str] = field(default_factory=list)  # replies to the next DATAs, then 250
    drop_after_rcpts: int | None = None  # abort the connection at this RCPT TO
    close_after_data: bool = False
    rcpt_seen: int = 0
    mail_reply: str | None = None  # reply to MAIL FROM instead of 250
    max_rcpts: int | None = None  # recipients per message, then 452 (RFC 5321 §4.5.3.1.10)
    too_many: int = 0  # 452s said for that limit
    port: int = 0

    async def handle_MAIL(self, server: Any, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        if self.mail_reply is not None:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        self.rcpt_seen += 1
        if self.drop_after_rcpts is not None and self.rcpt_seen == self.drop_after_rcpts:
            server.transport.abort()
            return "250 OK"
        if address in self.refuse:
            return self.refuse[address]
        if self.max_rcpts is not None and len(envelope.rcpt_tos) >= self.max_rcpts:
            self.too_many += 1
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.data_replies:
            return self.data_replies.pop(0)
        assert envelope.mail_from is not None and isinstance(envelope.original_content, bytes)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        if self.close_after_data:
            server.loop.call_later(0.05, server.transport.close)
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(sink: Sink, **kw: Any) -> Controller:
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), **kw)
    controller.start()
    return controller


@pytest.fixture
def sink() -> Iterator[Sink]:
    handler = Sink()
    controller = start(handler)
    handler.port = controller.port
    yield handler
    controller.stop()


def provider(sink: Sink, **kw: Any) -> SmtpProvider:
    settings: dict[str, Any] = {"pool_size": 2, "timeout": 5, "retry_after": 30, **kw}
    return SmtpProvider(SmtpSettings(host="127.0.0.1", port=sink.port, **settings))


def hub_log(caplog: pytest.LogCaptureFixture) -> str:
    """What our own loggers wrote (aiosmtpd's mail.log does print addresses)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("hub."))


def parsed(raw: bytes) -> email.message.Message:
    return email.message_from_bytes(raw, policy=email.policy.default)


async def test_one_message_many_rcpt(sink: Sink) -> None:
    async with provider(sink) as smtp:
        outcomes = await smtp.send(MESSAGE, SENDER, rcpts(3))
    assert outcomes == [Outcome.delivered(r) for r in rcpts(3)]
    assert [o.recipient for o in outcomes] == rcpts(3)
    assert len(sink.received) == 1
    mail_from, tos, raw = sink.received[0]
    assert mail_from == SENDER and tos == rcpts(3)
    assert parsed(raw)["Subject"] == "[Severe] Test"
    assert b"\r\n.leading dot\r\n" in raw  # dot-stuffing undone by the server


async def test_rendered_mime_arrives_whole(sink: Sink) -> None:
    from tests.outputs.test_email_render import SIGNED, render  # the same alert as the render tests

    raw = render(index=1).as_bytes()
    async with provider(sink) as smtp:
        assert all(o.ok for o in await smtp.send(raw, SENDER, rcpts(2)))
    msg = parsed(sink.received[0][2])
    assert msg["Subject"] == "[Sévère] Inondation à Liège"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert "To" not in msg
    cap = next(p for p in msg.iter_attachments())  # type: ignore[attr-defined]
    assert cap.get_content_type() == "application/cap+xml" and cap.get_content() == SIGNED


async def test_batches_of_batch_size_in_order(sink: Sink) -> None:
    async with provider(sink, batch_size=500) as smtp:
        outcomes = await smtp.send(MESSAGE, SENDER, rcpts(1200))
    assert [o.recipient for o in outcomes] == rcpts(1200) and all(o.ok for o in outcomes)
    assert sorted(len(tos) for _, tos, _ in sink.received) == [200, 500, 500]
    assert sorted(r for _, tos, _ in sink.received for r in tos) == rcpts(1200)


async def test_a_servers_limit_on_recipients_splits_the_batch(sink: Sink) -> None:
    """RFC 5321 §4.5.3.1.10: a server that takes at most N recipients per message answers 452
    to the next RCPT TO. The rest of the batch goes in the next transaction at once, not as
    failures to retry later, and the limit is kept: later batches are cut to N from the start."""
    sink.max_rcpts = 10
    async with provider(sink, batch_size=500, pool_size=1) as smtp:
        outcomes = await smtp.send(MESSAGE, SENDER, rcpts(25))
        assert [o.recipient for o in outcomes] == rcpts(25) and all(o.ok for o in outcomes)
        assert [len(tos) for _, tos, _ in sink.received] == [10, 10, 5]
        assert sink.too_many == 2
        outcomes = await smtp.send(MESSAGE, SENDER, rcpts(25))
    assert all(o.ok for o in outcomes) and sink.too_many == 2  # no 452 any more
    assert sorted(r for _, tos, _ in sink.received for r in tos) == sorted(rcpts(25) * 2)


async def test_452_to_the_first_recipient_is_transient_for_the_batch(sink: Sink) -> None:
    """452 before any recipient was taken is the server short of storage, not a limit."""
    sink.max_rcpts = 0
    async with provider(sink) as smtp:
        outcomes = await smtp.send(MESSAGE, SENDER, rcpts(3))
    assert [(o.ok, o.permanent) for o in outcomes] == [(False, False)] * 3
    assert outcomes[0].reason == "452 4.5.3 Too many recipients" and not sink.received


async def test_452_for_one_full_mailbox_is_no_limit(sink: Sink) -> None:
    sink.refuse[rcpts(3)[1]] = "452 4.2.2 Mailbox full"
    async with provider(sink) as smtp:
        outcomes = await smtp.send(MESSAGE, SENDER, rcpts(3))
        assert smtp.rcpt_limit is None
    assert [o.ok for o in outcomes] == [True, False, True] and not outcomes[1].permanent
    assert [tos for _, tos, _ in sink.received] == [[rcpts(3)[0], rcpts(3)[2]]]


async def test_550_for_one_recipient_in_500(sink: Sink, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hub")
    bad = rcpts(500)[137]
    sink.refuse[bad] = "550 5.1.1 <user00137@example.org>: mailbox unavailable"
    async with provider(sink) as smtp:
        outcomes = await smtp.send(MESSAGE, SENDER, rcpts(500))
    failed = [o for o in outcomes if not o.ok]
    assert len(failed) == 1 and failed[0].recipient == bad
    assert failed[0].permanent and failed[0].retry_after is None
    assert failed[0].reason == "550 5.1.1 <recipient>: mailbox unavailable"  # address redacted
    err = failed[0].error()
    assert isinstance(err, DeliveryError) and err.permanent
    assert len(sink.received) == 1  # the other 499 in one message
    assert len(sink.received[0][1]) == 499 and bad not in sink.received[0][1]
    assert hub_log(caplog) and "example.org" not in hub_log(caplog)  # addresses are never logged
    assert "example.org" not in repr(failed[0])


async def test_4xx_on_rcpt_is_transient_for_that_recipient(sink: Sink) -> None:
    sink.refuse[rcpts(3)[1]] = "450 4.2.1 mailbox busy"
    async with provider(sink) as smtp:
        outcomes = await smtp.send(MESSAGE, SENDER, rcpts(3))
    assert [o.ok for o in outcomes] == [True, False, True]
    assert not outcomes[1].permanent and outcomes[1].retry_after == 30
    assert outcomes[1].reason == "450 4.2.1 mailbox busy"


async def test_451_on_data_then_accepts(sink: Sink) -> None:
    sink.data_replies = ["451 4.3.0 try again later"]
    async with provider(sink) as smtp:
        first = await smtp.send(MESSAGE, SENDER, rcpts(50))
        assert all(not o.ok and not o.permanent and o.retry_after == 30 for o in first)
        assert all(o.reason == "451 4.3.0 try again later" for o in first)
        assert sink.received == []
        second = await smtp.send(MESSAGE, SENDER, rcpts(50))
    assert all(o.ok for o in second)
    assert len(sink.received) == 1 and sink.received[0][1] == rcpts(50)


async def test_5xx_on_data_fails_all_but_the_refused_keep_their_reason(sink: Sink) -> None:
    sink.data_replies = ["554 5.6.0 message refused"]
    sink.refuse[rcpts(3)[0]] = "450 4.2.1 mailbox busy"
    async with provider(sink) as smtp:
        outcomes = await smtp.send(MESSAGE, SENDER, rcpts(3))
    assert not outcomes[0].permanent and outcomes[0].reason.startswith("450")
    assert all(o.permanent and o.reason == "554 5.6.0 message refused" for o in outcomes[1:])


async def test_421_on_rcpt_makes_the_batch_transient(sink: Sink) -> None:
    sink.refuse[rcpts(5)[2]] = "421 4.3.2 shutting down"
    async with provider(sink) as smtp:
        outcomes = await smtp.send(MESSAGE, SENDER, rcpts(5))
        assert all(not o.ok and not o.permanent for o in outcomes)
        assert sink.received == []
        del sink.refuse[rcpts(5)[2]]
        assert all(o.ok for o in await smtp.send(MESSAGE, SENDER, rcpts(5)))


async def test_421_on_rcpt_quoting_the_address_keeps_it_out_of_logs_and_reasons(
        sink: Sink, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hub")
    sink.refuse[rcpts(5)[2]] = "421 4.7.0 <user00002@example.org> too many connections"
    async with provider(sink) as smtp:
        outcomes = await smtp.send(MESSAGE, SENDER, rcpts(5))
    assert all(not o.ok and not o.permanent for o in outcomes)
    assert hub_log(caplog) and "example.org" not in hub_log(caplog)
    assert all("example.org" not in o.reason for o in outcomes)


@pytest.mark.parametrize(("reply", "permanent"), [("553 5.7.1 sender not allowed", True),
                                                  ("451 4.7.1 greylisted", False)])
async def test_mail_from_refused_applies_to_all(sink: Sink, reply: str, permanent: bool) -> None:
    sink.mail_reply = reply
    async with provider(sink) as smtp:
        outcomes = await smtp.send(MESSAGE, SENDER, rcpts(3))
        assert all(not o.ok and o.permanent is permanent and o.reason == reply for o in outcomes)
        sink.mail_reply = None
        assert all(o.ok for o in await smtp.send(MESSAGE, SENDER, rcpts(3)))  # the connection was kept


async def test_all_recipients_refused_sends_no_data(sink: Sink) -> None:
    for r in rcpts(2):
        sink.refuse[r] = "550 5.1.1 unknown"
    async with provider(sink) as smtp:
        outcomes = await smtp.send(MESSAGE, SENDER, rcpts(2))
        assert all(o.permanent for o in outcomes) and sink.received == []
        assert all(o.ok for o in await smtp.send(MESSAGE, SENDER, ["other@example.org"]))


async def test_connection_dropped_mid_batch_then_recovers(
    sink: Sink, caplog: pytest.LogCaptureFixture,
) -> None:
    sink.drop_after_rcpts = 100
    async with provider(sink) as smtp:
        outcomes = await smtp.send(MESSAGE, SENDER, rcpts(500))
        assert len(outcomes) == 500
        assert all(not o.ok and not o.permanent and o.retry_after == 30 for o in outcomes)
        assert sink.received == []
        again = await smtp.send(MESSAGE, SENDER, rcpts(500))  # a fresh connection
    assert all(o.ok for o in again) and len(sink.received) == 1
    assert hub_log(caplog) and "example.org" not in hub_log(caplog)


async def test_server_closing_idle_connection_is_reopened(sink: Sink) -> None:
    sink.close_after_data = True
    async with SmtpProvider(SmtpSettings(host="127.0.0.1", port=sink.port,
                                         pool_size=1, timeout=5)) as smtp:
        for _ in range(3):
            assert all(o.ok for o in await smtp.send(MESSAGE, SENDER, rcpts(2)))
            await asyncio.sleep(0.2)
    assert len(sink.received) == 3


async def test_server_down_is_transient() -> None:
    smtp = SmtpProvider(SmtpSettings(host="127.0.0.1", port=free_port(), timeout=2, retry_after=5))
    outcomes = await smtp.send(MESSAGE, SENDER, rcpts(3))
    assert all(not o.ok and not o.permanent and o.retry_after == 5 for o in outcomes)
    assert "connection failed" in outcomes[0].reason
    with pytest.raises(DeliveryError) as info:
        await smtp.open()
    assert not info.value.permanent
    await smtp.close()


def refuse_all(server: Any, session: Session, envelope: Envelope, mechanism: str,
               auth_data: Any) -> AuthResult:
    return AuthResult(success=False, handled=False)


async def test_auth_refused_is_a_clear_error() -> None:
    handler = Sink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # aiosmtpd warns about AUTH without TLS
        controller = start(handler, authenticator=refuse_all, auth_require_tls=False)
    try:
        settings = SmtpSettings(host="127.0.0.1", port=controller.port, username="hub",
                                password="s3cret-pw", timeout=5)
        smtp = SmtpProvider(settings)
        with pytest.raises(SmtpAuthError) as info:
            await smtp.open()
        assert info.value.permanent
        text = str(info.value)
        assert "refused AUTH" in text and "'hub'" in text and "535" in text
        assert "s3cret-pw" not in text and "s3cret-pw" not in repr(settings)
        with pytest.raises(SmtpAuthError):
            await smtp.send(MESSAGE, SENDER, rcpts(2))
        await smtp.close()
    finally:
        controller.stop()
    assert handler.received == []


async def test_rate_limit_counts_recipients(sink: Sink) -> None:
    now = [0.0]
    bucket = TokenBucket(100_000, burst=100, clock=lambda: now[0])
    async with SmtpProvider(SmtpSettings(host="127.0.0.1", port=sink.port, timeout=5),
                            bucket=bucket) as smtp:
        assert all(o.ok for o in await smtp.send(MESSAGE, SENDER, rcpts(50)))
    assert bucket.available() == pytest.approx(50)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        SmtpSettings(security="ssl")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SmtpSettings(batch_size=0)
    assert SmtpSettings().batch_size == 500


async def test_simulator_ratio_and_seed() -> None:
    sim = SimulatorEmailProvider(delivery_ratio=0.9, permanent_share=0.5, seed=7)
    outcomes = await sim.send(MESSAGE, SENDER, rcpts(20_000))
    assert [o.recipient for o in outcomes] == rcpts(20_000)
    ok = sum(o.ok for o in outcomes) / len(outcomes)
    assert 0.89 < ok < 0.91
    failed = [o for o in outcomes if not o.ok]
    perm = sum(o.permanent for o in failed) / len(failed)
    assert 0.45 < perm < 0.55
    assert all(o.retry_after is None if o.permanent else o.retry_after == 60 for o in failed)
    assert sim.messages == 40  # batches of 500
    again = await SimulatorEmailProvider(delivery_ratio=0.9, permanent_share=0.5, seed=7).send(
        MESSAGE, SENDER, rcpts(20_000))
    assert again == outcomes


async def test_simulator_latency_and_extremes() -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    sim = SimulatorEmailProvider(delivery_ratio=1.0, latency=(0.1, 0.3), batch_size=10, seed=1, sleep=sleep)
    await sim.open()
    outcomes = await sim.send(MESSAGE, SENDER, rcpts(35))
    await sim.close()
    assert all(o.ok for o in outcomes) and len(slept) == 4 and all(0.1 <= s <= 0.3 for s in slept)
    never = SimulatorEmailProvider(delivery_ratio=0.0, permanent_share=1.0)
    none = await never.send(MESSAGE, SENDER, rcpts(5))
    assert all(o.permanent for o in none)
    with pytest.raises(ValueError):
        SimulatorEmailProvider(delivery_ratio=1.5)


async def test_paced_data_counts_until_the_servers_reply(sink: Sink) -> None:
    """The server stamps a message somewhere before its reply to DATA: the pacer's send log
    counts the recipients as in flight till then, and releases them whatever the reply."""
    pacer = Pacer.for_rate(100_000, 100)
    assert pacer.window is not None
    seen: list[int] = []
    reply = sink.handle_DATA

    async def slow_data(server: Any, session: Session, envelope: Envelope) -> str:
        seen.append(pacer.window.open if pacer.window is not None else -1)
        return await reply(server, session, envelope)

    sink.handle_DATA = slow_data  # type: ignore[method-assign]
    async with provider(sink) as smtp:
        assert all(o.ok for o in await smtp.send(MESSAGE, SENDER, rcpts(30), pacer=pacer))
        sink.data_replies = ["554 5.6.0 message refused"]
        assert all(o.permanent for o in await smtp.send(MESSAGE, SENDER, rcpts(30), pacer=pacer))
    assert seen == [1, 1] and pacer.window.open == 0
    assert pacer.window.in_window(time.monotonic()) == 60
