"""What happens to alerts after they are accepted: answers from partners, expiry, and what
the logs say about it all."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from hub import logs
from hub.broker.base import Message
from hub.config import LogSettings
from hub.domain import AlertState, EntityType
from hub.errors import BrokerError
from hub.wiring import Hub
from tests.api.conftest import MakeSender, Sender

FAR_AWAY = json.dumps({"type": "Polygon", "coordinates": [
    [[5.50, 50.60], [5.60, 50.60], [5.60, 50.70], [5.50, 50.70], [5.50, 50.60]]]})


def stored_id(headers: dict[str, str]) -> int:
    return int(headers["Location"].rsplit("/", 1)[1])


def answer_to(partner: Sender, ref: str, msg_type: str = "Ack") -> bytes:
    """An Ack (or Error) of ``partner`` that references ``ref``: no <info>, as answers go."""
    data, _ = partner.alert(msg_type=msg_type, references=ref)
    return re.sub(rb"<info>.*</info>", b"", data)


async def test_ack_from_a_partner_is_stored_as_an_answer(hub: Hub, make_sender: MakeSender) -> None:
    police = await make_sender("police")
    # The partner may send news only and only far away: an answer is neither checked.
    commune = await make_sender("commune", type=EntityType.AREA, territory=FAR_AWAY, grants=("kinds=news",))
    data, ref = police.alert()
    status, _, headers = await police.post(police.signed(data))
    assert status == 201
    original = await hub.store.alert(stored_id(headers))
    assert original is not None

    status, body, headers = await commune.post(commune.signed(answer_to(commune, ref)))
    assert status == 201, body
    answer = await hub.store.alert(stored_id(headers))
    assert answer is not None
    assert (answer.msg_type, answer.state, answer.references) == ("Ack", AlertState.ANSWER, ref)
    assert answer.entity_id != original.entity_id
    assert await hub.store.alert(original.id) == original  # state, superseded_by, bytes: unchanged


async def test_error_from_a_partner_is_stored_as_an_answer(hub: Hub, make_sender: MakeSender) -> None:
    police = await make_sender("police")
    commune = await make_sender("commune")
    data, ref = police.alert()
    status, _, headers = await police.post(police.signed(data))
    assert status == 201
    original = await hub.store.alert(stored_id(headers))
    assert original is not None
    status, body, headers = await commune.post(commune.signed(answer_to(commune, ref, "Error")))
    assert status == 201, body
    answer = await hub.store.alert(stored_id(headers))
    assert answer is not None and answer.state is AlertState.ANSWER
    assert await hub.store.alert(original.id) == original


async def test_an_answer_is_never_expired(hub: Hub, make_sender: MakeSender) -> None:
    police = await make_sender("police")
    commune = await make_sender("commune")
    data, ref = police.alert()
    assert (await police.post(police.signed(data)))[0] == 201
    status, _, headers = await commune.post(commune.signed(answer_to(commune, ref)))
    assert status == 201
    assert await hub.expire() == []
    answer = await hub.store.alert(stored_id(headers))
    assert answer is not None and answer.state is AlertState.ANSWER


async def wait_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + 0.05)


async def post_soon_expiring(sender: Sender) -> int:
    """Post an alert whose <expires> is the next whole second at least 0.3 s away (CAP times
    have no fractions), and return its id."""
    frac = datetime.now(UTC).microsecond / 1e6
    data, _ = sender.alert(expires_in=timedelta(seconds=1 if frac < 0.7 else 2))
    status, body, headers = await sender.post(sender.signed(data))
    assert status == 201, body
    return stored_id(headers)


async def test_expire_marks_passed_alerts_and_publishes(hub: Hub, make_sender: MakeSender) -> None:
    police = await make_sender("police")
    events: list[Message] = []
    got = asyncio.Event()
    await hub.broker.declare("test-expired", ("alert.expired",))

    async def collect(message: Message) -> None:
        events.append(message)
        got.set()

    await hub.broker.consume("test-expired", ("alert.expired",), collect)
    later, _ = police.alert()
    assert (await police.post(police.signed(later)))[0] == 201
    soon = await post_soon_expiring(police)
    assert await hub.expire() == []  # nothing has expired yet
    stored = await hub.store.alert(soon)
    assert stored is not None and stored.expires is not None
    await wait_until(stored.expires)

    assert await hub.expire() == [soon]
    async with asyncio.timeout(2):
        await got.wait()
    assert [(m.topic, json.loads(m.body)) for m in events] == [("alert.expired", {"id": soon})]
    expired = await hub.store.alert(soon)
    assert expired is not None and expired.state is AlertState.EXPIRED
    assert [a.state for a in await hub.store.list_alerts() if a.id != soon] == [AlertState.ACTIVE]
    assert await hub.expire() == []  # once expired, never announced again
    await asyncio.sleep(0.05)
    assert len(events) == 1


async def test_expired_state_shows_in_the_api(hub: Hub, make_sender: MakeSender) -> None:
    police = await make_sender("police")
    soon = await post_soon_expiring(police)
    stored = await hub.store.alert(soon)
    assert stored is not None and stored.expires is not None
    await wait_until(stored.expires)
    assert await hub.expire() == [soon]

    async with police.client.get("/alerts") as resp:
        assert resp.status == 200
        listed = (await resp.json())["alerts"]
    assert [(a["id"], a["state"]) for a in listed] == [(soon, "expired")]
    async with police.client.get(f"/alerts/{soon}") as resp:
        assert resp.status == 200 and resp.headers["X-Alert-State"] == "expired"


# --- logs ---------------------------------------------------------------------------------

PHONE = "+32 470 12 34 56"
# a number on its own of nine or more digits, maybe with single spaces: not a time, an id or a hash
PHONE_LIKE = re.compile(r"(?<![\w+])\+?\d(?: ?\d){8,}(?!\w)")
CONTACT = f"<contact>Bel {PHONE} of 0470123456</contact>"


@contextlib.contextmanager
def json_logs(level: str) -> Iterator[None]:
    """``logs.setup`` for the length of a test, then the logging of the test run back."""
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    others = [logging.getLogger(n) for n in ("aiohttp.access", *logs.PAYLOAD_LOGGERS)]
    other_levels = [logger.level for logger in others]
    logs.setup(LogSettings(level=level, format="json"))  # type: ignore[arg-type]
    try:
        yield
    finally:
        for handler in root.handlers:
            handler.flush()
        root.handlers[:] = handlers
        root.setLevel(root_level)
        for logger, other_level in zip(others, other_levels, strict=True):
            logger.setLevel(other_level)


def with_contact(sender: Sender, **kw: object) -> bytes:
    data, _ = sender.alert(**kw)  # type: ignore[arg-type]
    return data.replace(b"<area>", CONTACT.encode() + b"<area>")


@pytest.mark.parametrize("level", ["info", "debug"])
async def test_json_log_lines_carry_no_token_and_no_phone_number(
    hub: Hub, make_sender: MakeSender, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, level: str,
) -> None:
    police = await make_sender("police")
    stranger = await make_sender("stranger", signature=False)

    async def refuse(topic: str, body: bytes, **kw: object) -> None:
        raise BrokerError("broker down")

    capsys.readouterr()
    with json_logs(level):
        monkeypatch.setattr(hub.broker, "publish", refuse)  # a broker failure: ingest logs it
        status, body, headers = await police.post(police.signed(with_contact(police)))
        assert status == 201, body  # stored is what counts
        # refused ones too: a wrong sender, and a message that is not CAP at all
        assert (await stranger.post(with_contact(police)))[0] == 403
        assert (await police.post(f"<alert>{PHONE} {police.token}</alert>".encode()))[0] == 400
        assert (await police.post(b"x", token=stranger.token + "x"))[0] == 401
        logging.getLogger("hub.test").info("marker")
    err = capsys.readouterr().err

    entries = [json.loads(line) for line in err.splitlines()]  # every line is one JSON object
    assert entries and all(set(e) >= {"time", "level", "logger", "message"} for e in entries)
    assert entries[-1]["message"] == "marker"
    published = [e for e in entries if e["logger"] == "hub.services.ingest"]
    assert [e["message"] for e in published] == [
        f"could not publish alert.accepted for alert {stored_id(headers)}"]
    assert published[0]["level"] == "error" and "BrokerError: broker down" in published[0]["exception"]
    for token in (police.token, stranger.token):
        assert token not in err
    for number in (PHONE, "0470123456", "470 12 34 56", "32470123456"):
        assert number not in err
    assert PHONE_LIKE.search(err) is None, PHONE_LIKE.search(err)
