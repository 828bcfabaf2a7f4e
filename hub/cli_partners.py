"""`cap-hub admin subscription add|list|remove`: partner push subscriptions, as the
administrator of the data directory (``hub.partners`` says what a partner receives)."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from hub.cli_common import add_data_option, with_store
from hub.config import Settings
from hub.errors import HubError
from hub.outputs.feed import FilterError
from hub.partners import FILTER_PARAMS, SIGNATURE_HEADER, Subscription, SubscriptionError, SubscriptionStats
from hub.services import subscriptions as subs
from hub.store.base import Conflict
from hub.store.sqlite import SqliteStore


def register(admin_cmds: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sub = admin_cmds.add_parser("subscription", help="partner push subscriptions").add_subparsers(
        title="subscription commands", metavar="ACTION")
    a = sub.add_parser("add", help="register a partner's callback URL",
                       description="Each change (new, update, cancel) of a public Actual alert the filters "
                                   "match is POSTed to URL as hub-signed CAP (application/cap+xml) with "
                                   f"{SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the body under SECRET>.")
    a.add_argument("name", help="unique; how lists and logs name it")
    a.add_argument("--url", required=True, help="http(s) callback URL")
    a.add_argument("--secret", required=True, help="the shared HMAC secret (16 characters or more)")
    for param in FILTER_PARAMS:
        a.add_argument(f"--{param}", help=f"the feeds' {param} filter (as in /feeds/alerts.atom?{param}=...)")
    add_data_option(a)
    a.set_defaults(run=_add)

    ls = sub.add_parser("list", help="subscriptions with their deliveries and latest failure")
    ls.add_argument("--json", action="store_true", help="one JSON document")
    add_data_option(ls)
    ls.set_defaults(run=_list)

    rm = sub.add_parser("remove", help="remove a subscription (by name or id)")
    rm.add_argument("subscription")
    add_data_option(rm)
    rm.set_defaults(run=_remove)


def _add(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    filters = {p: getattr(args, p) for p in FILTER_PARAMS if getattr(args, p) is not None}
    try:
        found = with_store(args, settings, lambda store: subs.add(
            store, args.name, args.url, args.secret, filters, entity_id=None, actor="admin",
            allow_private=settings.push.allow_private))
    except (SubscriptionError, FilterError, Conflict) as exc:
        raise HubError(f"subscription not added: {exc}") from exc
    print(f"subscription {found.name} (id {found.id}) -> {found.url}"
          f"{' where ' + found.filters if found.filters else ' (every public alert)'}", file=out)
    return 0


def _list(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    async def read(store: SqliteStore) -> tuple[list[Subscription], dict[int, SubscriptionStats]]:
        return await store.subscriptions(), await store.subscription_stats()

    found, stats = with_store(args, settings, read)
    if args.json:
        print(json.dumps({"subscriptions": [subs.to_json(s, stats.get(s.id)) for s in found]}, indent=2),
              file=out)
        return 0
    if not found:
        print("no subscriptions", file=out)
    for s in found:
        st = stats.get(s.id, SubscriptionStats())
        print(f"{s.id}\t{s.name}\t{s.url}\t{s.filters or '-'}\tdelivered {st.delivered}, "
              f"pending {st.pending}, failed {st.failed}", file=out)
        if st.last_failure_at is not None:
            print(f"\tlast failure {st.last_failure_at:%Y-%m-%d %H:%M:%S}Z: {st.last_failure}", file=out)
    return 0


def _remove(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    try:
        found = with_store(args, settings, lambda store: subs.remove(
            store, args.subscription, entity_id=None, actor="admin"))
    except subs.NoSuchSubscription as exc:
        raise HubError(str(exc)) from exc
    print(f"removed subscription {found.name} (id {found.id})", file=out)
    return 0
