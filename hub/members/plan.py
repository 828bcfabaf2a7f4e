"""Read rows + the entity's existing members → what an import would do, row by row.

Pure: the caller looks the keys up in the store first (``lookup_keys`` → the store's
``find_members``) and saves ``plan.creates`` and ``plan.updates`` in one transaction.

Per row, in file order:

- a row ``read_members_csv`` refused stays refused, with its reasons;
- **the same member twice in the file**: a row sharing its external id or any contact point
  (number or e-mail address) with an earlier accepted row, or matching the same stored
  member, is that member again. If its data are identical, it is ``duplicate`` (``duplicate_of``
  the earlier row; nothing to do, not a refusal, so ``--strict`` lets it pass). If they differ
  it is refused, naming the earlier row: merging two differing rows would guess which name,
  language or address is right, and two people sharing a household number cannot both own it
  in one group, so the coordinator decides;
- **update** when the row's external id names a stored member (``matched_on`` "external id
  X"), else when its contact points name exactly one stored member ("contact point +32...");
- refused when the external id names one member but a contact point belongs to another,
  or when the contact points name several members: saving would take a number from someone;
- **create** otherwise.

With ``current`` (the stored data of the matched members), updates keep a stored external id
the row does not give, a row whose external id differs from the one stored is refused, rows
whose data equal the stored ones are ``unchanged``, and an update that drops stored numbers or
addresses says so in its warnings. Without it the store replaces the member's data with the
row's, as the report's "update" says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from hub.domain import MemberData
from hub.members.csvin import ImportRow


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"  # matched a stored member whose data are the same (needs ``current``)
    DUPLICATE = "duplicate"  # the same data as an earlier row of the file: skipped
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class RowReport:
    row: int
    action: Action
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    member_id: int | None = None  # the stored member updated (or unchanged)
    matched_on: str | None = None  # "external id X" or "contact point +32..."
    duplicate_of: int | None = None  # the earlier row of the same member


@dataclass(slots=True)
class ImportPlan:
    creates: list[MemberData] = field(default_factory=list)
    updates: list[tuple[int, MemberData]] = field(default_factory=list)
    report: list[RowReport] = field(default_factory=list)

    def count(self, action: Action) -> int:
        return sum(1 for r in self.report if r.action is action)

    @property
    def counts(self) -> dict[Action, int]:
        totals = dict.fromkeys(Action, 0)
        for r in self.report:
            totals[r.action] += 1
        return totals

    @property
    def refused(self) -> int:
        return self.count(Action.REFUSE)


def lookup_keys(rows: Iterable[ImportRow]) -> tuple[list[str], list[str]]:
    """``(external_ids, contact_points)`` of the accepted rows, each once: what to ask the
    store's ``find_members`` for."""
    ids: dict[str, None] = {}
    contacts: dict[str, None] = {}
    for row in rows:
        if row.member is not None:
            if row.member.external_id:
                ids[row.member.external_id] = None
            contacts.update(dict.fromkeys(row.member.contact_points))
    return list(ids), list(contacts)


def plan_import(rows: Iterable[ImportRow], existing: Mapping[str, int], *,
                current: Mapping[int, MemberData] | None = None) -> ImportPlan:
    """Decide, per row, create, update, unchanged, duplicate or refuse. ``existing`` maps the
    entity's external ids and contact points (E.164 numbers, e-mail addresses) to member ids,
    as the store's ``find_members`` returns them."""
    planner = _Planner(existing, current)
    for row in rows:
        planner.add(row)
    return planner.plan


class _Planner:
    def __init__(self, existing: Mapping[str, int], current: Mapping[int, MemberData] | None) -> None:
        self.existing = existing
        self.current = current
        self.plan = ImportPlan()
        # Keys of the accepted rows: contact points as they are (E.164 numbers start with +,
        # e-mail addresses hold an @), "\0x" + external id, "\0m" + stored member id.
        self.seen: dict[str, int] = {}  # → the row number
        self.accepted: dict[int, MemberData] = {}  # row number → its member

    def add(self, row: ImportRow) -> None:
        member = row.member
        if member is None:
            self._report(row, Action.REFUSE, reasons=row.reasons)
            return
        points = member.contact_points
        target, matched_on, reasons = self._match(member, points)
        if reasons:
            self._report(row, Action.REFUSE, reasons=tuple(reasons))
            return
        keys = list(points)
        if member.external_id:
            keys.append("\0x" + member.external_id)
        if target is not None:
            keys.append(f"\0m{target}")
        if self._duplicate(row, member, keys):
            return
        if target is None:
            self.plan.creates.append(member)
            self._report(row, Action.CREATE)
        elif not self._update(row, member, target, matched_on):
            return
        self.accepted[row.row] = member
        for key in keys:
            self.seen.setdefault(key, row.row)

    def _match(self, member: MemberData, points: tuple[str, ...]
               ) -> tuple[int | None, str | None, list[str]]:
        """The stored member this row is, on what, or why it cannot be told."""
        by_contact: dict[int, str] = {}
        for point in points:
            found = self.existing.get(point)
            if found is not None:
                by_contact.setdefault(found, point)
        if member.external_id and member.external_id in self.existing:
            target = self.existing[member.external_id]
            others = [f"{point} belongs to member #{mid}" for mid, point in by_contact.items()
                      if mid != target]
            if others:
                return None, None, [f"external id {member.external_id} is member #{target}, but "
                                    + "; ".join(others)]
            return target, f"external id {member.external_id}", []
        if len(by_contact) > 1:
            named = ", ".join(f"{point} (#{mid})" for mid, point in by_contact.items())
            return None, None, [f"its contact points belong to different members: {named}"]
        for mid, point in by_contact.items():
            return mid, f"contact point {point}", []
        return None, None, []

    def _duplicate(self, row: ImportRow, member: MemberData, keys: list[str]) -> bool:
        earlier = sorted({self.seen[key] for key in keys if key in self.seen})
        if not earlier:
            return False
        first = earlier[0]
        if len(earlier) == 1 and self.accepted[first] == member:
            self._report(row, Action.DUPLICATE, duplicate_of=first,
                         warnings=(f"the same member as row {first}: skipped",))
            return True
        rows = " and ".join(str(r) for r in earlier)
        self._report(row, Action.REFUSE, duplicate_of=first, reasons=(
            f"the same member as row {rows} (same external id, number, e-mail address or stored "
            "member) with other data: keep one row",))
        return True

    def _update(self, row: ImportRow, member: MemberData, target: int, matched_on: str | None) -> bool:
        """Plan the update (or see that nothing changes); False if refused."""
        stored = None if self.current is None else self.current.get(target)
        warnings: list[str] = []
        if stored is not None:
            if member.external_id is None and stored.external_id is not None:
                member = dataclasses.replace(member, external_id=stored.external_id)
            elif member.external_id != stored.external_id and stored.external_id is not None:
                self._report(row, Action.REFUSE, member_id=target, matched_on=matched_on, reasons=(
                    f"matched member #{target} on {matched_on}, but its external id is "
                    f"{stored.external_id}, not {member.external_id}",))
                return False
            if member == stored:
                self._report(row, Action.UNCHANGED, member_id=target, matched_on=matched_on)
                return True
            dropped = [p for p in stored.contact_points if p not in member.contact_points]
            if dropped:
                warnings.append(f"removes {', '.join(dropped)} from member #{target}")
        self.plan.updates.append((target, member))
        self._report(row, Action.UPDATE, member_id=target, matched_on=matched_on,
                     warnings=tuple(warnings))
        return True

    def _report(self, row: ImportRow, action: Action, *, reasons: tuple[str, ...] = (),
                warnings: tuple[str, ...] = (), member_id: int | None = None,
                matched_on: str | None = None, duplicate_of: int | None = None) -> None:
        self.plan.report.append(RowReport(row.row, action, reasons, row.warnings + warnings,
                                          member_id, matched_on, duplicate_of))

