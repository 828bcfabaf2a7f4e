"""The e-mail of an <info>: MIME structure, headers, subjects per language, escaping, purity."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from typing import Any

import pytest

from hub.cap.model import Alert, Area, Category, Certainty, Info, MsgType, Scope, Severity, Status, Urgency
from hub.outputs.email_render import render_email, severity_word, subject

CEST = timezone(timedelta(hours=2))
SIGNED = b'<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>\n'


def info(**kw: Any) -> Info:
    base: dict[str, Any] = {
        "categories": (Category.MET,), "event": "Overstroming", "urgency": Urgency.IMMEDIATE,
        "severity": Severity.SEVERE, "certainty": Certainty.OBSERVED, "language": "nl-BE",
        "headline": "Overstroming in Gent",
        "description": "De Leie is buiten haar oevers getreden.",
        "instruction": "Blijf binnen en ga naar een hogere verdieping.\n\nVermijd de kelder.",
        "web": "https://crisiscentrum.be/nl?a=1&b=2",
        "areas": (Area("Gent"), Area("Merelbeke")),
        "expires": datetime(2024, 5, 1, 18, 0, tzinfo=CEST),
    }
    base.update(kw)
    return Info(**base)


NL = info()
FR = info(language="fr-BE", event="Inondation", headline="Inondation à Liège",
          description="La Meuse déborde.", instruction="Montez à l'étage.",
          web="https://crisiscenter.be/fr", areas=(Area("Liège"),))
DE = info(language="de-BE", event="Hochwasser", headline="Hochwasser in Eupen",
          description="Die Weser tritt über die Ufer.", instruction="Begeben Sie sich nach oben.",
          web="https://krisenzentrum.be/de", areas=(Area("Eupen"),))
EN = info(language="en-GB", event="Flood", headline="Flood in Ghent",
          description="The Lys has burst its banks.", instruction="Stay inside.",
          web="https://crisiscenter.be/en", areas=(Area("Ghent"),))


def alert(*infos: Info) -> Alert:
    return Alert(
        identifier="BE-2024-0001", sender="crisiscenter@be-alert.be",
        sent=datetime(2024, 5, 1, 12, 0, tzinfo=CEST), status=Status.ACTUAL,
        msg_type=MsgType.ALERT, scope=Scope.PUBLIC, infos=infos or (NL, FR, DE, EN),
    )


def render(a: Alert | None = None, index: int = 0, signed: bytes | None = SIGNED) -> EmailMessage:
    return render_email(a or alert(), index, sender="BE-Alert <no-reply@be-alert.be>",
                        reply_to="no-reply@be-alert.be", signed_cap=signed,
                        message_id_domain="hub.be-alert.be")


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_mime_structure_and_attachment() -> None:
    msg = parse(render().as_bytes())
    assert msg.get_content_type() == "multipart/mixed"
    types = [p.get_content_type() for p in msg.walk()]
    assert types == ["multipart/mixed", "multipart/alternative", "text/plain", "text/html",
                     "application/cap+xml"]
    cap = next(p for p in msg.iter_attachments())
    assert cap.get_content_type() == "application/cap+xml"
    assert cap.get_filename() == "alert.cap"
    assert cap.get_content_disposition() == "attachment"
    assert cap.get_content() == SIGNED


def test_headers() -> None:
    msg = parse(render().as_bytes())
    assert msg["From"] == "BE-Alert <no-reply@be-alert.be>"
    assert msg["Reply-To"] == "no-reply@be-alert.be"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Content-Language"] == "nl-BE"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Message-ID"].startswith("<cap.") and msg["Message-ID"].endswith("@hub.be-alert.be>")
    assert msg["Date"] == "Wed, 01 May 2024 12:00:00 +0200"
    for header in ("To", "Cc", "Bcc"):
        assert header not in msg  # recipients live in the envelope only


def test_bodies_carry_the_info() -> None:
    msg = parse(render().as_bytes())
    body = msg.get_body(("plain",))
    assert body is not None
    text = body.get_content().replace("\r\n", "\n")
    assert text.startswith("Overstroming in Gent\n")
    assert "Blijf binnen en ga naar een hogere verdieping." in text
    assert "Vermijd de kelder." in text
    assert "Gebied: Gent; Merelbeke" in text
    assert "Geldig tot: 2024-05-01 18:00 (+02:00)" in text
    assert "Meer informatie: https://crisiscentrum.be/nl?a=1&b=2" in text
    html = msg.get_body(("html",))
    assert html is not None
    page = html.get_content()
    assert '<html lang="nl-BE">' in page
    assert '<a href="https://crisiscentrum.be/nl?a=1&amp;b=2">' in page


@pytest.mark.parametrize(("index", "expected", "lang"), [
    (0, "[Ernstig] Overstroming in Gent", "nl-BE"),
    (1, "[Sévère] Inondation à Liège", "fr-BE"),
    (2, "[Schwer] Hochwasser in Eupen", "de-BE"),
    (3, "[Severe] Flood in Ghent", "en-GB"),
])
def test_subject_per_language(index: int, expected: str, lang: str) -> None:
    msg = parse(render(index=index).as_bytes())
    assert msg["Subject"] == expected
    assert msg["Content-Language"] == lang


def test_every_severity_has_a_word_in_each_language() -> None:
    for lang in ("nl", "fr", "de", "en"):
        words = {severity_word(s, lang) for s in Severity}
        assert len(words) == len(Severity)
    assert severity_word(Severity.EXTREME, "fr-BE") == "Extrême"
    assert severity_word(Severity.MODERATE, "de") == "Mäßig"
    assert severity_word(Severity.SEVERE, "es-ES") == "Severe"  # other languages: English


def test_subject_falls_back_to_event_and_stays_on_one_line() -> None:
    assert subject(info(headline=None)) == "[Ernstig] Overstroming"
    injected = info(headline="Alarm\r\nBcc: victim@example.org")
    msg = parse(render(alert(injected)).as_bytes())
    assert msg["Subject"] == "[Ernstig] Alarm Bcc: victim@example.org"
    assert "Bcc" not in msg


def test_html_escapes_every_value() -> None:
    hostile = info(headline="<script>alert(1)</script>", instruction='Go "now" & <b>fast</b>',
                   web="javascript:alert(1)")
    page = parse(render(alert(hostile)).as_bytes()).get_body(("html",))
    assert page is not None
    html = page.get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;fast&lt;/b&gt;" in html and "&quot;now&quot; &amp;" in html
    assert "<a " not in html  # only http(s) links become links


def test_without_signed_cap_there_is_no_attachment() -> None:
    msg = parse(render(signed=None).as_bytes())
    assert msg.get_content_type() == "multipart/alternative"
    assert list(msg.iter_attachments()) == []
    assert msg["Content-Language"] == "nl-BE"


def test_rendering_is_pure_and_crlf() -> None:
    one, two = render().as_bytes(), render().as_bytes()
    assert one == two  # same arguments, same bytes: render once, reuse for every batch
    assert b"\r\n" in one and b"\n" not in one.replace(b"\r\n", b"")
    other = render(index=1).as_bytes()
    assert parse(one)["Message-ID"] != parse(other)["Message-ID"]


def test_bad_index() -> None:
    with pytest.raises(IndexError):
        render(index=4)
