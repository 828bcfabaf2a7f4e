"""CAP ``Ack`` and ``Error`` messages that answer a received message.

Per CAP 1.2 §3.2.1 an Ack or Error names the message it answers in ``<references>`` and
explains itself in ``<note>``. It is addressed to the sender of that message (scope Private,
``<addresses>`` = that sender) and carries its status, so that an Exercise is answered as an
Exercise. The hub signs what these functions build (``hub.cap.sign``); identifiers and times
come in from the caller so that this stays pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hub.cap.model import Alert, AlertKey, MsgType, Scope, Status
from hub.cap.problems import Problem

# A note is read by people and by systems such as IPAWS that show it in a log: keep it
# bounded even when a message has hundreds of findings.
MAX_NOTE_FINDINGS = 50


def note_for(problems: Sequence[Problem], *, summary: str = "") -> str | None:
    """One line per finding, ``path: CODE: message`` (warnings marked), after a summary."""
    lines = [summary] if summary else []
    lines += [p.format() for p in problems[:MAX_NOTE_FINDINGS]]
    if len(problems) > MAX_NOTE_FINDINGS:
        lines.append(f"... and {len(problems) - MAX_NOTE_FINDINGS} more findings")
    return "\n".join(lines) or None


def _answer(
    msg_type: MsgType,
    received: AlertKey | None,
    *,
    sender: str,
    identifier: str,
    sent: datetime,
    status: Status,
    note: str | None,
) -> Alert:
    return Alert(
        identifier=identifier,
        sender=sender,
        sent=sent,
        status=status,
        msg_type=msg_type,
        # Addressed to whoever sent the message; with nobody to address, nothing is private.
        scope=Scope.PRIVATE if received is not None else Scope.PUBLIC,
        addresses=received.sender if received is not None else None,
        note=note,
        references=str(received) if received is not None else None,
    )


def build_ack(
    received: AlertKey,
    *,
    sender: str,
    identifier: str,
    sent: datetime,
    status: Status = Status.ACTUAL,
    problems: Sequence[Problem] = (),
    summary: str = "",
) -> Alert:
    """An Ack of ``received``; ``problems`` are the warnings it was accepted with."""
    note = note_for(problems, summary=summary)
    return _answer(MsgType.ACK, received, sender=sender, identifier=identifier, sent=sent,
                   status=status, note=note)


def build_error(
    received: AlertKey | None,
    *,
    sender: str,
    identifier: str,
    sent: datetime,
    status: Status = Status.ACTUAL,
    problems: Sequence[Problem] = (),
    summary: str = "",
) -> Alert:
    """An Error refusing ``received`` with its findings in ``<note>``. ``received`` is None
    when the message could not even be identified (not XML, no sender): the Error then
    has no ``<references>``, since there is nothing it could truthfully name."""
    note = note_for(problems, summary=summary) or "message refused"
    return _answer(MsgType.ERROR, received, sender=sender, identifier=identifier, sent=sent,
                   status=status, note=note)
