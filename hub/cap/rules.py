"""The normative rules of CAP 1.2 that the schema cannot express.

``check(alert, now=...)`` returns findings as data (``Problem``); it never raises on a bad
message and never reads the clock: the caller passes ``now`` if it wants the time-dependent
warnings. The schema has already guaranteed structure, enumerations and the dateTime pattern.

Where the practice of real authorities meets a strict reading of the specification (an empty
``<restriction/>`` on a Public message, ``<references>`` on an Alert, an empty ``<polygon/>``,
an expiry equal to the sending time), the finding is a warning, so that every message the
official schema accepts from a real authority passes without errors. Area rules live in
``hub.cap.rules_area``.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from hub.cap.model import Alert, AlertKey, Info, MsgType, Resource, Scope, ValuePair
from hub.cap.problems import Code, Problem, error, warning
from hub.cap.rules_area import check_area, cite, shown

__all__ = ["CLOCK_SKEW", "check"]

# §3.2.1 identifier and sender: "MUST NOT include spaces, commas or restricted characters (< and &)".
_FORBIDDEN = re.compile(r"[\s,<&]")
# §3.2.2 language, RFC 3066: a primary subtag of 1-8 letters, then subtags of 1-8 alphanumerics.
_RFC3066 = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
# Message types that act on earlier messages: §3.2.1 msgType says each concerns "the earlier
# message(s) identified in <references>".
_REFERRING = frozenset({MsgType.UPDATE, MsgType.CANCEL, MsgType.ACK, MsgType.ERROR})
# How far ahead of our clock a <sent> may be before we say so (senders' clocks drift).
CLOCK_SKEW = timedelta(minutes=5)


def check(alert: Alert, *, now: datetime | None = None) -> list[Problem]:
    """All CAP 1.2 rule findings for ``alert``; ``now`` (timezone-aware) enables the warnings
    about a message sent in the future or already expired. Raises only for a naive ``now``:
    that is a fault of the caller, not of the message.

    Every rule has a cheap test that a clean message passes (one regular expression, a few
    comparisons); only a part that fails it is looked at again by the rule's own code, which
    words the findings. Most messages are clean, so most checks cost a few microseconds."""
    if now is not None and now.utcoffset() is None:
        raise ValueError("check(now=...) needs a timezone-aware datetime")
    problems: list[Problem] = []
    identifier, sender = alert.identifier, alert.sender
    if not identifier or not sender or _FORBIDDEN.search(identifier) or _FORBIDDEN.search(sender):
        problems.extend(_identity(alert))
    aware = _all_aware(alert)
    if not aware:
        problems.extend(_datetimes(alert))
    if alert.references is not None or alert.msg_type in _REFERRING:
        problems.extend(_references(alert))
    incidents = alert.incidents
    if (alert.scope is not Scope.PUBLIC or alert.restriction is not None or alert.addresses is not None
            or (incidents is not None and incidents.count('"') % 2)):
        problems.extend(_distribution(alert))
    for i, info in enumerate(alert.infos, 1):
        if not aware or not _clean_info(alert, info):
            problems.extend(_info(alert, info, f"/alert/info[{i}]"))
    if now is not None:
        problems.extend(_clock(alert, now))
    return problems


def _all_aware(alert: Alert) -> bool:
    if alert.sent.utcoffset() is None:
        return False
    for info in alert.infos:
        if ((info.effective is not None and info.effective.utcoffset() is None)
                or (info.onset is not None and info.onset.utcoffset() is None)
                or (info.expires is not None and info.expires.utcoffset() is None)):
            return False
    return True


# Fast tests: a match means the rule's own code would find nothing to say. Coordinates in
# range written plainly (no exponent, no other digits than 0-9); anything else goes the long way.
_LAT = r"[-+]?(?:[0-8]?[0-9](?:\.[0-9]*)?|\.[0-9]+|90(?:\.0*)?)"
_LON = r"[-+]?(?:(?:1[0-7][0-9]|[0-9]?[0-9])(?:\.[0-9]*)?|\.[0-9]+|180(?:\.0*)?)"
_CLEAN_POLYGON = re.compile(rf"\s*{_LAT},{_LON}(?:\s+{_LAT},{_LON}){{3,}}\s*")
_CLEAN_CIRCLE = re.compile(rf"\s*{_LAT},{_LON}\s+(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*")
# An absolute URI with a host, in plain ASCII: what urlsplit reads as scheme and netloc.
_CLEAN_URI = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9._~%!$&'()*+,;=:@-]+"
                        r"(?:[/?#][^\x00-\x20\[\]\x7f]*)?\s*")


def _clean_info(alert: Alert, info: Info) -> bool:  # noqa: C901 - one test per rule of _info
    """True when ``_info`` would find nothing in ``info`` (of an alert whose times all carry
    an offset)."""
    language = info.language
    if language and (_RFC3066.fullmatch(language) is None or not _common_primary(language)):
        return False
    expires = info.expires
    if expires is not None:
        sent = alert.sent
        if not expires > sent:
            return False
        if info.effective is not None and not expires > info.effective:
            return False
        if info.onset is not None and not expires > info.onset:
            return False
    for pairs in (info.event_codes, info.parameters):
        for pair in pairs:
            if not pair.value_name.strip():
                return False
    if info.web is not None and _CLEAN_URI.fullmatch(info.web) is None:
        return False
    for resource in info.resources:
        if (resource.size is not None and resource.size < 0) or resource.deref_uri is not None:
            return False
        if resource.uri is not None and _CLEAN_URI.fullmatch(resource.uri) is None:
            return False
    for area in info.areas:
        for polygon in area.polygons:
            if _CLEAN_POLYGON.fullmatch(polygon.text) is None or not _closed(polygon.text):
                return False
        for circle in area.circles:
            if _CLEAN_CIRCLE.fullmatch(circle.text) is None:
                return False
        for geocode in area.geocodes:
            if not geocode.value_name.strip():
                return False
        ceiling = area.ceiling
        if ceiling is not None and (area.altitude is None or ceiling < area.altitude):
            return False
    return True


def _common_primary(tag: str) -> bool:
    primary = tag.split("-", 1)[0]
    return 2 <= len(primary) <= 3


def _closed(text: str) -> bool:
    """The first pair written exactly as the last (the common case of a closed polygon)."""
    return text.split(None, 1)[0] == text.rsplit(None, 1)[-1]


def _forbidden(value: str) -> str:
    names = {" ": "a space", ",": "a comma", "<": "'<'", "&": "'&'"}
    found = dict.fromkeys(names.get(c, "whitespace") for c in _FORBIDDEN.findall(value))
    return ", ".join(found)


def _identity(alert: Alert) -> Iterator[Problem]:
    """§3.2.1: identifier and sender are non-empty and free of spaces, commas, '<' and '&'."""
    for name, value, code in (
        ("identifier", alert.identifier, Code.IDENTIFIER_CHARS),
        ("sender", alert.sender, Code.SENDER_CHARS),
    ):
        if not value:
            yield error(f"/alert/{name}", code, f"<{name}> is empty" + cite(code))
        elif bad := _forbidden(value):
            yield error(
                f"/alert/{name}", code,
                f"<{name}> {shown(value)} contains {bad}; spaces, commas, '<' and '&' are not allowed"
                + cite(code),
            )


def _aware(value: datetime | None) -> bool:
    return value is not None and value.utcoffset() is not None


def _datetimes(alert: Alert) -> Iterator[Problem]:
    """§3.3.2: every dateTime carries its offset (a model built by hand may lack one)."""
    fields: list[tuple[str, datetime | None]] = [("/alert/sent", alert.sent)]
    for i, info in enumerate(alert.infos, 1):
        fields += [(f"/alert/info[{i}]/{name}", getattr(info, name))
                   for name in ("effective", "onset", "expires")]
    for path, value in fields:
        if value is not None and not _aware(value):
            yield error(path, Code.DATETIME_OFFSET,
                        f"{path.rsplit('/', 1)[1]} {value.isoformat()} has no time zone offset"
                        + cite(Code.DATETIME_OFFSET))


def _references(alert: Alert) -> Iterator[Problem]:
    """§3.2.1 references: whitespace-separated ``sender,identifier,sent`` triplets of earlier
    messages; required by Update, Cancel, Ack and Error."""
    path = "/alert/references"
    text = alert.references
    if text is None or not text.strip():
        if alert.msg_type in _REFERRING:
            state = "missing" if text is None else "empty"
            yield error(path, Code.REFERENCES_REQUIRED,
                        f"<references> is {state}, but msgType {alert.msg_type} must reference the "
                        f"earlier message(s) it concerns" + cite(Code.REFERENCES_REQUIRED))
        return
    if alert.msg_type is MsgType.ALERT:
        # CAP-CP's "minor update" practice: an Alert that points at its predecessors.
        yield warning(path, Code.REFERENCES_ON_ALERT,
                      "<references> on an Alert message: an Alert starts a new thread; use Update to "
                      "supersede earlier messages" + cite(Code.REFERENCES_ON_ALERT))
    for n, triplet in enumerate(text.split(), 1):
        yield from _reference(alert, n, triplet)


def _reference(alert: Alert, n: int, triplet: str) -> Iterator[Problem]:
    path = "/alert/references"
    try:
        key = AlertKey.parse(triplet)
    except ValueError:
        yield error(path, Code.REFERENCES_FORMAT,
                    f"<references> item {n} {shown(triplet)} is not a sender,identifier,sent triplet "
                    f"with a CAP dateTime such as 2026-01-31T10:15:00+01:00" + cite(Code.REFERENCES_FORMAT))
        return
    for part, value in (("sender", key.sender), ("identifier", key.identifier)):
        if bad := _forbidden(value):
            yield error(path, Code.REFERENCES_FORMAT,
                        f"<references> item {n}: {part} {shown(value)} contains {bad}"
                        + cite(Code.REFERENCES_FORMAT))
    if key.sender == alert.sender and key.identifier == alert.identifier:
        yield error(path, Code.REFERENCES_SELF,
                    f"<references> item {n} {shown(triplet)} references this message itself"
                    + cite(Code.REFERENCES_SELF))
    elif _aware(alert.sent) and key.sent > alert.sent:
        yield error(path, Code.REFERENCES_FUTURE,
                    f"<references> item {n} {shown(triplet)} was sent after this message "
                    f"({alert.sent.isoformat()}): a message can only reference earlier ones"
                    + cite(Code.REFERENCES_FUTURE))


def _blank(value: str | None) -> bool:
    return value is not None and not value.strip()


def _distribution(alert: Alert) -> Iterator[Problem]:
    """§3.2.1 scope, restriction, addresses and incidents."""
    restriction, addresses = alert.restriction, alert.addresses
    if alert.scope is Scope.RESTRICTED and (restriction is None or _blank(restriction)):
        yield error("/alert/scope", Code.RESTRICTION_REQUIRED,
                    "scope Restricted needs a non-empty <restriction> saying who may receive it"
                    + cite(Code.RESTRICTION_REQUIRED))
    elif restriction is not None and alert.scope is not Scope.RESTRICTED:
        if _blank(restriction):
            # Environment Canada and IPAWS senders write an empty <restriction/> on Public messages.
            yield warning("/alert/restriction", Code.RESTRICTION_SCOPE,
                          f"empty <restriction/> on a {alert.scope} message is ignored"
                          + cite(Code.RESTRICTION_SCOPE))
        else:
            yield error("/alert/restriction", Code.RESTRICTION_SCOPE,
                        f"<restriction> {shown(restriction)} is only used with scope Restricted, "
                        f"not {alert.scope}" + cite(Code.RESTRICTION_SCOPE))
    if alert.scope is Scope.PRIVATE and (addresses is None or _blank(addresses)):
        yield error("/alert/scope", Code.ADDRESSES_REQUIRED,
                    "scope Private needs a non-empty <addresses> naming the recipients"
                    + cite(Code.ADDRESSES_REQUIRED))
    elif _blank(addresses):
        yield warning("/alert/addresses", Code.ADDRESSES_SCOPE,
                      f"empty <addresses/> on a {alert.scope} message is ignored"
                      + cite(Code.ADDRESSES_SCOPE))
    for name, value, code in (("addresses", addresses, Code.ADDRESSES_FORMAT),
                              ("incidents", alert.incidents, Code.INCIDENTS_FORMAT)):
        if value is not None and value.count('"') % 2:
            yield error(f"/alert/{name}", code,
                        f"<{name}> {shown(value)} has an unbalanced double quote: items with spaces "
                        f"are enclosed in a pair of double quotes" + cite(code))


def _info(alert: Alert, info: Info, path: str) -> Iterator[Problem]:
    yield from _language(info, path)
    yield from _expires(alert, info, path)
    for element, pairs in (("eventCode", info.event_codes), ("parameter", info.parameters)):
        yield from _value_names(element, pairs, path)
    if info.web is not None and not _absolute_uri(info.web):
        yield warning(f"{path}/web", Code.WEB_URI,
                      f"<web> {shown(info.web)} is not a full absolute URI" + cite("3.2.2 web"))
    for n, resource in enumerate(info.resources, 1):
        yield from _resource(resource, f"{path}/resource[{n}]")
    for n, area in enumerate(info.areas, 1):
        yield from check_area(area, f"{path}/area[{n}]")


def _language(info: Info, path: str) -> Iterator[Problem]:
    """§3.2.2 language: an RFC 3066 tag; absent or empty means en-US."""
    tag = (info.language or "").strip()
    if not tag:
        return
    if _RFC3066.fullmatch(tag) is None:
        yield error(f"{path}/language", Code.LANGUAGE_TAG,
                    f"<language> {shown(tag)} is not an RFC 3066 tag such as nl-BE or fr"
                    + cite(Code.LANGUAGE_TAG))
        return
    primary = tag.split("-", 1)[0].lower()
    if not (2 <= len(primary) <= 3 or primary in ("i", "x")):
        yield warning(f"{path}/language", Code.LANGUAGE_TAG,
                      f"<language> {shown(tag)}: primary subtag {shown(primary)} is not an ISO 639 "
                      f"code (2-3 letters) nor 'i' or 'x'" + cite(Code.LANGUAGE_TAG))


def _expires(alert: Alert, info: Info, path: str) -> Iterator[Problem]:
    """§3.2.2 expires: the information stops being in effect after it started being so.

    Expiring before ``sent`` or ``effective`` contradicts the message itself: an error. Expiring
    exactly then leaves no time in effect: a warning. Expiring before ``onset`` is only a warning:
    onset is when the *event* is expected to begin, and a short-lived outlook for a later event
    (to be updated before it starts) is consistent with the specification."""
    expires = info.expires
    if expires is None or not _aware(expires):
        return
    for name, start in (("sent", alert.sent), ("effective", info.effective), ("onset", info.onset)):
        if start is None or not _aware(start) or expires > start:
            continue
        strict = expires < start and name != "onset"
        relation = "equals" if expires == start else "is before"
        message = (f"<expires> {expires.isoformat()} {relation} <{name}> {start.isoformat()}"
                   + cite(Code.EXPIRES_ORDER))
        yield (error if strict else warning)(f"{path}/expires", Code.EXPIRES_ORDER, message)


def _value_names(element: str, pairs: tuple[ValuePair, ...], path: str) -> Iterator[Problem]:
    """§3.2.2: a valueName names the domain of the value; without it the value means nothing."""
    for n, pair in enumerate(pairs, 1):
        if not pair.value_name.strip():
            yield warning(f"{path}/{element}[{n}]/valueName", Code.VALUE_NAME_EMPTY,
                          f"<{element}> has an empty <valueName> (value {shown(pair.value)})"
                          + cite(f"3.2.2 {element}"))


def _absolute_uri(text: str) -> bool:
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        return False
    return bool(parts.scheme) and bool(parts.netloc or parts.path)


def _is_base64(text: str) -> bool:
    """Whitespace is allowed between base64 characters; nothing else is. Runs in C: a 450 KB
    audio clip is checked in about a millisecond."""
    try:
        data = "".join(text.split()).encode("ascii")
        binascii.a2b_base64(data, strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        return False
    # strict_mode still lets surplus padding through ("QUJD=", "QUJD====").
    return len(data) % 4 == 0 and not data.endswith(b"===")


def _resource(resource: Resource, path: str) -> Iterator[Problem]:
    """§3.2.3: size in bytes, uri absolute unless it names a derefUri, derefUri in base64."""
    if resource.size is not None and resource.size < 0:
        yield error(f"{path}/size", Code.RESOURCE_SIZE,
                    f"<size> {resource.size} is negative: it is the size of the resource in bytes"
                    + cite(Code.RESOURCE_SIZE))
    if resource.deref_uri is not None and not _is_base64(resource.deref_uri):
        yield error(f"{path}/derefUri", Code.DEREF_URI_BASE64,
                    f"<derefUri> {shown(resource.deref_uri)} is not base64-encoded data"
                    + cite(Code.DEREF_URI_BASE64))
    if resource.uri is not None and resource.deref_uri is None and not _absolute_uri(resource.uri):
        yield warning(f"{path}/uri", Code.RESOURCE_URI,
                      f"<uri> {shown(resource.uri)} is relative but there is no <derefUri> it could name"
                      + cite("3.2.3 uri"))


def _clock(alert: Alert, now: datetime) -> Iterator[Problem]:
    """Compared with the receiver's clock: facts about this copy, not faults of the message."""
    if _aware(alert.sent) and alert.sent > now + CLOCK_SKEW:
        yield warning("/alert/sent", Code.SENT_FUTURE,
                      f"<sent> {alert.sent.isoformat()} is in the future (now {now.isoformat()}); "
                      f"the sender's clock may be wrong" + cite("3.2.1 sent"))
    for i, info in enumerate(alert.infos, 1):
        if _aware(info.expires) and info.expires is not None and info.expires <= now:
            yield warning(f"/alert/info[{i}]/expires", Code.EXPIRED,
                          f"<expires> {info.expires.isoformat()} has passed (now {now.isoformat()})"
                          + cite("3.2.2 expires"))
