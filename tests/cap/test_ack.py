"""Ack and Error messages are valid CAP that name what they answer."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hub.cap.ack import MAX_NOTE_FINDINGS, build_ack, build_error
from hub.cap.model import AlertKey, MsgType, Scope, Status
from hub.cap.parse import parse
from hub.cap.problems import Code, error, warning
from hub.cap.serialize import to_xml

NOW = datetime(2026, 11, 24, 11, 0, tzinfo=timezone(timedelta(hours=1)))
RECEIVED = AlertKey("alerts@nccn.example.be", "BE-NCCN-2026-0042", NOW - timedelta(minutes=5))


def test_ack_references_the_received_message_and_is_valid_cap() -> None:
    ack = build_ack(RECEIVED, sender="hub@example.be", identifier="ACK-1", sent=NOW,
                    status=Status.EXERCISE,
                    problems=[warning("/alert/restriction", Code.RESTRICTION_SCOPE, "empty")])
    assert ack.msg_type is MsgType.ACK and ack.status is Status.EXERCISE
    assert ack.references == "alerts@nccn.example.be,BE-NCCN-2026-0042,2026-11-24T10:55:00+01:00"
    assert ack.scope is Scope.PRIVATE and ack.addresses == RECEIVED.sender
    assert ack.note is not None and "warning: empty" in ack.note
    result = parse(to_xml(ack))
    assert result.ok, result.problems
    assert result.alert == ack


def test_error_carries_findings_in_the_note() -> None:
    findings = [error("/alert/info[1]/area[1]/polygon[1]", Code.POLYGON_CLOSED, "not closed")] * 60
    err = build_error(RECEIVED, sender="hub@example.be", identifier="ERR-1", sent=NOW,
                      problems=findings, summary="refused: 60 errors")
    assert err.msg_type is MsgType.ERROR
    assert err.note is not None
    lines = err.note.splitlines()
    assert lines[0] == "refused: 60 errors"
    assert lines[1] == "/alert/info[1]/area[1]/polygon[1]: polygon-closed: not closed"
    assert len(lines) == 1 + MAX_NOTE_FINDINGS + 1 and "10 more" in lines[-1]
    assert parse(to_xml(err)).ok


def test_error_for_an_unidentifiable_message_names_nothing() -> None:
    err = build_error(None, sender="hub@example.be", identifier="ERR-2", sent=NOW,
                      problems=[error("/", Code.XML_MALFORMED, "not well-formed XML")])
    assert err.references is None and err.scope is Scope.PUBLIC
    result = parse(to_xml(err))
    assert result.alert == err  # schema-valid; the rules note the missing references
    assert {p.code for p in result.problems} == {Code.REFERENCES_REQUIRED}
