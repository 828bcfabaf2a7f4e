"""A columnar snapshot of the member directory, for planning campaigns.

One numpy array per attribute, one row per member (sorted by member id), instead of one
Python object per member: a million members take a few tens of megabytes and a plan touches
them with array operations only. Variable-length data are CSR pairs (:class:`Csr`: ``offsets``
and ``values``): the contact points of each member per channel, and the members of each group.

Contact points are interned: every distinct number or e-mail address gets one id in
:attr:`Directory.addresses`, so two members who share a landline share its id, and
de-duplication is integer work.

The snapshot holds personal data: its ``repr`` shows sizes only, and nothing here logs.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hub.domain import Channel, Group, PhoneKind
from hub.routing.geometry import TerritoryError, parse_territory
from hub.routing.vector import geocode_key, territory_geometry

IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
BoolArray = npt.NDArray[np.bool_]

CHANNELS: tuple[Channel, ...] = (Channel.SMS, Channel.VOICE, Channel.EMAIL)
CHANNEL_BITS: Mapping[Channel, int] = {Channel.SMS: 1, Channel.VOICE: 2, Channel.EMAIL: 4}

MemberRow = tuple[int, str, float | None, float | None, str | None]
"""``(member_id, language, lat, lon, channels)``; ``channels`` as the store keeps it, a JSON list
(``'["sms", "email"]'``) or a comma-separated list (``"sms,email"``); empty: no preference."""


def channel_bits(channels: Iterable[Channel]) -> int:
    bits = 0
    for channel in channels:
        bits |= CHANNEL_BITS[channel]
    return bits


def parse_channels(text: str | None) -> int:
    """Channel preferences as bits; unknown names are ignored."""
    if not text:
        return 0
    text = text.strip()
    names: Iterable[Any]
    if text.startswith("["):
        names = json.loads(text)
    else:
        names = text.replace(";", ",").split(",")
    bits = 0
    for name in names:
        try:
            bits |= CHANNEL_BITS[Channel(str(name).strip().lower())]
        except ValueError:
            continue
    return bits


@dataclass(frozen=True, slots=True, repr=False)
class Csr:
    """Rows of variable length: row ``i`` is ``values[offsets[i]:offsets[i + 1]]``."""

    offsets: IntArray
    values: Int32Array

    def __repr__(self) -> str:
        return f"Csr({len(self.offsets) - 1} rows, {len(self.values)} values)"

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def nbytes(self) -> int:
        return int(self.offsets.nbytes + self.values.nbytes)

    def row(self, i: int) -> Int32Array:
        return self.values[self.offsets[i]:self.offsets[i + 1]]

    def counts(self) -> IntArray:
        return np.diff(self.offsets)

    def gather(self, rows: Int32Array | IntArray) -> tuple[IntArray, Int32Array]:
        """The values of the given rows, flattened, each with the position in ``rows`` it came
        from: ``(positions, values)``, in the order of ``rows`` then of each row."""
        starts = self.offsets[rows]
        counts = self.offsets[rows + 1] - starts
        total = int(counts.sum())
        positions = np.repeat(np.arange(len(rows), dtype=np.int64), counts)
        # Index of each value: its row's start plus its rank within the row.
        ends = np.cumsum(counts)
        index = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - counts), counts)
        return positions, self.values[index]

    @classmethod
    def from_pairs(cls, rows: IntArray, values: Int32Array, n_rows: int) -> Csr:
        """Pairs ``(rows[k], values[k])`` grouped by row, keeping their order within a row."""
        order = np.argsort(rows, kind="stable")
        offsets = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=offsets[1:])
        return cls(offsets, values[order].astype(np.int32, copy=False))


@dataclass(frozen=True, slots=True, repr=False)
class Strings:
    """Many short strings in one UTF-8 buffer: string ``i`` is ``blob[offsets[i]:offsets[i + 1]]``."""

    blob: bytes
    offsets: IntArray

    def __repr__(self) -> str:
        return f"Strings({len(self)} strings, {len(self.blob)} bytes)"

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self.blob[self.offsets[i]:self.offsets[i + 1]].decode()

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))

    @property
    def nbytes(self) -> int:
        return len(self.blob) + int(self.offsets.nbytes)

    @classmethod
    def from_list(cls, strings: Sequence[str]) -> Strings:
        encoded = [s.encode() for s in strings]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
        return cls(b"".join(encoded), offsets)


@dataclass(frozen=True, slots=True, repr=False)
class Directory:
    """Members (rows, sorted by id), their contact points and groups, as arrays.

    - ``ids``: member ids, ascending; ``index_of`` maps ids to rows;
    - ``language``: per member an index into ``languages`` (codes as given, lower case);
    - ``lat``, ``lon``: degrees, NaN when unknown;
    - ``prefs``: channel preferences as bits (:data:`CHANNEL_BITS`), 0 for none;
    - ``contacts[channel]``: per member the ids (in ``addresses``) of the contact points that
      channel uses: mobile numbers for SMS, every number for voice, addresses for e-mail;
    - ``groups`` and ``members_of``: per group (in ``groups`` order) the rows of its members;
    - ``territories``: per group a shapely geometry in (lon, lat) or None, ``geocodes`` its
      territory's geocodes (see :func:`~hub.routing.vector.geocode_key`), ``territory_error``
      True where the territory text could not be read (such a group never matches an area).
    """

    ids: IntArray
    languages: tuple[str, ...]
    language: npt.NDArray[np.uint8]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    prefs: npt.NDArray[np.uint8]
    contacts: Mapping[Channel, Csr]
    addresses: Strings
    groups: tuple[Group, ...]
    group_index: Mapping[str, int]
    members_of: Csr
    territories: npt.NDArray[np.object_]
    geocodes: tuple[frozenset[tuple[str, str]], ...]
    territory_error: BoolArray
    dropped_rows: int = 0

    def __repr__(self) -> str:
        return (f"Directory({len(self.ids)} members, {len(self.groups)} groups, "
                f"{len(self.addresses)} contact points)")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (not the group objects and their geometries)."""
        arrays = (self.ids, self.language, self.lat, self.lon, self.prefs, self.territory_error)
        return (sum(int(a.nbytes) for a in arrays) + sum(c.nbytes for c in self.contacts.values())
                + self.addresses.nbytes + self.members_of.nbytes)

    def index_of(self, member_ids: IntArray) -> tuple[IntArray, BoolArray]:
        """Rows of the given member ids, and which of them are known (others' rows are 0)."""
        if not len(self.ids):
            return np.zeros(len(member_ids), dtype=np.int64), np.zeros(len(member_ids), dtype=bool)
        rows = np.minimum(np.searchsorted(self.ids, member_ids), len(self.ids) - 1)
        known = self.ids[rows] == member_ids
        return np.where(known, rows, 0).astype(np.int64), known

    @classmethod
    def from_rows(cls, *, members: Iterable[MemberRow],
                  phones: Iterable[tuple[int, str, PhoneKind | str]] = (),
                  emails: Iterable[tuple[int, str]] = (),
                  memberships: Iterable[tuple[str, int]] = (),
                  groups: Sequence[Group] = ()) -> Directory:
        """A snapshot from rows as the store reads them. Rows are streamed, not kept.

        Phones, e-mail addresses and memberships that name an unknown member or group are
        left out and counted in ``dropped_rows`` (a snapshot read outside one transaction may
        see a member deleted in between). Raises ``ValueError`` on a member id given twice.
        """
        ids, lat, lon = array("q"), array("d"), array("d")
        language, prefs = array("B"), array("B")
        vocabulary: dict[str, int] = {}
        pref_cache: dict[str | None, int] = {}
        nan = float("nan")
        for member_id, lang, m_lat, m_lon, channels in members:
            ids.append(member_id)
            lat.append(nan if m_lat is None else m_lat)
            lon.append(nan if m_lon is None else m_lon)
            code = lang.strip().lower()
            language.append(vocabulary.setdefault(code, len(vocabulary)))
            bits = pref_cache.get(channels)
            if bits is None:
                bits = pref_cache[channels] = parse_channels(channels)
            prefs.append(bits)
        if len(vocabulary) > 255:
            raise ValueError("more than 255 distinct member languages")

        id_array = np.frombuffer(ids, dtype=np.int64)
        order = np.argsort(id_array, kind="stable")
        sorted_ids = id_array[order]
        if len(sorted_ids) > 1 and bool((sorted_ids[1:] == sorted_ids[:-1]).any()):
            raise ValueError("a member id is given twice")

        def column(values: array[Any], dtype: type[Any]) -> Any:
            return np.frombuffer(values, dtype=dtype)[order].copy()

        interned: dict[str, int] = {}
        by_channel: dict[Channel, tuple[array[int], array[int]]] = {
            c: (array("q"), array("i")) for c in CHANNELS}
        for member_id, number, kind in phones:
            address = interned.setdefault(number, len(interned))
            channels_of = PhoneKind(kind).channels
            for channel in channels_of:
                by_channel[channel][0].append(member_id)
                by_channel[channel][1].append(address)
        for member_id, email in emails:
            by_channel[Channel.EMAIL][0].append(member_id)
            by_channel[Channel.EMAIL][1].append(interned.setdefault(email, len(interned)))
        addresses = Strings.from_list(list(interned))
        del interned

        directory = cls(
            ids=sorted_ids, languages=tuple(vocabulary), language=column(language, np.uint8),
            lat=column(lat, np.float64), lon=column(lon, np.float64), prefs=column(prefs, np.uint8),
            contacts={}, addresses=addresses, groups=tuple(groups),
            group_index={g.gid: i for i, g in enumerate(groups)},
            members_of=Csr(np.zeros(len(groups) + 1, dtype=np.int64), np.zeros(0, dtype=np.int32)),
            territories=np.empty(0, dtype=object), geocodes=(), territory_error=np.zeros(0, dtype=bool))
        dropped = 0
        contacts: dict[Channel, Csr] = {}
        for channel, (owner_ids, address_ids) in by_channel.items():
            rows, known = directory.index_of(np.frombuffer(owner_ids, dtype=np.int64))
            if channel is not Channel.SMS:  # every phone row is in voice, a mobile also in SMS
                dropped += int((~known).sum())
            contacts[channel] = Csr.from_pairs(
                rows[known], np.frombuffer(address_ids, dtype=np.int32)[known], len(sorted_ids))

        group_rows, member_ids = array("q"), array("q")
        for gid, member_id in memberships:
            g = directory.group_index.get(gid)
            if g is None:
                dropped += 1
                continue
            group_rows.append(g)
            member_ids.append(member_id)
        rows, known = directory.index_of(np.frombuffer(member_ids, dtype=np.int64))
        dropped += int((~known).sum())
        members_of = Csr.from_pairs(np.frombuffer(group_rows, dtype=np.int64)[known],
                                    rows[known].astype(np.int32), len(groups))

        territories, geocodes, errors = _territories(groups)
        object.__setattr__(directory, "contacts", contacts)
        object.__setattr__(directory, "members_of", members_of)
        object.__setattr__(directory, "territories", territories)
        object.__setattr__(directory, "geocodes", geocodes)
        object.__setattr__(directory, "territory_error", errors)
        object.__setattr__(directory, "dropped_rows", dropped)
        return directory


def _territories(groups: Sequence[Group]) -> tuple[
        npt.NDArray[np.object_], tuple[frozenset[tuple[str, str]], ...], BoolArray]:
    geometries = np.empty(len(groups), dtype=object)
    geocodes: list[frozenset[tuple[str, str]]] = []
    errors = np.zeros(len(groups), dtype=bool)
    for i, group in enumerate(groups):
        codes: frozenset[tuple[str, str]] = frozenset()
        if group.territory:
            try:
                territory = parse_territory(group.territory)
            except TerritoryError:
                errors[i] = True
            else:
                geometries[i] = territory_geometry(territory)
                codes = frozenset(geocode_key(n, v) for n, v in territory.geocodes)
        geocodes.append(codes)
    return geometries, tuple(geocodes), errors


def has_territory(directory: Directory) -> BoolArray:
    """Per group, whether it has a territory (readable or not)."""
    return np.fromiter((bool(g.territory) for g in directory.groups), dtype=bool, count=len(directory.groups))
