"""`cap-hub admin group add` and `cap-hub members import|export|erase`: groups and member lists
from the command line, as the administrator of the data directory."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO, TypeVar

from hub.cli_common import add_data_option, read_file, with_store
from hub.config import Settings
from hub.domain import Channel, Language
from hub.errors import HubError
from hub.members import Action
from hub.services.members import ADMIN, ImportOutcome, Members
from hub.store.sqlite import SqliteStore

T = TypeVar("T")
SHOW_ROWS = 50


def register(top: argparse._SubParsersAction, admin_cmds: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = admin_cmds.add_parser("group", help="PLP groups").add_subparsers(title="group commands",
                                                                             metavar="ACTION")
    g = group.add_parser("add", help="create a group of an entity")
    g.add_argument("entity")
    g.add_argument("name")
    g.add_argument("--id", required=True, dest="gid", help="the group's id, as CAP <addresses> name it")
    g.add_argument("--territory", type=Path, metavar="FILE", help="GeoJSON: Polygon, MultiPolygon or "
                   "a FeatureCollection of them (lon/lat order)")
    g.add_argument("--geocode", nargs="+", default=[], metavar="NAME=VALUE",
                   help="geocodes of its area, e.g. NIS=21004 postcode=1000")
    g.add_argument("--audience", nargs="+", default=[], metavar="TAG")
    g.add_argument("--kind", default="residents", help="residents, shops, farmers, ...")
    g.add_argument("--languages", default="", help="default languages, e.g. nl,fr")
    g.add_argument("--channels", default="", help="channels for every kind of message, e.g. sms,voice,email")
    add_data_option(g)
    g.set_defaults(run=_group_add)

    members = top.add_parser("members", help="member lists of PLP groups").add_subparsers(
        title="members commands", metavar="ACTION")
    i = members.add_parser("import", help="import a CSV member list into a group")
    i.add_argument("file", type=Path, metavar="FILE")
    i.add_argument("--group", required=True, help="the group's id")
    i.add_argument("--dry-run", action="store_true", help="report what would happen; change nothing")
    i.add_argument("--strict", action="store_true", help="import nothing when any row is refused")
    add_data_option(i)
    i.set_defaults(run=_import)
    e = members.add_parser("export", help="write a group's members as CSV (audited)")
    e.add_argument("file", type=Path, nargs="?", metavar="FILE", help="default: standard output")
    e.add_argument("--group", required=True, help="the group's id")
    add_data_option(e)
    e.set_defaults(run=_export)
    x = members.add_parser("erase", help="erase a member's personal data everywhere (audited)")
    x.add_argument("member", type=int, metavar="ID")
    add_data_option(x)
    x.set_defaults(run=_erase)


def _with_members(args: argparse.Namespace, settings: Settings,
                  work: Callable[[Members, SqliteStore], Awaitable[T]]) -> T:
    return with_store(args, settings, lambda store: work(Members(store, store), store))


def _list(value: str, kind: type[Language] | type[Channel], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    allowed = {k.value for k in kind}
    bad = [v for v in items if v not in allowed]
    if bad:
        raise HubError(f"--{what}: {bad[0]!r} is not one of {', '.join(sorted(allowed))}")
    return items


def _group_add(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    geocodes = []
    for spec in args.geocode:
        name, sep, value = spec.partition("=")
        if not sep or not name or not value:
            raise HubError(f"--geocode {spec!r}: expected NAME=VALUE, e.g. NIS=21004")
        geocodes.append((name, value))
    languages = [Language(v) for v in _list(args.languages, Language, "languages")]
    channels = [Channel(v) for v in _list(args.channels, Channel, "channels")]
    territory = read_file(args.territory, "territory").decode("utf-8", "replace") if args.territory else None

    async def work(members: Members, store: SqliteStore) -> str:
        entity = await store.entity_by_name(args.entity)
        if entity is None:
            raise HubError(f"no entity named {args.entity!r}")
        group = await members.add_group(ADMIN, entity, args.gid, args.name, kind=args.kind,
                                        audience=args.audience, territory=territory, geocodes=geocodes,
                                        languages=languages, channels=channels)
        return group.gid

    gid = _with_members(args, settings, work)
    print(f"group {gid} added to {args.entity}", file=out)
    return 0


class _Progress:
    """A one-line progress bar over the steps of an import, on standard error."""

    STEPS = ("reading", "planning", "storing")

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.start = time.monotonic()
        self.live = stream.isatty()

    def step(self, n: int) -> None:
        width = 30
        done = width * n // len(self.STEPS)
        label = self.STEPS[min(n, len(self.STEPS) - 1)] if n < len(self.STEPS) else "done"
        elapsed = time.monotonic() - self.start
        line = f"[{'#' * done}{'.' * (width - done)}] {n}/{len(self.STEPS)} {label} {elapsed:5.1f}s"
        if self.live:
            self.stream.write("\r" + line + ("\n" if n == len(self.STEPS) else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _import(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    data = read_file(args.file, "member list")
    progress = _Progress(sys.stderr)
    progress.step(0)
    outcome = _with_members(args, settings, lambda members, _: members.import_csv(
        ADMIN, args.group, data, dry_run=args.dry_run, strict=args.strict, progress=progress.step))
    progress.step(3)
    _report(outcome, args, out)
    if not outcome.file.ok:
        return 1
    return 1 if args.strict and outcome.plan is not None and outcome.plan.refused else 0


def _report(outcome: ImportOutcome, args: argparse.Namespace, out: TextIO) -> None:
    for message in outcome.file.errors:
        print(f"{args.file}: {message}", file=out)
    for message in outcome.file.warnings:
        print(f"{args.file}: warning: {message}", file=out)
    plan = outcome.plan
    if plan is None:
        print("nothing imported: the file was refused", file=out)
        return
    counts = plan.counts
    width = max(len(a.value) for a in Action)
    print(f"{'rows':<{width}}  {len(plan.report):>8}", file=out)
    for action in Action:
        print(f"{action.value:<{width}}  {counts[action]:>8}", file=out)
    shown = [r for r in plan.report if r.action in (Action.REFUSE, Action.DUPLICATE) or r.warnings]
    for r in shown[:SHOW_ROWS]:
        why = "; ".join(r.reasons + r.warnings) or (f"same as row {r.duplicate_of}" if r.duplicate_of else "")
        print(f"row {r.row}: {r.action.value}: {why}", file=out)
    if len(shown) > SHOW_ROWS:
        print(f"... and {len(shown) - SHOW_ROWS} more rows (use the API's report for all)", file=out)
    if outcome.applied:
        print(f"imported into {args.group}: {counts[Action.CREATE]} created, "
              f"{counts[Action.UPDATE]} updated", file=out)
    elif args.dry_run:
        print("dry run: nothing was changed", file=out)
    else:
        print(f"nothing imported: {plan.refused} row(s) refused and --strict was given", file=out)


def _export(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    data, count = _with_members(args, settings, lambda members, _: members.export_csv(ADMIN, args.group))
    if args.file is None:
        sys.stdout.buffer.write(data)
    else:
        args.file.write_bytes(data)
        print(f"{count} members of {args.group} written to {args.file}", file=out)
    return 0


def _erase(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    _with_members(args, settings, lambda members, _: members.erase_member(ADMIN, args.member))
    print(f"member {args.member} erased", file=out)
    return 0
