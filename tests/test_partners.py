"""Push to partners, the pure part: what a subscription may be, the HMAC, back-off, matching."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from hub.cap.model import Alert, MsgType, Scope, Status
from hub.cap.parse import parse
from hub.domain import Account, Grants, Role
from hub.outputs.feed import FeedFilter, FilterError, parse_filters
from hub.partners import (
    Event,
    SubscriptionError,
    address_refusal,
    check_subscription,
    event_of,
    give_up,
    matches,
    may_manage,
    retry_delay,
    signature,
    verify_signature,
)

FIXTURES = Path(__file__).parent / "fixtures"
URL = "https://partner.example.be/cap-hook"
SECRET = "0123456789abcdef"


@pytest.fixture(scope="module")
def full() -> Alert:
    alert = parse((FIXTURES / "alert_full.xml").read_bytes()).alert
    assert alert is not None
    return alert


def test_the_signature_is_the_hex_hmac_sha256_of_the_body_as_github_and_websub_send_it() -> None:
    body = b"<alert>...</alert>"
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert signature(SECRET, body) == f"sha256={expected}"
    assert verify_signature(SECRET, body, f"sha256={expected}")
    assert not verify_signature(SECRET, body + b" ", f"sha256={expected}")
    assert not verify_signature(SECRET + "x", body, f"sha256={expected}")


def test_a_good_subscription_gives_the_canonical_filters() -> None:
    assert check_subscription("De Standaard", URL, SECRET, {}) == ""
    query = check_subscription("rtbf.be", "http://partner.rtbf.be:8081/h", SECRET,
                               {"severity": "extreme,severe", "lang": "fr"})
    wanted = parse_filters({"severity": "Severe,Extreme", "lang": "fr"})
    assert parse_filters(dict(parse_qsl(query))) == wanted


@pytest.mark.parametrize(("name", "url", "secret", "filters", "field"), [
    ("", URL, SECRET, {}, "name"),
    ("bad/name", URL, SECRET, {}, "name"),
    ("x" * 101, URL, SECRET, {}, "name"),
    ("p", "ftp://partner.example.be/", SECRET, {}, "url"),
    ("p", "partner.example.be/hook", SECRET, {}, "url"),
    ("p", "https:///hook", SECRET, {}, "url"),
    ("p", "https://user:pw@partner.example.be/", SECRET, {}, "url"),
    ("p", "https://partner.example.be:99999/", SECRET, {}, "url"),
    ("p", URL, "short", {}, "secret"),
    ("p", URL, SECRET, {"colour": "red"}, "colour"),
    ("p", URL, SECRET, {"since": "2026-01-01T00:00:00Z"}, "since"),
])
def test_each_bad_field_is_named(name: str, url: str, secret: str, filters: dict[str, str],
                                 field: str) -> None:
    with pytest.raises(SubscriptionError) as exc:
        check_subscription(name, url, secret, filters)
    assert exc.value.field == field
    assert str(exc.value).startswith(f"{field}: ")
    if field == "secret":
        assert secret not in str(exc.value)  # a secret is never echoed


@pytest.mark.parametrize(("filters", "param"), [
    ({"severity": "Awful"}, "severity"), ({"bbox": "1,2,3"}, "bbox"), ({"point": "x,y"}, "point"),
    ({"lang": " "}, "lang"), ({"geocode": "NIS="}, "geocode"), ({"urgency": "soon"}, "urgency"),
    ({"event": " "}, "event"),
])
def test_bad_filter_values_are_named_as_in_the_feeds(filters: dict[str, str], param: str) -> None:
    with pytest.raises(FilterError) as exc:
        check_subscription("p", URL, SECRET, filters)
    assert exc.value.param == param


def test_only_coordinators_manage_subscriptions() -> None:
    for role, allowed in ((Role.COORDINATOR, True), (Role.CO_COORDINATOR, False), (Role.MANDATED, False)):
        assert may_manage(Account(1, 1, "a", role, Grants())) is allowed


def test_back_off_doubles_up_to_the_longest_wait() -> None:
    assert [retry_delay(n, 5.0, 60.0) for n in range(1, 7)] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert retry_delay(10_000, 5.0, 60.0) == 60.0


def test_give_up_when_the_next_try_would_pass_the_period() -> None:
    start = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert not give_up(start, start + timedelta(seconds=50), 10.0, 60.0)
    assert give_up(start, start + timedelta(seconds=51), 10.0, 60.0)


def test_what_partners_are_sent(full: Alert) -> None:
    assert full.scope is Scope.PUBLIC and full.status is Status.ACTUAL
    assert event_of(replace(full, msg_type=MsgType.ALERT)) is Event.NEW
    assert event_of(replace(full, msg_type=MsgType.UPDATE)) is Event.UPDATE
    assert event_of(replace(full, msg_type=MsgType.CANCEL)) is Event.CANCEL
    assert event_of(replace(full, msg_type=MsgType.ACK)) is None
    assert event_of(replace(full, status=Status.EXERCISE)) is None
    assert event_of(replace(full, status=Status.TEST)) is None
    assert event_of(replace(full, scope=Scope.RESTRICTED)) is None


def test_a_cancel_without_info_matches_through_what_it_cancels(full: Alert) -> None:
    wanted = parse_filters({"severity": full.infos[0].severity.value})
    cancel = replace(full, msg_type=MsgType.CANCEL, infos=())
    assert matches(wanted, full, [])
    assert not matches(wanted, cancel, [])
    assert matches(wanted, cancel, [full])
    assert matches(FeedFilter(), cancel, [])  # no filter: every change
    other = parse_filters({"event": "nothing like it"})
    assert not matches(other, cancel, [full])


@pytest.mark.parametrize(("url", "kind"), [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://127.1.2.3/hook", "loopback"),
    ("http://[::1]:8080/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://localhost:8080/hook", "local name"),
    ("http://api.localhost/hook", "local name"),
    ("https://10.1.2.3/hook", "private"),
    ("https://172.16.0.9/hook", "private"),
    ("https://192.168.1.20/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://0.0.0.0:8080/hook", "unspecified"),
    ("http://100.64.0.1/hook", "not a public address"),
    ("http://224.0.0.1/hook", "multicast"),
])
def test_a_callback_may_not_point_inside(url: str, kind: str) -> None:
    """A partner's callback must not turn the hub into a way into its own machine or network."""
    with pytest.raises(SubscriptionError, match=kind) as caught:
        check_subscription("p", url, SECRET, {})
    assert caught.value.field == "url" and "allow_private" in str(caught.value)
    assert check_subscription("p", url, SECRET, {}, allow_private=True) == ""


def test_public_addresses_and_names_are_callbacks() -> None:
    for url in ("https://193.191.245.10/cap", "https://[2a02:2788::1]/cap", "https://partner.example.be/cap"):
        assert check_subscription("p", url, SECRET, {}) == ""
    assert address_refusal("partner.example.be") is None  # a name: checked when resolved
    assert address_refusal("8.8.8.8") is None
    assert address_refusal("10.0.0.1") == "10.0.0.1 is a private address"
