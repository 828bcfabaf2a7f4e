"""Ingest: one posted CAP message in, one signed CAP Ack or Error out.

    size → parse → schema → rules (+ the entity's profile) → signature (the entity's policy)
    → rights (sender, kind, addresses, territory) → duplicate → references → store → publish

Every step that refuses says why with findings, and the answer is a CAP Error that lists
them. CPU-bound steps (parse, verify, sign) run in a small thread pool so that the event
loop keeps answering; store and broker I/O stay on the loop. Nothing is stored or published
for a refused message, and a message is acknowledged only once it is stored.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import multiprocessing
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from hub import rights
from hub.broker.base import Broker
from hub.cap.ack import build_ack, build_error
from hub.cap.model import Alert, AlertKey, MsgType
from hub.cap.parse import parse
from hub.cap.problems import Code, Problem, error
from hub.cap.serialize import to_xml
from hub.cap.sign import sign
from hub.cap.verify import Status as SigStatus
from hub.config import Settings
from hub.domain import Account, AlertState, Entity, StoredAlert
from hub.errors import SignatureError
from hub.services import ingest_work
from hub.services.ingest_work import Checked, SignatureInputs
from hub.store.base import Conflict, NewAlert, Store

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# Message types that change the state of the alerts they reference.
_LIFECYCLE = {MsgType.UPDATE: AlertState.UPDATED, MsgType.CANCEL: AlertState.CANCELLED}


@dataclass(frozen=True, slots=True)
class Caller:
    account: Account
    entity: Entity


@dataclass(frozen=True, slots=True)
class HubIdentity:
    """Who the hub is when it answers: its ``<sender>`` and the key pair it signs with."""

    sender: str
    key_pem: bytes
    cert_pem: bytes

    def sign(self, data: bytes) -> bytes:
        return sign(data, self.key_pem, self.cert_pem)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the HTTP layer needs to answer."""

    status: int  # HTTP status
    reason: str  # a short word for metrics and audit: accepted, duplicate, invalid, ...
    answer: Alert  # the Ack or Error, as a model (for JSON answers)
    answer_xml: bytes  # the same, signed
    problems: tuple[Problem, ...] = ()
    stored: StoredAlert | None = None
    published: tuple[str, ...] = field(default=())


class _Refused(Exception):
    def __init__(self, status: int, reason: str, problems: Sequence[Problem], summary: str) -> None:
        super().__init__(summary)
        self.status, self.reason, self.problems, self.summary = status, reason, tuple(problems), summary


class Ingest:
    def __init__(
        self,
        store: Store,
        broker: Broker,
        identity: HubIdentity,
        settings: Settings,
        *,
        executor: Executor | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._broker = broker
        self._identity = identity
        self._settings = settings
        self._executor = executor
        self._clock = clock
        self._processes = settings.ingest.processes
        self._pool: ProcessPoolExecutor | None = None

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    async def _cpu(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``fn(*args, **kwargs)`` in a worker process (``ingest.processes``), else in the
        thread pool. ``fn`` and its arguments must then be picklable: ``ingest_work``."""
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs)
        if self._processes > 0:
            pool = self._pool
            if pool is None:
                pool = self._pool = _process_pool(self._processes)
            try:
                return await loop.run_in_executor(pool, call)
            except BrokenProcessPool:  # a worker died (killed, out of memory): new ones next time
                log.warning("an ingest worker process died; starting new ones")
                if self._pool is pool:
                    self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
        return await loop.run_in_executor(self._executor, call)

    async def post(self, data: bytes, caller: Caller, *, on_behalf: bool = False) -> Outcome:
        """Check, store and publish one CAP message; never raises for what the caller sent.
        ``on_behalf``: the hub built and signed the message for the caller (a template sent):
        the hub's own certificate is then trusted beside the entity's; every other check
        is the same."""
        now = self._clock()
        key: AlertKey | None = None
        try:
            # Parse, rules and the signature in one step (one trip to a worker): the
            # signature's verdict is only looked at once the message is valid and its
            # sender is the caller's, in that order.
            checked = await self._cpu(
                ingest_work.check, data, max_bytes=self._settings.cap.max_bytes,
                profile=caller.entity.profile or self._settings.cap.profile, now=now,
                sig=await self._signature_inputs(caller.entity, on_behalf))
            key = checked.key
            if not checked.ok or checked.alert is None:
                raise self._invalid(checked)
            alert = checked.alert
            key = alert.key
            # Whose message it is comes first: a signature is judged against the certificates
            # of the entity the sender belongs to, which must be the caller's.
            self._check_sender(alert, caller)
            self._check_signature(checked)
            self._check_rights(alert, caller)
            existing = await self._store.find_alert(key.sender, key.identifier, key.sent)
            digest = hashlib.sha256(data).hexdigest()
            if existing is not None:
                return self._repeat(existing, digest, alert, now)
            referenced = await self._references(alert, caller.entity, now)
            return await self._accept(data, digest, alert, checked.problems, referenced, caller, now)
        except _Refused as refused:
            return await self._refuse(refused, key, now)

    # --- the steps -------------------------------------------------------------------------

    async def _signature_inputs(self, entity: Entity, on_behalf: bool) -> SignatureInputs:
        certificates = await self._store.certificates(entity.id)
        pems = tuple(c.pem for c in certificates)
        sig = self._settings.signature
        return SignatureInputs(
            senders=entity.senders, pems=pems + (self._identity.cert_pem,) if on_behalf else pems,
            required=entity.signature_required, expiry_at=sig.expiry_at,
            allow_sha1=sig.allow_sha1, allow_dsa=sig.allow_dsa,
        )

    @staticmethod
    def _invalid(result: Checked) -> _Refused:
        errors = result.errors
        if any(p.code == Code.XML_TOO_LARGE for p in errors):
            return _Refused(413, "too-large", errors, "message refused: too large")
        return _Refused(400, "invalid", result.problems,
                        f"message refused: {len(errors)} error(s) in the CAP message")

    @staticmethod
    def _check_signature(checked: Checked) -> None:
        result = checked.signature
        if result is None or result.valid:
            return
        status = 403 if result.status in (SigStatus.UNTRUSTED_KEY, SigStatus.EXPIRED) else 400
        problem = error("/alert/Signature", f"signature-{result.status.value.replace('_', '-')}",
                        result.reason)
        raise _Refused(status, f"signature:{result.status.value}", [problem],
                       "message refused: its signature does not hold")

    @staticmethod
    def _check_sender(alert: Alert, caller: Caller) -> None:
        problem = rights.check_sender(alert, caller.entity)
        if problem is not None:
            raise _Refused(403, "rights", [problem], "message refused: not allowed for this account")

    def _check_rights(self, alert: Alert, caller: Caller) -> None:
        found = rights.check(alert, caller.account, caller.entity)
        if found:
            raise _Refused(403, "rights", found, "message refused: not allowed for this account")

    def _repeat(self, existing: StoredAlert, digest: str, alert: Alert, now: datetime) -> Outcome:
        if existing.digest == digest:  # the same post again: the same answer, nothing redone
            answer = parse(existing.answer).alert
            if answer is not None:
                return Outcome(200, "duplicate", answer, existing.answer, stored=existing)
        problem = error("/alert/identifier", "duplicate-key",
                        f"{alert.key} was already received with other content")
        raise _Refused(409, "conflict", [problem], "message refused: conflicting duplicate")

    async def _references(self, alert: Alert, entity: Entity, now: datetime) -> list[StoredAlert]:
        found: list[StoredAlert] = []
        problems: list[Problem] = []
        acts = alert.msg_type in _LIFECYCLE
        for ref in alert.reference_keys():
            stored = await self._store.find_alert(ref.sender, ref.identifier, ref.sent)
            if stored is None:
                if acts:
                    problems.append(error("/alert/references", "reference-unknown",
                                          f"references {ref}, which this hub never received"))
                continue
            if acts and stored.entity_id != entity.id:
                problems.append(error("/alert/references", "reference-foreign",
                                      f"references {ref}, which another entity sent: "
                                      f"only its sender may {alert.msg_type.value.lower()} it"))
                continue
            found.append(stored)
        if alert.msg_type in (MsgType.ALERT, MsgType.UPDATE) and alert.infos:
            expires = [i.expires for i in alert.infos]
            if all(e is not None and e <= now for e in expires):
                problems.append(error("/alert/info[1]/expires", "expired-on-arrival",
                                      "every <info> of this message has already expired"))
        if problems:
            raise _Refused(422, "unprocessable", problems, "message refused: the hub cannot act on it")
        return found

    async def _accept(self, data: bytes, digest: str, alert: Alert, warnings: Sequence[Problem],
                      referenced: list[StoredAlert], caller: Caller, now: datetime) -> Outcome:
        ack = build_ack(alert.key, sender=self._identity.sender, identifier=_new_id("ack"), sent=now,
                        status=alert.status, problems=warnings,
                        summary=f"accepted {alert.msg_type.value} {alert.identifier}")
        ack_xml = await self._cpu(ingest_work.sign_answer, ack, self._identity.key_pem,
                                  self._identity.cert_pem)
        is_answer = alert.msg_type in (MsgType.ACK, MsgType.ERROR)
        ids = [r.id for r in referenced]
        state_change = _LIFECYCLE.get(alert.msg_type)
        simulation = caller.entity.simulation or self._settings.simulation.enabled
        new = NewAlert(
            sender=alert.sender, identifier=alert.identifier,
            sent=_sent_text(alert), sent_utc=alert.sent.astimezone(UTC),
            status=alert.status.value, msg_type=alert.msg_type.value, scope=alert.scope.value,
            expires=_latest_expiry(alert), references=alert.references,
            areas_json=_areas_json(alert), entity_id=caller.entity.id, account_id=caller.account.id,
            # The hub's signed copy is made when first emitted (``countersign``).
            received=data, signed=b"", answer=ack_xml, digest=digest, received_at=now,
            # A Cancel is itself no alert to act on or show; an Ack or Error is an answer.
            state=AlertState.ANSWER if is_answer
            else AlertState.CANCELLED if state_change is AlertState.CANCELLED else AlertState.ACTIVE,
            simulation=simulation,
        )
        try:
            stored = await self._store.insert_alert(
                new, references=ids,
                supersede=ids if state_change is AlertState.UPDATED else (),
                cancel=ids if state_change is AlertState.CANCELLED else (),
            )
        except Conflict:  # the same key posted twice at once: the first one won
            existing = await self._store.find_alert(alert.sender, alert.identifier, alert.sent)
            if existing is None:
                raise
            return self._repeat(existing, digest, alert, now)
        published = await self._publish(stored, alert, referenced, simulation)
        return Outcome(201, "accepted", ack, ack_xml, tuple(warnings), stored, published)

    async def countersign(self, stored: StoredAlert) -> bytes:
        """The hub-signed copy of a stored alert (the sender's signature kept, the hub's
        added last). It is made when first emitted (read by URL, put in a feed), then stored
        and emitted as stored: signing a 10 KB alert costs about 1 ms of CPU, which ingest
        would otherwise spend on every alert, emitted or not."""
        if stored.signed:
            return stored.signed
        signed = await self._cpu(sign, stored.received, self._identity.key_pem, self._identity.cert_pem)
        await self._store.set_signed(stored.id, signed)
        return signed

    async def _publish(
        self, stored: StoredAlert, alert: Alert, referenced: list[StoredAlert], simulation: bool = False
    ) -> tuple[str, ...]:
        event = {
            "id": stored.id, "sender": stored.sender, "identifier": stored.identifier,
            "sent": stored.sent, "status": stored.status, "msgType": stored.msg_type,
            "scope": stored.scope, "references": [r.id for r in referenced],
            # of the simulation environment (a simulation entity or hub): never for real outputs
            "simulation": simulation,
        }
        topics = ["alert.accepted"]
        if alert.msg_type is MsgType.CANCEL:
            topics.append("alert.cancelled")
        elif alert.msg_type is MsgType.UPDATE:
            topics.append("alert.updated")
        body = json.dumps(event).encode()
        sent: list[str] = []
        for topic in topics:
            try:
                await self._broker.publish(topic, body)
                sent.append(topic)
            except Exception:  # stored is what counts: the pipeline re-reads the store on start
                log.exception("could not publish %s for alert %d", topic, stored.id)
        return tuple(sent)

    async def _refuse(self, refused: _Refused, key: AlertKey | None, now: datetime) -> Outcome:
        answer = build_error(key, sender=self._identity.sender, identifier=_new_id("error"),
                             sent=now, problems=refused.problems, summary=refused.summary)
        try:
            answer_xml = await self._cpu(ingest_work.sign_answer, answer, self._identity.key_pem,
                                         self._identity.cert_pem)
        except SignatureError:  # never leave a caller without an answer
            log.exception("could not sign an Error")
            answer_xml = to_xml(answer)
        return Outcome(refused.status, refused.reason, answer, answer_xml, refused.problems)


def _process_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes forked from a small server process that has already imported the
    CAP core, so that starting one costs milliseconds and shares nothing with the event
    loop's threads."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["hub.services.ingest_work"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def _new_id(kind: str) -> str:
    return f"cap-hub-{kind}-{uuid.uuid4().hex}"


def _sent_text(alert: Alert) -> str:
    return str(alert.key).rsplit(",", 1)[1]


def _latest_expiry(alert: Alert) -> datetime | None:
    times = [i.expires for i in alert.infos if i.expires is not None]
    return max(times).astimezone(UTC) if times else None


def _areas_json(alert: Alert) -> str:
    areas = [
        {
            "info": n,
            "areaDesc": a.area_desc,
            "polygon": [p.text for p in a.polygons],
            "circle": [c.text for c in a.circles],
            "geocode": [[g.value_name, g.value] for g in a.geocodes],
        }
        for n, info in enumerate(alert.infos, 1) for a in info.areas
    ]
    return json.dumps(areas, ensure_ascii=False)


