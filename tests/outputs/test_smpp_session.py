"""The SMPP session and pool against a real third-party SMSC: node-smpp in tests/peers/smsc.

Each test starts its own simulator with the switches it needs and asserts on what the SMSC
itself decoded (its JSON lines), not on what we meant to send.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from hub.outputs.gsm import split_gsm7, split_ucs2
from hub.outputs.smpp import (
    BindRefused,
    ConnectionLost,
    Correlator,
    Pool,
    Receipt,
    SmppSession,
    SubmitRefused,
)
from tests.peers.smsc_peer import PeerUnavailable, Smsc

StartSmsc = Callable[..., Smsc]
LONG_FR = (("BE-Alert: inondation a Liege. Restez chez vous, montez a l'etage, evitez les deplacements. "
           "Suivez les consignes des autorites et les informations sur www.be-alert.be. ") * 3)[:400]
UCS2_FR = "BE-Alert: crue de la Meuse à Liège. Évitez les caves, fermez l’eau et le gaz. Sûreté ☂ " * 2


@pytest.fixture
def smsc() -> Iterator[StartSmsc]:
    started: list[Smsc] = []

    def start(*args: str) -> Smsc:
        try:
            peer = Smsc(*args)
        except PeerUnavailable as exc:
            pytest.fail(str(exc))
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


def session_for(peer: Smsc, **kw: Any) -> SmppSession:
    kw.setdefault("system_id", "caphub")
    kw.setdefault("password", "secret")
    return SmppSession("127.0.0.1", peer.port, system_type="CAP", **kw)


@pytest.fixture
async def closing() -> AsyncIterator[list[SmppSession | Pool]]:
    opened: list[SmppSession | Pool] = []
    yield opened
    for s in opened:
        await s.close()


async def opened(peer: Smsc, closing: list[SmppSession | Pool], **kw: Any) -> SmppSession:
    s = session_for(peer, **kw)
    await s.open()
    closing.append(s)
    return s


async def take(source: AsyncIterator[Receipt], n: int, timeout: float = 5.0) -> list[Receipt]:
    async def collect() -> list[Receipt]:
        return [await anext(source) for _ in range(n)]
    return await asyncio.wait_for(collect(), timeout)


async def test_bind_and_single_gsm_submit(smsc: StartSmsc, closing: list[Any]) -> None:
    peer = smsc()
    s = await opened(peer, closing)
    assert s.smsc_system_id == "node-smsc"
    ids = await s.submit("+32470000001", split_gsm7("Alerte: restez chez vous {info}"), 0, "1789")
    [sub] = peer.wait_submits(1)
    assert peer.of("bind")[0] | {"conn": 0} == {"event": "bind", "conn": 0, "system_id": "caphub",
                                                  "password": "secret", "system_type": "CAP", "status": 0}
    assert ids == [sub["message_id"]]
    assert sub["text"] == "Alerte: restez chez vous {info}"
    assert (sub["destination"], sub["dest_ton"], sub["dest_npi"]) == ("32470000001", 1, 1)
    assert (sub["source"], sub["source_ton"], sub["source_npi"]) == ("1789", 3, 0)
    assert (sub["data_coding"], sub["esm_class"], sub["registered_delivery"], sub["udh"]) == (0, 0, 1, None)


@pytest.mark.parametrize("text, coding, split", [(LONG_FR, 0, split_gsm7), (UCS2_FR, 8, split_ucs2)])
async def test_multipart_udh(smsc: StartSmsc, closing: list[Any], text: str, coding: int,
                             split: Callable[[str], list[bytes]]) -> None:
    peer = smsc()
    s = await opened(peer, closing)
    parts = split(text)
    assert len(parts) == 3
    ids = await s.submit("32470000002", parts, coding, "1789")
    subs = sorted(peer.wait_submits(3), key=lambda e: e["udh"]["seq"])
    assert len(ids) == 3 and set(ids) == {e["message_id"] for e in subs}
    assert {e["udh"]["ref"] for e in subs} == {subs[0]["udh"]["ref"]}
    assert [(e["udh"]["total"], e["udh"]["seq"]) for e in subs] == [(3, 1), (3, 2), (3, 3)]
    assert {(e["esm_class"], e["data_coding"]) for e in subs} == {(0x40, coding)}
    assert "".join(e["text"] for e in subs) == text


async def test_sar_and_message_payload(smsc: StartSmsc, closing: list[Any]) -> None:
    peer = smsc()
    s = await opened(peer, closing)
    parts = split_gsm7(LONG_FR)
    await s.submit("32470000003", parts, 0, "1789", concat="sar")
    sar = sorted(peer.wait_submits(3), key=lambda e: e["sar"]["seq"])
    assert [(e["sar"]["total"], e["sar"]["seq"], e["esm_class"]) for e in sar] == [
        (3, 1, 0), (3, 2, 0), (3, 3, 0)]
    assert "".join(e["text"] for e in sar) == LONG_FR
    ids = await s.submit("32470000004", parts, 0, "1789", concat="payload")
    payload = peer.wait_submits(4)[-1]
    assert len(ids) == 1 and payload["payload_text"] == LONG_FR and payload["short_message_hex"] == ""


@pytest.mark.parametrize("form, id_mode, pdu", [
    ("tlv", "same", "deliver_sm"), ("text", "hex", "deliver_sm"), ("both", "dec", "deliver_sm"),
    ("text", "dec", "deliver_sm"),
    # §2.11: an SMSC may return receipts in data_sm (the text in message_payload)
    ("text", "same", "data_sm"), ("tlv", "hex", "data_sm"),
])
async def test_receipts_for_every_part(smsc: StartSmsc, closing: list[Any], form: str, id_mode: str,
                                       pdu: str) -> None:
    peer = smsc("--receipts", "delivered", "--receipt-form", form, "--receipt-id", id_mode,
                "--receipt-pdu", pdu)
    s = await opened(peer, closing)
    ids = await s.submit("32470000005", split_gsm7(LONG_FR), 0, "1789", tag="delivery-5")
    got = await take(s.receipts(), 3)
    assert sorted(r.part for r in got) == [1, 2, 3]
    assert {(r.tag, r.parts, r.state, r.destination) for r in got} == {
        ("delivery-5", 3, "DELIVRD", "32470000005")}
    assert len(ids) == 3


async def test_failed_and_delayed_receipts(smsc: StartSmsc, closing: list[Any]) -> None:
    peer = smsc("--receipts", "failed", "--receipt-delay", "300", "--receipt-form", "text")
    s = await opened(peer, closing)
    await s.submit("32470000006", [b"Hi"], 0, "1789", tag=6)
    [r] = await take(s.receipts(), 1)
    assert (r.tag, r.state, r.error, r.delivered) == (6, "UNDELIV", "001", False)


async def test_refused_bind(smsc: StartSmsc) -> None:
    peer = smsc("--refuse-bind", "0x0E")
    s = session_for(peer)
    with pytest.raises(BindRefused, match="ESME_RINVPASWD") as info:
        await s.open()
    assert info.value.status == 0x0E and not info.value.permanent and not s.alive


async def test_connect_refused_is_connection_lost() -> None:
    s = SmppSession("127.0.0.1", 1, system_id="x", password="y")
    with pytest.raises(ConnectionLost, match="cannot connect"):
        await s.open()


async def test_throttling_every_10th_submit(smsc: StartSmsc, closing: list[Any]) -> None:
    peer = smsc("--throttle-every", "10")
    s = await opened(peer, closing, window=16, throttle_pause=0.01)
    dests = [f"3247100{i:04d}" for i in range(200)]
    ids = await asyncio.gather(*(s.submit(d, [b"x"], 0, "1789") for d in dests))
    subs = peer.wait_submits(222)
    accepted = Counter(e["destination"] for e in subs if e["status"] == 0)
    assert accepted == Counter(dests)  # every one exactly once
    assert sum(1 for e in subs if e["status"] == 0x58) >= 20
    assert sorted(i[0] for i in ids) == sorted(e["message_id"] for e in subs if e["status"] == 0)


async def submit_all_with_reconnect(peer: Smsc, messages: list[tuple[str, list[bytes]]]) -> int:
    """What the worker does: resubmit what lacks an id on a new session, with back-off."""
    todo: dict[int, tuple[list[str | None] | None, int | None]] = {
        i: (None, None) for i in range(len(messages))}
    sessions = 0
    backoff = 0.05
    while todo:
        s = session_for(peer, window=32)
        await s.open()
        sessions += 1

        async def one(i: int, session: SmppSession = s) -> None:
            known, ref = todo[i]
            dest, parts = messages[i]
            try:
                await session.submit(dest, parts, 0, "1789", known_ids=known, ref=ref)
            except ConnectionLost as exc:
                todo[i] = (exc.message_ids, exc.ref)
            else:
                del todo[i]

        await asyncio.gather(*(one(i) for i in list(todo)))
        await s.close()
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 0.5)
    return sessions


async def test_connection_dropped_after_100_submits_no_double_no_loss(smsc: StartSmsc) -> None:
    peer = smsc("--drop-after", "100")
    messages = [(f"3247200{i:04d}", [b"single"]) for i in range(200)]
    messages += [(f"3247300{i:04d}", split_gsm7(LONG_FR)) for i in range(30)]  # 90 parts
    sessions = await submit_all_with_reconnect(peer, messages)
    assert sessions >= 3 and len(peer.of("drop")) >= 2
    accepted = Counter(
        (e["destination"], (e["udh"] or {}).get("seq")) for e in peer.submits(accepted_only=True))
    expected = Counter({(d, None if len(p) == 1 else k + 1): 1 for d, p in messages for k in range(len(p))})
    assert accepted == expected
    # a resubmitted part keeps its message's reference
    refs: dict[str, set[int]] = {}
    for e in peer.submits(accepted_only=True):
        if e["udh"]:
            refs.setdefault(e["destination"], set()).add(e["udh"]["ref"])
    assert all(len(r) == 1 for r in refs.values())


async def test_session_raises_connection_lost_with_parts(smsc: StartSmsc) -> None:
    peer = smsc("--drop-after", "2")
    s = session_for(peer, window=1)
    await s.open()
    with pytest.raises(ConnectionLost) as info:
        await s.submit("32470000007", split_gsm7(LONG_FR), 0, "1789")
    assert info.value.message_ids.count(None) == 1 and info.value.ref is not None
    assert not info.value.permanent and not s.alive
    with pytest.raises(ConnectionLost):
        await s.submit("32470000007", [b"x"], 0, "1789")
    await s.close()


async def test_receipts_for_unknown_ids(smsc: StartSmsc, closing: list[Any]) -> None:
    peer = smsc("--receipts", "delivered", "--receipt-id", "unknown")
    s = await opened(peer, closing, correlator=Correlator(hold=0.2))
    await s.submit("32470000008", [b"a"], 0, "1789", tag="t")
    [r] = await take(s.receipts(), 1)
    assert r.tag is None and r.message_id.startswith("ffff") and r.state == "DELIVRD"
    assert s.alive
    assert await s.submit("32470000009", [b"b"], 0, "1789")


async def test_receipts_before_submit_resp(smsc: StartSmsc, closing: list[Any]) -> None:
    peer = smsc("--receipts", "delivered", "--receipt-early", "--receipt-id", "hex")
    s = await opened(peer, closing)
    await asyncio.gather(
        *(s.submit(f"3247400{i:04d}", split_gsm7(LONG_FR), 0, "1789", tag=i) for i in range(20)))
    got = await take(s.receipts(), 60)
    assert Counter(r.tag for r in got) == Counter({i: 3 for i in range(20)})


async def test_rejects_permanent_and_transient(smsc: StartSmsc, closing: list[Any]) -> None:
    peer = smsc("--reject", "32470000010=0x0B", "--reject", "32470000011=0x08")
    s = await opened(peer, closing)
    with pytest.raises(SubmitRefused, match="ESME_RINVDSTADR") as bad:
        await s.submit("+32470000010", [b"x"], 0, "1789")
    assert bad.value.permanent
    with pytest.raises(SubmitRefused, match="ESME_RSYSERR") as busy:
        await s.submit("+32470000011", [b"x"], 0, "1789")
    assert not busy.value.permanent and busy.value.retry_after
    with pytest.raises(SubmitRefused) as local:
        await s.submit("0470 12 34 56", [b"x"], 0, "1789")
    assert local.value.permanent
    assert len(peer.wait_submits(2)) == 2  # the malformed number never left the hub


async def test_enquire_link_keeps_the_bind(smsc: StartSmsc, closing: list[Any]) -> None:
    peer = smsc()
    s = await opened(peer, closing, enquire_link_interval=0.2, response_timeout=1.0)
    await asyncio.sleep(1.5)
    # Alive after more than response_timeout of idle binds: every enquire_link was answered
    # (one may be on its way at this instant, on a busy machine).
    assert s.alive and s.in_flight <= 1


async def test_pool_of_binds(smsc: StartSmsc, closing: list[Any]) -> None:
    peer = smsc("--receipts", "delivered")
    pool = Pool("127.0.0.1", peer.port, system_id="caphub", password="secret", binds=3, window=8)
    await pool.open()
    closing.append(pool)
    assert pool.live == 3
    await asyncio.gather(*(pool.submit(f"3247500{i:04d}", [b"x"], 0, "1789", tag=i) for i in range(300)))
    got = await take(pool.receipts(), 300)
    assert sorted(r.tag for r in got if isinstance(r.tag, int)) == list(range(300))
    per_conn = Counter(e["conn"] for e in peer.wait_submits(300))
    assert len(per_conn) == 3 and min(per_conn.values()) > 30


async def test_pool_reopens_a_lost_bind(smsc: StartSmsc, closing: list[Any]) -> None:
    peer = smsc("--drop-after", "50")
    pool = Pool("127.0.0.1", peer.port, system_id="caphub", password="secret", binds=2, window=4,
                reconnect_min=0.05)
    await pool.open()
    closing.append(pool)
    done = 0
    for i in range(150):
        for _ in range(20):
            try:
                await pool.submit(f"3247600{i:04d}", [b"x"], 0, "1789")
                done += 1
                break
            except ConnectionLost as exc:
                await asyncio.sleep(exc.retry_after or 0.05)
    assert done == 150 and len(peer.of("bind")) >= 4


async def test_a_submit_cancelled_before_its_response_leaves_the_session_reading(
        smsc: StartSmsc, closing: list[Any]) -> None:
    # A worker's chunk cancelled mid-send (a Cancel, a failed sibling chunk, a stop): the
    # SMSC's response then comes for a cancelled future. The reader must go on, or every
    # later submit would time out, be taken for lost and sent twice.
    peer = smsc()
    s = await opened(peer, closing, response_timeout=30.0)
    task = asyncio.create_task(s.submit("+32470000001", [b"first"], 0, "1789"))
    while s.in_flight == 0:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    peer.wait_submits(1)
    ids = await asyncio.wait_for(s.submit("+32470000002", [b"second"], 0, "1789"), 3.0)
    assert len(ids) == 1 and s.alive


async def test_paced_submits_count_until_the_smsc_answers(smsc: StartSmsc, closing: list[Any]) -> None:
    """With a pacer, each submit_sm counts in its send log from the write until the SMSC's
    answer (it takes the submit in somewhere between), throttled answers and resends included,
    and no ticket is left open."""
    from hub.outputs.ratelimit import Pacer

    peer = smsc("--throttle-every", "10")
    s = await opened(peer, closing, window=16, throttle_pause=0.01)
    pacer = Pacer.till_answered(100_000, 100)
    assert pacer.window is not None
    seen: list[int] = []
    answered = pacer.answered

    def spy(ticket: Any) -> None:
        seen.append(pacer.window.open if pacer.window is not None else -1)
        answered(ticket)

    pacer.answered = spy  # type: ignore[method-assign]
    dests = [f"3247200{i:04d}" for i in range(50)]
    await asyncio.gather(*(s.submit(d, [b"x"], 0, "1789", pacer=pacer) for d in dests))
    subs = peer.wait_submits(55)
    assert len(seen) == len(subs) and max(seen) >= 1  # one answer per submit_sm, each open till then
    assert pacer.window.open == 0
    assert pacer.window.in_window(asyncio.get_running_loop().time()) == len(subs)
