"""From an accepted alert and a directory snapshot to the exact deliveries a campaign owes.

Pure: no clock (``now`` is given), no store, no broker. The routing stage reads the directory,
calls :func:`plan_campaign`, stores the plan and publishes :meth:`CampaignPlan.batches`.

**Messages planned.** Alert and Update are planned the same way: an Update is a new campaign
to the groups *it* targets; marking the deliveries of the campaigns it supersedes is the
stage's business, as is a Cancel (every not-yet-sent delivery of the referenced campaigns is
cancelled at once): for a Cancel, and for Ack and Error, nothing is planned and the plan says
why. ``<status>`` is not looked at (the stage decides whether Test or Exercise messages go
out), nor are ``<effective>`` and ``<onset>`` (the stage may hold a campaign until then).

**Infos.** Infos that expired at ``now`` are left out; if all have, nothing is planned. The
others are read as translations of one message (CAP §3.2.2): their areas are united, an
audience admits a group if one info's audience does, and each member gets one info, chosen by
language.

**Which groups.** The posting entity's groups (``entity_groups``, found in the directory by
gid), then narrowed, in this order:

1. ``<addresses>`` (group ids, space-delimited, quoted when they hold spaces): when present,
   only the groups named; names that are none of the entity's groups are listed in
   ``unknown_addresses``. Private scope without addresses plans nothing.
2. ``<restriction>`` for Restricted scope: the text may hold tokens ``group:GID`` and
   ``audience:TAG`` (quoted like addresses when they hold spaces, e.g. ``"audience:care homes"``);
   a group is kept when its gid is named or one of its audience tags is; the rest of the text is
   prose for people and is not read. Restricted scope with neither such a token nor
   addresses plans nothing: restricted content never falls back to every group.
3. ``<audience>``: an info's audience text *names* a tag when the tag occurs in it as whole
   words, case-insensitively ("farmers" is named by "Farmers and horticulturists"). An info
   whose audience names at least one tag of the remaining groups admits only the groups
   having a named tag; an info without audience, or whose audience names no known tag
   ("the general public"), admits every group.
4. Area: the union of the infos' ``<area>`` blocks (see :mod:`hub.routing.vector`), against
   each group's territory: a group matches when a geocode of the area equals one of its
   territory's (NIS and postal codes, spellings of the valueName made one), or when one of the
   area's polygons or circles meets its territory's polygons. A group without a territory
   matches by membership alone. A group whose match cannot be decided (the area has only
   geocodes, of kinds its territory does not list, or its territory cannot be read) does not
   match and is listed in ``groups_undecided``. An alert without any usable area does not
   narrow by area.

Entity type 1 (commune, governor) may also reach people in its territory who are in no
group; this planner knows only groups, so for both types it reaches members of the entity's
own groups (``entity_type`` is recorded in the plan).

**Members.** The members of the matched groups. When the area has a polygon or circle, a
member with a location, reached through a group that matched by area or by membership, is
kept only if the point lies in the area (closed polygons in lon/lat, circles in km on the
sphere); members without a location match by their group; members of a group matched by
geocode are kept wherever their location is (the geocode says the group's territory is in the
area).

**Language.** A member gets the first info whose language has the member's primary subtag
(``nl`` matches ``nl-BE``), else the first in ``default_language``, else the first info. A
delivery's ``language`` is the chosen info's primary subtag.

**Channels.** ``<parameter><valueName>channels</valueName><value>sms,email</value>`` (names
separated by commas or blanks; ``e-mail`` is accepted) asks for those channels for every
member; otherwise a member gets the union of the defaults, for the message kind, of the
matched groups it belongs to. A member's own preferences, if any, narrow that set. For each
channel, every contact point the member has for it gets a delivery (SMS: mobile numbers;
voice: every number; e-mail: addresses); a member with none is skipped for it and counted.

**De-duplication.** One delivery per (contact point, channel) per campaign: the member with
the smallest id keeps it (and its language); the others are counted in ``duplicates``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from hub.cap.model import Alert, Info, MsgType, Scope, split_quoted
from hub.domain import Channel, EntityType, Group, Kind, Language
from hub.routing.directory import CHANNEL_BITS, CHANNELS, Directory, channel_bits
from hub.routing.vector import AlertArea, alert_area

IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
BoolArray = npt.NDArray[np.bool_]

CHANNELS_PARAMETER = "channels"
BATCH_SIZE = 500

# Why nothing was planned (CampaignPlan.reason).
NO_INFO = "no-info"
EXPIRED = "expired"
CANCEL = "cancel"
ANSWER = "answer"
PRIVATE_WITHOUT_ADDRESSES = "private-without-addresses"
RESTRICTED_WITHOUT_RECIPIENTS = "restricted-without-recipients"
NO_GROUP = "no-group-matched"
NO_MEMBER = "no-member-matched"

# Why a member got no delivery on a channel (CampaignPlan.skipped).
NO_CONTACT = {Channel.SMS: "no mobile number", Channel.VOICE: "no phone number",
              Channel.EMAIL: "no e-mail address"}
PREFERENCES = "preferences exclude the requested channels"
NO_CHANNEL = "no channel for this kind of message"

_CHANNEL_NAMES = {"sms": Channel.SMS, "voice": Channel.VOICE, "email": Channel.EMAIL,
                  "e-mail": Channel.EMAIL}


class Delivery(NamedTuple):
    member_id: int
    channel: Channel
    address: str
    language: str
    info: int  # index in alert.infos


@dataclass(frozen=True, slots=True, repr=False)
class ChannelDeliveries:
    """The deliveries of one channel as columns: directory rows, address ids, info indexes."""

    rows: Int32Array
    addresses: Int32Array
    infos: npt.NDArray[np.int16]

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"ChannelDeliveries({len(self)})"


def _no_deliveries() -> ChannelDeliveries:
    return ChannelDeliveries(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int16))


@dataclass(frozen=True, slots=True, repr=False)
class CampaignPlan:
    """What a campaign owes, and the counts it records. Holds no personal data in its counts;
    the deliveries themselves are read through :meth:`deliveries` and :meth:`batches`."""

    entity_type: EntityType
    kind: Kind
    reason: str | None = None  # why nothing is planned, when nothing is
    groups: tuple[str, ...] = ()  # gids matched
    groups_undecided: tuple[str, ...] = ()
    unknown_addresses: tuple[str, ...] = ()
    infos: tuple[int, ...] = ()  # indexes of the infos still in force
    info_languages: tuple[str, ...] = ()  # per index in alert.infos, the primary subtag
    requested_channels: tuple[Channel, ...] | None = None  # from the channels parameter
    members_matched: int = 0
    members_outside_area: int = 0
    members_unreached: int = 0  # matched, but no delivery on any channel
    skipped: Mapping[str, int] = field(default_factory=dict)
    duplicates: Mapping[Channel, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    columns: Mapping[Channel, ChannelDeliveries] = field(default_factory=dict)
    directory: Directory | None = None

    def __repr__(self) -> str:
        return (f"CampaignPlan(reason={self.reason!r}, groups={len(self.groups)}, "
                f"members={self.members_matched}, deliveries={self.per_channel()})")

    def __len__(self) -> int:
        return sum(len(c) for c in self.columns.values())

    def per_channel(self) -> dict[Channel, int]:
        return {c: len(self.columns[c]) for c in CHANNELS if c in self.columns and len(self.columns[c])}

    def per_language(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for column in self.columns.values():
            for info, n in enumerate(np.bincount(column.infos, minlength=len(self.info_languages))):
                if n:
                    counts[self.info_languages[info]] += int(n)
        return dict(sorted(counts.items()))

    def counts(self) -> dict[str, object]:
        """The figures a campaign records, as JSON-ready values."""
        return {
            "reason": self.reason, "entity_type": int(self.entity_type), "kind": str(self.kind),
            "groups": list(self.groups), "groups_undecided": list(self.groups_undecided),
            "unknown_addresses": list(self.unknown_addresses),
            "members_matched": self.members_matched, "members_outside_area": self.members_outside_area,
            "members_unreached": self.members_unreached,
            "deliveries": {str(c): n for c, n in self.per_channel().items()},
            "languages": self.per_language(), "skipped": dict(self.skipped),
            "duplicates": {str(c): n for c, n in self.duplicates.items() if n}, "notes": list(self.notes),
        }

    def deliveries(self, channel: Channel) -> Iterator[Delivery]:
        for batch in self.batches(channel):
            yield from batch

    def batches(self, channel: Channel, size: int = BATCH_SIZE) -> Iterator[list[Delivery]]:
        """The channel's deliveries, ``size`` at a time, in member id order."""
        column = self.columns.get(channel)
        if column is None or self.directory is None:
            return
        directory = self.directory
        for start in range(0, len(column), size):
            part = slice(start, start + size)
            ids = directory.ids[column.rows[part]].tolist()
            addresses = column.addresses[part].tolist()
            infos = column.infos[part].tolist()
            yield [Delivery(m, channel, directory.addresses[a], self.info_languages[i], i)
                   for m, a, i in zip(ids, addresses, infos, strict=True)]


# --- the pieces ---------------------------------------------------------------------------------


def primary_subtag(language: str) -> str:
    return language.strip().split("-")[0].split("_")[0].lower()


def _in_force(info: Info, now: datetime) -> bool:
    return info.expires is None or info.expires > now


def _requested_channels(alert: Alert, infos: Sequence[int]) -> tuple[tuple[Channel, ...] | None, list[str]]:
    notes: list[str] = []
    for i in infos:
        for parameter in alert.infos[i].parameters:
            if parameter.value_name.strip() != CHANNELS_PARAMETER:
                continue
            wanted: list[Channel] = []
            for name in re.split(r"[\s,;]+", parameter.value.strip().lower()):
                channel = _CHANNEL_NAMES.get(name)
                if channel is None:
                    if name:
                        notes.append(f"unknown channel {name!r} in the channels parameter is ignored")
                elif channel not in wanted:
                    wanted.append(channel)
            if wanted:
                return tuple(wanted), notes
            notes.append("the channels parameter names no known channel: group defaults apply")
            return None, notes
    return None, notes


def _restriction(text: str | None) -> tuple[set[str], set[str]]:
    gids: set[str] = set()
    tags: set[str] = set()
    for token in split_quoted(text or ""):
        prefix, sep, value = token.partition(":")
        if sep and value:
            if prefix.lower() == "group":
                gids.add(value)
            elif prefix.lower() == "audience":
                tags.add(value.casefold())
    return gids, tags


def _names(text: str, tag: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(tag.casefold())}(?!\w)", text.casefold()) is not None


def _audience_admits(groups: Sequence[Group], audiences: Sequence[str | None]) -> list[bool]:
    tags = {t for g in groups for t in g.audience}
    admitted = [False] * len(groups)
    for text in audiences:
        named = {t for t in tags if _names(text, t)} if text else set()
        if not named:
            return [True] * len(groups)
        for k, group in enumerate(groups):
            admitted[k] = admitted[k] or any(t in named for t in group.audience)
    return admitted


def _language_table(directory: Directory, info_langs: Mapping[int, str], default: Language) -> npt.NDArray[
        np.int16]:
    """For each language code of the directory, the info index its speakers get."""
    order = list(info_langs)

    def first(lang: str) -> int | None:
        return next((i for i in order if info_langs[i] == lang), None)

    fallback = first(str(default.value))
    if fallback is None:
        fallback = order[0]
    table = np.zeros(max(1, len(directory.languages)), dtype=np.int16)
    for code, lang in enumerate(directory.languages):
        chosen = first(primary_subtag(lang))
        table[code] = fallback if chosen is None else chosen
    return table


def _member_mask(directory: Directory, groups: Iterable[int]) -> BoolArray:
    mask = np.zeros(len(directory), dtype=bool)
    rows = np.fromiter(groups, dtype=np.int64)
    if len(rows):
        mask[directory.members_of.gather(rows)[1]] = True
    return mask


@dataclass(slots=True)
class _Groups:
    """The outcome of choosing groups: rows in the directory, by how they matched."""

    by_code: list[int] = field(default_factory=list)  # area matched by geocode: no point test
    by_shape: list[int] = field(default_factory=list)  # by shape or membership: point test
    undecided: list[str] = field(default_factory=list)


def _match_area(directory: Directory, rows: list[int], area: AlertArea) -> _Groups:
    out = _Groups()
    if area.empty:
        out.by_shape = rows
        return out
    index = np.asarray(rows, dtype=np.int64)
    meets = area.meets(directory.territories[index]) if area.geometric else np.zeros(len(rows), bool)
    area_names = {name for name, _ in area.geocodes}
    for k, g in enumerate(rows):
        group = directory.groups[g]
        codes = directory.geocodes[g]
        if directory.territory_error[g]:
            out.undecided.append(group.gid)
        elif codes & area.geocodes:
            out.by_code.append(g)
        elif not group.territory or meets[k]:
            out.by_shape.append(g)
        elif not ((area.geometric and directory.territories[g] is not None)
                  or area_names & {name for name, _ in codes}):
            out.undecided.append(group.gid)
    return out


def _channel_bits(directory: Directory, groups: Sequence[int], kind: Kind,
                  requested: tuple[Channel, ...] | None) -> npt.NDArray[np.uint8]:
    if requested is not None:
        return np.full(len(directory), channel_bits(requested), dtype=np.uint8)
    by_bits: dict[int, list[int]] = {}
    for g in groups:
        by_bits.setdefault(channel_bits(directory.groups[g].channels_for(kind)), []).append(g)
    bits = np.zeros(len(directory), dtype=np.uint8)
    for value, members in by_bits.items():
        if value:
            bits[_member_mask(directory, members)] |= np.uint8(value)
    return bits


def _deliveries(directory: Directory, channel: Channel, rows: IntArray,
                infos: npt.NDArray[np.int16]) -> tuple[ChannelDeliveries, int, int]:
    """The channel's deliveries to ``rows`` (ascending), the number of those rows with no
    contact point, and the number of duplicates dropped."""
    contacts = directory.contacts[channel]
    positions, addresses = contacts.gather(rows)
    without = int((contacts.offsets[rows + 1] == contacts.offsets[rows]).sum())
    _, first = np.unique(addresses, return_index=True)
    first.sort()
    keep = positions[first]
    column = ChannelDeliveries(rows[keep].astype(np.int32), addresses[first], infos[keep])
    return column, without, len(addresses) - len(first)


def _refusal(alert: Alert, infos: Sequence[int]) -> str | None:
    """Why nothing at all is planned for this message, if so."""
    if alert.msg_type in (MsgType.ACK, MsgType.ERROR):
        return ANSWER
    if alert.msg_type is MsgType.CANCEL:
        return CANCEL
    if not alert.infos:
        return NO_INFO
    if not infos:
        return EXPIRED
    if alert.scope is Scope.PRIVATE and not alert.address_list:
        return PRIVATE_WITHOUT_ADDRESSES
    gids, tags = _restriction(alert.restriction)
    if alert.scope is Scope.RESTRICTED and not (gids or tags) and not alert.address_list:
        return RESTRICTED_WITHOUT_RECIPIENTS
    return None


def _addressed(alert: Alert, infos: Sequence[int], entity_groups: Sequence[Group],
               directory: Directory, notes: list[str]) -> tuple[list[int], tuple[str, ...]]:
    """The entity's groups (directory rows) that addresses, restriction and audience leave,
    and the addresses that name none of them."""
    rows: list[int] = []
    for group in entity_groups:
        g = directory.group_index.get(group.gid)
        if g is None:
            notes.append(f"group {group.gid!r} is not in the directory")
        else:
            rows.append(g)
    unknown: tuple[str, ...] = ()
    if addresses := alert.address_list:
        own = {directory.groups[g].gid for g in rows}
        unknown = tuple(a for a in addresses if a not in own)
        rows = [g for g in rows if directory.groups[g].gid in addresses]
    gids, tags = _restriction(alert.restriction)
    if alert.scope is Scope.RESTRICTED and (gids or tags):
        rows = [g for g in rows if directory.groups[g].gid in gids
                or any(t.casefold() in tags for t in directory.groups[g].audience)]
    admitted = _audience_admits([directory.groups[g] for g in rows], [alert.infos[i].audience for i in infos])
    return [g for g, ok in zip(rows, admitted, strict=True) if ok], unknown


def _members(directory: Directory, matched: _Groups, area: AlertArea) -> tuple[IntArray, int]:
    """Rows of the members reached (ascending), and how many were left out as outside the area."""
    free = _member_mask(directory, matched.by_code)
    reach = _member_mask(directory, matched.by_shape)
    outside = 0
    if area.geometric:
        test = np.flatnonzero(reach & ~free & ~np.isnan(directory.lat) & ~np.isnan(directory.lon))
        inside = area.contains_points(directory.lat[test], directory.lon[test])
        reach[test[~inside]] = False
        outside = int(len(test) - inside.sum())
    return np.flatnonzero(reach | free), outside


# --- the planner --------------------------------------------------------------------------------


def plan_campaign(alert: Alert, *, entity_type: EntityType, entity_groups: Sequence[Group],
                  directory: Directory, kind: Kind, default_language: Language,
                  now: datetime) -> CampaignPlan:
    """The deliveries ``alert`` owes (see the module's documentation for every rule)."""
    infos = [i for i, info in enumerate(alert.infos) if _in_force(info, now)]
    reason = _refusal(alert, infos)
    if reason is not None:
        return CampaignPlan(entity_type, kind, reason=reason)

    notes: list[str] = []
    rows, unknown = _addressed(alert, infos, entity_groups, directory, notes)
    area = alert_area(a for i in infos for a in alert.infos[i].areas)
    matched = _match_area(directory, rows, area)
    groups = sorted(matched.by_code + matched.by_shape)
    info_languages = tuple(primary_subtag(info.lang) for info in alert.infos)
    requested, channel_notes = _requested_channels(alert, infos)
    notes += channel_notes
    head = CampaignPlan(
        entity_type, kind, groups=tuple(directory.groups[g].gid for g in groups),
        groups_undecided=tuple(matched.undecided), unknown_addresses=unknown, infos=tuple(infos),
        info_languages=info_languages, requested_channels=requested, notes=tuple(notes))
    if not groups:
        return replace(head, reason=NO_GROUP)

    members, outside = _members(directory, matched, area)
    if not len(members):
        return replace(head, reason=NO_MEMBER, members_outside_area=outside)
    wanted = _channel_bits(directory, groups, kind, requested)[members]
    prefs = directory.prefs[members]
    bits = np.where(prefs != 0, wanted & prefs, wanted)
    skipped: dict[str, int] = {}
    if n := int((wanted == 0).sum()):
        skipped[NO_CHANNEL] = n
    if n := int(((wanted != 0) & (bits == 0)).sum()):
        skipped[PREFERENCES] = n

    table = _language_table(directory, {i: info_languages[i] for i in infos}, default_language)
    member_infos = table[directory.language[members]]
    columns: dict[Channel, ChannelDeliveries] = {}
    duplicates: dict[Channel, int] = {}
    reached = np.zeros(len(members), dtype=bool)
    for channel in CHANNELS:
        on = (bits & CHANNEL_BITS[channel]) != 0
        if not on.any():
            continue
        chosen = members[on]
        column, without, dropped = _deliveries(directory, channel, chosen, member_infos[on])
        columns[channel] = column
        duplicates[channel] = dropped
        if without:
            skipped[NO_CONTACT[channel]] = without
        contacts = directory.contacts[channel]
        reached[np.flatnonzero(on)] |= contacts.offsets[chosen + 1] > contacts.offsets[chosen]
    return replace(head, members_matched=len(members), members_outside_area=outside,
                   members_unreached=int((~reached).sum()), skipped=skipped, duplicates=duplicates,
                   columns=columns, directory=directory)
