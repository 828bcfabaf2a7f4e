"""Profiles: named sets of extra rules a receiving system adds on top of CAP 1.2.

A rule is a function ``Alert -> Iterable[Problem]``; a ``Profile`` names a tuple of them.
Profile findings use sub-codes that start with the profile's name (``be-language``,
``ipaws-expires``) and messages that start with it too (``be: ...``), so a reader can tell
a profile's demand from the standard's.

Shipped:

* ``be``: what this hub needs to reach people in Belgium by SMS, voice and e-mail.
* ``ipaws``: the CAP v1.2 USA IPAWS Profile v1.0 (FEMA), the rules a message must meet to be
  accepted for EAS, WEA and NWEM dissemination.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from hub.cap.model import Alert, Info, MsgType, Status
from hub.cap.problems import Problem, error, warning

__all__ = ["PROFILES", "Profile", "Rule", "get_profile"]

Rule = Callable[[Alert], Iterable[Problem]]


@dataclass(frozen=True, slots=True)
class Profile:
    """A named list of extra rules; ``check`` runs them all, in order."""

    name: str
    description: str
    rules: tuple[Rule, ...]

    def check(self, alert: Alert) -> list[Problem]:
        return [problem for rule in self.rules for problem in rule(alert)]


def _infos(alert: Alert) -> Iterator[tuple[str, Info]]:
    for i, info in enumerate(alert.infos, 1):
        yield f"/alert/info[{i}]", info


# --- be: the Belgian hub -------------------------------------------------------------------

# Belgium's three official languages, plus English for visitors: the languages our SMS,
# voice (espeak-ng fr-be, nl, de, en) and e-mail outputs can render and route by.
BE_LANGUAGES = frozenset({"fr", "nl", "de", "en"})
# An area description is sent in every SMS; past this it eats the room left for instructions.
BE_AREA_DESC_MAX = 100
# A headline is the first SMS part; 160 is one GSM 03.38 part.
BE_HEADLINE_MAX = 160


def be_languages(alert: Alert) -> Iterator[Problem]:
    """Each info block is in French, Dutch, German or English (any region: nl-BE, en-US...);
    a block in another language would reach no one, since recipients choose among these."""
    for path, info in _infos(alert):
        primary = info.lang.strip().split("-", 1)[0].lower()
        if primary not in BE_LANGUAGES:
            yield error(f"{path}/language", "be-language",
                        f"be: <language> {info.lang!r} is not French, Dutch, German or English "
                        f"(fr, nl, de, en with any region)")


def be_routable(alert: Alert) -> Iterator[Problem]:
    """An Actual Alert or Update must say something (an info) to someone somewhere (an area
    in each info): routing is by area, and an info without one would reach nobody."""
    if alert.status is not Status.ACTUAL or alert.msg_type not in (MsgType.ALERT, MsgType.UPDATE):
        return
    if not alert.infos:
        yield error("/alert", "be-info",
                    f"be: an Actual {alert.msg_type} needs at least one <info> to deliver")
    for path, info in _infos(alert):
        if not info.areas:
            yield error(path, "be-area", "be: this <info> has no <area>, so it cannot be routed")


def be_texts(alert: Alert) -> Iterator[Problem]:
    """Texts fit the channels: a headline for the first SMS part, short area descriptions."""
    for path, info in _infos(alert):
        headline = (info.headline or "").strip()
        if not headline:
            yield warning(f"{path}/headline", "be-headline",
                          "be: <headline> is missing; the SMS will start with <event> instead")
        elif len(headline) > BE_HEADLINE_MAX:
            yield warning(f"{path}/headline", "be-headline",
                          f"be: <headline> has {len(headline)} characters, more than one SMS part "
                          f"({BE_HEADLINE_MAX})")
        for n, area in enumerate(info.areas, 1):
            if len(area.area_desc.strip()) > BE_AREA_DESC_MAX:
                yield warning(f"{path}/area[{n}]/areaDesc", "be-area-desc",
                              f"be: <areaDesc> has {len(area.area_desc.strip())} characters, more than "
                              f"{BE_AREA_DESC_MAX} fit in an SMS")


def be_expires(alert: Alert) -> Iterator[Problem]:
    """Every info block says when it expires: the hub stops retrying deliveries and removes
    the alert from its feeds then, rather than by a guess."""
    for path, info in _infos(alert):
        if info.expires is None:
            yield error(path, "be-expires", "be: <expires> is required in each <info>")


BE = Profile(
    name="be",
    description="Belgian hub: fr/nl/de/en info blocks, routable areas, SMS-sized texts, expiry",
    rules=(be_languages, be_routable, be_texts, be_expires),
)


# --- ipaws: CAP v1.2 USA IPAWS Profile v1.0 ---------------------------------------------------

IPAWS_CODE = "IPAWSv1.0"
_IPAWS = "ipaws: "
_IPAWS_CITE = " (CAP-IPAWS v1.0, {})"


def ipaws_code(alert: Alert) -> Iterator[Problem]:
    """<code> SHALL include "IPAWSv1.0" to name the profile version in use."""
    if IPAWS_CODE not in (c.strip() for c in alert.codes):
        yield error("/alert", "ipaws-code",
                    f"{_IPAWS}<code>{IPAWS_CODE}</code> is required to declare the profile"
                    + _IPAWS_CITE.format("<code>"))


def ipaws_info(alert: Alert) -> Iterator[Problem]:
    """Per info block: <expires> required; one and only one SAME <eventCode> with a
    three-letter value; at least one <area>."""
    for path, info in _infos(alert):
        if info.expires is None:
            yield error(path, "ipaws-expires",
                        f"{_IPAWS}<expires> is required in each <info>" + _IPAWS_CITE.format("<expires>"))
        same = [ec.value.strip() for ec in info.event_codes if ec.value_name.strip() == "SAME"]
        if len(same) != 1 or len(same[0]) != 3:
            found = f"found {same!r}" if same else "found none"
            yield error(path, "ipaws-same-event",
                        f"{_IPAWS}exactly one <eventCode> with valueName SAME and a three-letter SAME "
                        f"event code is required, {found}" + _IPAWS_CITE.format("<eventCode>"))
        if not info.areas:
            yield error(path, "ipaws-area",
                        f"{_IPAWS}at least one <area> is required" + _IPAWS_CITE.format("<area>"))


def ipaws_consistent(alert: Alert) -> Iterator[Problem]:
    """All info blocks (one per language) carry the same categories and event codes."""
    if not alert.infos:
        return
    first = alert.infos[0]
    for path, info in list(_infos(alert))[1:]:
        if set(info.categories) != set(first.categories):
            yield error(f"{path}", "ipaws-categories",
                        f"{_IPAWS}<category> values differ from the first <info>'s"
                        + _IPAWS_CITE.format("<category>"))
        if set(info.event_codes) != set(first.event_codes):
            yield error(f"{path}", "ipaws-event-codes",
                        f"{_IPAWS}<eventCode> values differ from the first <info>'s"
                        + _IPAWS_CITE.format("<eventCode>"))


def ipaws_recommended(alert: Alert) -> Iterator[Problem]:
    """What the profile recommends or ignores: warnings only."""
    for path, info in _infos(alert):
        for name in ("effective", "onset"):
            if getattr(info, name) is not None:
                yield warning(f"{path}/{name}", "ipaws-ignored",
                              f"{_IPAWS}<{name}> is ignored: IPAWS alerts are effective upon issuance"
                              + _IPAWS_CITE.format(f"<{name}>"))
        for name in ("description", "instruction"):
            if not (getattr(info, name) or "").strip():
                yield warning(path, "ipaws-text",
                              f"{_IPAWS}<{name}> should be present with a meaningful value"
                              + _IPAWS_CITE.format(f"<{name}>"))
        for n, area in enumerate(info.areas, 1):
            if not any(g.value_name.strip() == "SAME" and len(g.value.strip()) == 6
                       and g.value.strip().isdigit() for g in area.geocodes):
                yield warning(f"{path}/area[{n}]", "ipaws-same-geocode",
                              f"{_IPAWS}a <geocode> with valueName SAME and a 6-digit SAME location "
                              f"code should be present" + _IPAWS_CITE.format("<geocode>"))


IPAWS = Profile(
    name="ipaws",
    description="CAP v1.2 USA IPAWS Profile v1.0: IPAWSv1.0 code, expires, one SAME event code, areas",
    rules=(ipaws_code, ipaws_info, ipaws_consistent, ipaws_recommended),
)


PROFILES: Mapping[str, Profile] = MappingProxyType({p.name: p for p in (BE, IPAWS)})


def get_profile(name: str) -> Profile:
    """The profile called ``name``; ``KeyError`` names the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown CAP profile {name!r}; known: {', '.join(sorted(PROFILES))}") from None
