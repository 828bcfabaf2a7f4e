"""The e-mail of one ``<info>``: a MIME message, rendered once per campaign × language.

Pure: no clock, no randomness, no I/O. The sender, reply-to, signed CAP and Message-ID domain
are passed in, and the same arguments give the same bytes.

**Structure.** ``multipart/mixed`` holding a ``multipart/alternative`` (``text/plain`` and a
simple ``text/html``, both UTF-8 quoted-printable) and, when ``signed_cap`` is given, the
hub-signed CAP as ``application/cap+xml`` (``alert.cap``, base64). Without a CAP the message
is the ``multipart/alternative`` alone.

**Headers.** ``Subject: [severity] headline`` with the severity in the ``<info>``'s language
(nl, fr, de, en; any other language gets English) and the event standing in for a missing
headline; ``From`` and ``Reply-To`` from the settings (a no-reply address); ``Date`` from the
alert's ``<sent>``; ``Message-ID`` derived from the alert key and the ``<info>`` position,
so a re-render after a restart gives the same id; ``Auto-Submitted: auto-generated``
(RFC 3834, so vacation responders stay quiet) and ``Content-Language``.

**No recipient.** The message has no ``To``/``Cc``: recipients go in the SMTP envelope only,
many ``RCPT TO`` per message (see :mod:`hub.outputs.email_smtp`), so the bytes can be reused
for every batch of the same campaign and language. Take them with ``msg.as_bytes()``: the
message carries the SMTP policy, so lines end in CRLF.
"""

from __future__ import annotations

import email.policy
import hashlib
import html
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime as rfc5322_datetime

from hub.cap.model import Alert, Info, Severity

CAP_MIME_TYPE = ("application", "cap+xml")
CAP_FILENAME = "alert.cap"

# The severity as the subject shows it, per primary language subtag.
SEVERITY_WORDS: dict[str, dict[Severity, str]] = {
    "en": {
        Severity.EXTREME: "Extreme", Severity.SEVERE: "Severe", Severity.MODERATE: "Moderate",
        Severity.MINOR: "Minor", Severity.UNKNOWN: "Unknown",
    },
    "nl": {
        Severity.EXTREME: "Extreem", Severity.SEVERE: "Ernstig", Severity.MODERATE: "Matig",
        Severity.MINOR: "Gering", Severity.UNKNOWN: "Onbekend",
    },
    "fr": {
        Severity.EXTREME: "Extrême", Severity.SEVERE: "Sévère", Severity.MODERATE: "Modéré",
        Severity.MINOR: "Mineur", Severity.UNKNOWN: "Inconnu",
    },
    "de": {
        Severity.EXTREME: "Extrem", Severity.SEVERE: "Schwer", Severity.MODERATE: "Mäßig",
        Severity.MINOR: "Gering", Severity.UNKNOWN: "Unbekannt",
    },
}

# Labels of the body, per primary language subtag.
_LABELS: dict[str, dict[str, str]] = {
    "en": {"area": "Area", "expires": "Valid until", "web": "More information",
           "contact": "Contact", "from": "Issued by", "attached": "The signed CAP alert is attached."},
    "nl": {"area": "Gebied", "expires": "Geldig tot", "web": "Meer informatie",
           "contact": "Contact", "from": "Uitgegeven door",
           "attached": "Het ondertekende CAP-bericht is bijgevoegd."},
    "fr": {"area": "Zone", "expires": "Valable jusqu'au", "web": "Plus d'informations",
           "contact": "Contact", "from": "Émis par", "attached": "L'alerte CAP signée est jointe."},
    "de": {"area": "Gebiet", "expires": "Gültig bis", "web": "Weitere Informationen",
           "contact": "Kontakt", "from": "Herausgegeben von",
           "attached": "Die signierte CAP-Meldung ist beigefügt."},
}


def primary_language(tag: str) -> str:
    """The primary subtag of a language tag, lower case (``"nl-BE"`` → ``"nl"``)."""
    return tag.split("-", 1)[0].strip().lower()


def _words(lang: str) -> str:
    p = primary_language(lang)
    return p if p in SEVERITY_WORDS else "en"


def severity_word(severity: Severity, lang: str) -> str:
    """The severity in ``lang`` (nl, fr, de, en; English for any other language)."""
    return SEVERITY_WORDS[_words(lang)][severity]


def _line(text: str | None) -> str:
    """One line: runs of white space (line breaks too, so no header injection) become one space."""
    return " ".join((text or "").split())


def _paragraphs(text: str | None) -> list[str]:
    """Paragraphs separated by blank lines, each on one line."""
    if not text:
        return []
    blocks = text.replace("\r\n", "\n").split("\n\n")
    return [p for p in (_line(b) for b in blocks) if p]


def subject(info: Info) -> str:
    """``[severity] headline`` in the ``<info>``'s language; the event stands in for a missing
    headline."""
    headline = _line(info.headline) or _line(info.event)
    return f"[{severity_word(info.severity, info.lang)}] {headline}"


def message_id(alert: Alert, info_index: int, domain: str) -> str:
    """A Message-ID that depends only on the alert key and the ``<info>`` position."""
    digest = hashlib.sha256(f"{alert.key}\x00{info_index}".encode()).hexdigest()[:32]
    return f"<cap.{digest}.{info_index}@{domain}>"


def _when(value: datetime) -> str:
    """A time as the sender wrote it, with its offset: ``2024-05-01 18:00 (+02:00)``."""
    offset = value.strftime("%z")
    return f"{value:%Y-%m-%d %H:%M} ({offset[:3]}:{offset[3:]})"


def _facts(info: Info, labels: dict[str, str]) -> list[tuple[str, str]]:
    """The labelled lines below the text: area, expiry, sender name, web, contact."""
    facts: list[tuple[str, str]] = []
    areas = [a for a in (_line(area.area_desc) for area in info.areas) if a]
    if areas:
        facts.append((labels["area"], "; ".join(areas)))
    if info.expires is not None:
        facts.append((labels["expires"], _when(info.expires)))
    if _line(info.sender_name):
        facts.append((labels["from"], _line(info.sender_name)))
    if _line(info.web):
        facts.append((labels["web"], _line(info.web)))
    if _line(info.contact):
        facts.append((labels["contact"], _line(info.contact)))
    return facts


def plain_text(info: Info, *, attached: bool = False) -> str:
    """The ``text/plain`` body."""
    labels = _LABELS[_words(info.lang)]
    headline = _line(info.headline) or _line(info.event)
    lines = [headline, ""]
    for para in _paragraphs(info.description) + _paragraphs(info.instruction):
        lines += [para, ""]
    for label, value in _facts(info, labels):
        lines.append(f"{label}: {value}")
    if attached:
        lines += ["", labels["attached"]]
    return "\n".join(lines).rstrip("\n") + "\n"


def html_text(info: Info, *, attached: bool = False) -> str:
    """The ``text/html`` body: every value escaped; only an http(s) ``<web>`` becomes a link."""
    lang = _words(info.lang)
    labels = _LABELS[lang]
    e = html.escape
    headline = _line(info.headline) or _line(info.event)
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{e(_line(info.lang))}"><head><meta charset="utf-8">'
        f"<title>{e(subject(info))}</title></head><body>",
        f"<h1>{e(headline)}</h1>",
    ]
    for para in _paragraphs(info.description):
        out.append(f"<p>{e(para)}</p>")
    for para in _paragraphs(info.instruction):
        out.append(f"<p><strong>{e(para)}</strong></p>")
    facts = _facts(info, labels)
    if facts:
        out.append("<ul>")
        for label, value in facts:
            shown = e(value)
            if label == labels["web"] and value.lower().startswith(("https://", "http://")):
                shown = f'<a href="{e(value, quote=True)}">{shown}</a>'
            out.append(f"<li>{e(label)}: {shown}</li>")
        out.append("</ul>")
    if attached:
        out.append(f"<p><small>{e(labels['attached'])}</small></p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render_email(
    alert: Alert,
    info_index: int,
    *,
    sender: str,
    reply_to: str,
    signed_cap: bytes | None,
    message_id_domain: str,
) -> EmailMessage:
    """The e-mail of ``alert.infos[info_index]``: see the module docstring."""
    if not 0 <= info_index < len(alert.infos):
        raise IndexError(f"alert has no <info> number {info_index}")
    info = alert.infos[info_index]
    attached = signed_cap is not None

    msg = EmailMessage(policy=email.policy.SMTP)
    msg["Subject"] = subject(info)
    msg["From"] = sender
    msg["Reply-To"] = reply_to
    msg["Date"] = rfc5322_datetime(alert.sent)
    msg["Message-ID"] = message_id(alert, info_index, message_id_domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(plain_text(info, attached=attached), subtype="plain", charset="utf-8",
                    cte="quoted-printable")
    msg.add_alternative(html_text(info, attached=attached), subtype="html", charset="utf-8",
                        cte="quoted-printable")
    if signed_cap is not None:
        msg.add_attachment(signed_cap, maintype=CAP_MIME_TYPE[0], subtype=CAP_MIME_TYPE[1],
                           filename=CAP_FILENAME)
    # After the parts: set_content and make_mixed move Content-* headers into the subparts.
    msg["Content-Language"] = _line(info.lang)
    _fix_boundaries(msg, msg["Message-ID"])
    return msg


def _fix_boundaries(msg: EmailMessage, seed: str) -> None:
    """Deterministic boundaries (the stdlib draws random ones), and no ``MIME-Version`` in the
    subparts. ``=_`` never occurs in quoted-printable or base64 text, so the boundary cannot
    collide with a body."""
    digest = hashlib.sha256(seed.encode()).hexdigest()[:24]
    for n, part in enumerate(msg.walk()):
        if part is not msg:
            del part["MIME-Version"]
        if part.is_multipart():
            part.set_boundary(f"=_cap_{digest}_{n}")
