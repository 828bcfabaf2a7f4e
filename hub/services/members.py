"""Groups and members: the use cases behind the REST API and the CLI.

Rights are checked here, once for every route: an account sees only the groups of its own
entity that it was granted, and changes members only when it may manage them. Anything of
another entity answers as if it did not exist. Imports, exports and erasures are audited
(who, which group, how many rows), never with the personal data themselves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

from hub.domain import Account, Channel, Entity, Group, Kind, Language, Member, MemberData, Phone
from hub.errors import HubError
from hub.members import (
    Action,
    ImportFile,
    ImportPlan,
    lookup_keys,
    parse_phone,
    plan_import,
    read_members_csv,
    write_members_csv,
)
from hub.routing.geometry import TerritoryError, parse_territory
from hub.store.base import ImportResult, MemberStore, Store

_T = TypeVar("_T")


class NotVisible(HubError):
    """The group or member does not exist for this caller (another entity's, or not granted)."""


class Forbidden(HubError):
    """The caller sees it but may not change it."""


class Invalid(HubError):
    """The request itself is wrong; the message says what and where."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an account of an entity (API), or the administrator (CLI: ``account=None``)."""

    entity: Entity | None
    account: Account | None

    @property
    def name(self) -> str:
        return f"account:{self.account.id}" if self.account else "admin"

    def sees(self, group: Group) -> bool:
        if self.account is None or self.entity is None:
            return True
        return group.entity_id == self.entity.id and self.account.grants.may_reach(group.gid)

    def manages(self, group: Group) -> bool:
        return self.sees(group) and (self.account is None or self.account.grants.manage_members)


ADMIN = Actor(None, None)


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    file: ImportFile
    plan: ImportPlan | None
    applied: bool
    result: ImportResult | None = None

    def summary(self) -> dict[str, object]:
        counts = {a.value: n for a, n in self.plan.counts.items()} if self.plan else {}
        return {"applied": self.applied, "counts": counts, "fileErrors": list(self.file.errors),
                "fileWarnings": list(self.file.warnings)}


class Members:
    def __init__(self, store: Store, members: MemberStore, *, executor: Executor | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._store = store
        self._members = members
        self._executor = executor
        self._clock = clock

    async def _cpu(self, fn: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _audit(self, actor: Actor, action: str, target: str, detail: dict[str, object]) -> None:
        await self._store.audit(actor.name, action, target, "ok", json.dumps(detail), at=self._clock())

    # --- groups ---------------------------------------------------------------------------

    async def add_group(self, actor: Actor, entity: Entity, gid: str, name: str, *, kind: str = "residents",
                        audience: Sequence[str] = (), territory: str | None = None,
                        geocodes: Sequence[tuple[str, str]] = (), languages: Sequence[Language] = (),
                        channels: Sequence[Channel] = ()) -> Group:
        if actor.account is not None and (actor.entity is None or actor.entity.id != entity.id
                                          or actor.account.grants.groups is not None):
            raise Forbidden("only an account with every group of its entity may add groups")
        if not gid or any(c.isspace() or c in ',"<&' for c in gid):
            raise Invalid(f"group id {gid!r} must be one word usable in CAP <addresses>")
        group = Group(0, gid, entity.id, name, kind=kind, audience=tuple(audience),
                      territory=_territory(territory, geocodes))
        if languages:
            group = replace(group, languages=tuple(languages))
        if channels:  # the same channels for every kind of message
            group = replace(group, channels=tuple((k, tuple(channels)) for k in Kind))
        stored = await self._members.add_group(group)
        await self._audit(actor, "group.add", f"group/{gid}", {"entity": entity.id})
        return stored

    async def group(self, actor: Actor, gid: str) -> Group:
        group = await self._members.group(gid)
        if group is None or not actor.sees(group):
            raise NotVisible(f"no group {gid!r}")
        return group

    async def groups(self, actor: Actor) -> list[Group]:
        if actor.entity is None:
            raise Invalid("listing groups needs an entity")
        return [g for g in await self._members.groups(actor.entity.id) if actor.sees(g)]

    async def update_group(self, actor: Actor, gid: str, *, name: str | None = None,
                           audience: Sequence[str] | None = None, territory: str | None = None,
                           languages: Sequence[Language] | None = None) -> Group:
        group = await self._managed(actor, gid)
        if name is not None:
            group = replace(group, name=name)
        if audience is not None:
            group = replace(group, audience=tuple(audience))
        if territory is not None:
            group = replace(group, territory=_territory(territory, ()))
        if languages is not None:
            group = replace(group, languages=tuple(languages))
        stored = await self._members.update_group(group)
        await self._audit(actor, "group.update", f"group/{gid}", {})
        return stored

    async def delete_group(self, actor: Actor, gid: str) -> int:
        """Delete a group (an account with every group of its entity, as for adding one)."""
        group = await self.group(actor, gid)
        if actor.account is not None and actor.account.grants.groups is not None:
            raise Forbidden("only an account with every group of its entity may delete groups")
        await self._managed(actor, gid)
        deleted = await self._members.delete_group(group.gid)
        await self._audit(actor, "group.delete", f"group/{gid}", {"members_deleted": deleted or 0})
        return deleted or 0

    async def _managed(self, actor: Actor, gid: str) -> Group:
        group = await self.group(actor, gid)
        if not actor.manages(group):
            raise Forbidden(f"this account may not manage the members of group {gid!r}")
        return group

    # --- members --------------------------------------------------------------------------

    async def members(self, actor: Actor, gid: str, *, search: str | None = None, limit: int = 100,
                      after_id: int | None = None) -> list[Member]:
        await self.group(actor, gid)
        if search and any(c.isdigit() for c in search):
            phone = parse_phone(search)  # numbers are stored in E.164: look for "0477 12 34 56" so
            if isinstance(phone, Phone):
                search = phone.number
        return await self._members.members(gid, search=search, limit=limit, after_id=after_id)

    async def member(self, actor: Actor, member_id: int) -> Member:
        member = await self._members.member(member_id)
        if member is None or not await self._sees_member(actor, member):
            raise NotVisible(f"no member {member_id}")
        return member

    async def _sees_member(self, actor: Actor, member: Member) -> bool:
        if actor.account is None:
            return True
        if actor.entity is None or member.entity_id != actor.entity.id:
            return False
        return any(actor.account.grants.may_reach(g) for g in member.groups)

    async def add_member(self, actor: Actor, gid: str, data: MemberData) -> Member:
        group = await self._managed(actor, gid)
        existing = await self._members.find_members(group.entity_id, external_ids=_ids(data),
                                                    contact_points=data.contact_points)
        if existing:
            raise Invalid("a member with this external id or contact point exists: update it instead")
        result = await self._members.save_members(gid, [data], [])
        await self._audit(actor, "member.add", f"group/{gid}", {"member": result.created[0]})
        return await self.member(actor, result.created[0])

    async def update_member(self, actor: Actor, member_id: int, data: MemberData) -> Member:
        member = await self.member(actor, member_id)
        gid = next(g for g in member.groups if actor.account is None or actor.account.grants.may_reach(g))
        await self._managed(actor, gid)
        await self._members.save_members(gid, [], [(member_id, data)])
        await self._audit(actor, "member.update", f"member/{member_id}", {})
        return await self.member(actor, member_id)

    async def remove_member(self, actor: Actor, gid: str, member_id: int) -> None:
        await self._managed(actor, gid)
        if not await self._members.remove_member(gid, member_id):
            raise NotVisible(f"no member {member_id} in group {gid!r}")
        await self._audit(actor, "member.remove", f"group/{gid}", {"member": member_id})

    async def erase_member(self, actor: Actor, member_id: int) -> None:
        """Erase on request (GDPR art. 17): every personal datum of the member, everywhere."""
        member = await self.member(actor, member_id)
        for gid in member.groups:
            if actor.account is not None and actor.account.grants.may_reach(gid):
                await self._managed(actor, gid)
        await self._members.erase_member(member_id)
        await self._audit(actor, "member.erase", f"member/{member_id}", {"groups": len(member.groups)})

    # --- import and export ----------------------------------------------------------------

    async def import_csv(self, actor: Actor, gid: str, data: bytes, *, dry_run: bool = False,
                         strict: bool = False, progress: Callable[[int], None] | None = None
                         ) -> ImportOutcome:
        """Read, plan and (unless ``dry_run``) store a member list in one transaction. With
        ``strict``, one refused row keeps the whole file out. ``progress`` hears 1 when the
        file is read, 2 when it is planned (3, stored, is the caller's to say)."""
        step = progress or (lambda n: None)
        group = await self._managed(actor, gid)
        default = group.languages[0] if group.languages else Language.NL
        file = await self._cpu(lambda: read_members_csv(data, default_language=default))
        if not file.ok:
            return ImportOutcome(file, None, False)
        step(1)
        external_ids, contacts = lookup_keys(file.rows)
        existing = await self._members.find_members(group.entity_id, external_ids=external_ids,
                                                    contact_points=contacts)
        current = await self._members.member_data(sorted(set(existing.values())))
        plan = await self._cpu(lambda: plan_import(file.rows, existing, current=current))
        step(2)
        if dry_run or (strict and plan.refused):
            return ImportOutcome(file, plan, False)
        # Members matched with nothing to change still join this group (they may be known
        # from another group of the entity).
        join = [r.member_id for r in plan.report if r.action is Action.UNCHANGED and r.member_id is not None]
        result = await self._members.save_members(gid, plan.creates, plan.updates, join)
        await self._audit(actor, "members.import", f"group/{gid}",
                          {"created": len(result.created), "updated": len(result.updated),
                           "refused": plan.refused, "rows": len(plan.report)})
        return ImportOutcome(file, plan, True, result)

    async def export_csv(self, actor: Actor, gid: str) -> tuple[bytes, int]:
        await self.group(actor, gid)
        everyone: list[MemberData] = []
        after: int | None = None
        while True:
            page = await self._members.members(gid, limit=1000, after_id=after)
            everyone.extend(m.data for m in page)
            if len(page) < 1000:
                break
            after = page[-1].id
        data = await self._cpu(lambda: write_members_csv(everyone))
        await self._audit(actor, "members.export", f"group/{gid}", {"rows": len(everyone)})
        return data, len(everyone)


def _ids(data: MemberData) -> tuple[str, ...]:
    return (data.external_id,) if data.external_id else ()


def _territory(text: str | None, geocodes: Sequence[tuple[str, str]]) -> str | None:
    """A group's territory as GeoJSON text, with ``--geocode NAME=VALUE`` pairs folded into
    the properties so that one value holds the whole area."""
    if text is None and not geocodes:
        return None
    try:
        parsed = json.loads(text) if text is not None else {"type": "FeatureCollection", "features": []}
    except json.JSONDecodeError as exc:
        raise Invalid(f"territory: not JSON: {exc}") from exc
    if geocodes:
        codes: dict[str, list[str]] = {}
        for name, value in geocodes:
            codes.setdefault(name, []).append(value)
        feature = {"type": "Feature", "geometry": None, "properties": {"geocodes": codes}}
        if parsed.get("type") == "FeatureCollection":
            parsed["features"] = [*parsed.get("features", []), feature]
        else:
            parsed = {"type": "FeatureCollection", "features": [
                {"type": "Feature", "geometry": parsed, "properties": {}}, feature]}
    result = json.dumps(parsed)
    try:
        parse_territory(result)
    except TerritoryError as exc:
        raise Invalid(f"territory: {exc}") from exc
    return result
