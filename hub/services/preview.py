"""Preview a campaign before anything is sent: the use case behind ``POST /campaigns:preview``.

:func:`preview_alert` takes an already built ``Alert`` (posted CAP, or a template filled in)
and the caller, checks what posting it would check but the signature (the sender belongs to
the caller's entity, the account's grants, the entity's territory), then plans it exactly as
the router would, against the entity's current groups and members, and describes the plan
(:mod:`hub.campaigns.preview`). It stores and publishes nothing. A message naming a group
the entity does not have is refused (``PreviewRefused``, 422) rather than quietly planned
without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from hub import rights
from hub.campaigns.cost import Prices
from hub.campaigns.preview import preview
from hub.cap.model import Alert, MsgType, Status
from hub.cap.problems import Problem, error
from hub.config import Settings
from hub.domain import Account, Entity, Kind, Language
from hub.errors import HubError
from hub.routing.directory import Directory
from hub.routing.plan import CampaignPlan, plan_campaign
from hub.store.base import CampaignStore, MemberStore

_T = TypeVar("_T")


class PreviewRefused(HubError):
    """The message cannot be previewed as it stands: ``status`` (HTTP) and the findings."""

    def __init__(self, status: int, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.format() for p in problems))
        self.status = status
        self.problems = problems


class PreviewStore(MemberStore, CampaignStore, Protocol):
    pass


async def preview_alert(store: PreviewStore, alert: Alert, account: Account, entity: Entity, *,
                        settings: Settings, executor: Executor | None = None,
                        now: datetime | None = None) -> dict[str, Any]:
    """The preview of ``alert`` sent by ``account`` of ``entity``: counts per channel and
    language, SMS parts and encoding per language, estimated cost. Raises ``PreviewRefused``
    (403 for rights, 422 for a message that plans nothing it names)."""
    if alert.msg_type not in (MsgType.ALERT, MsgType.UPDATE):
        raise PreviewRefused(422, [error("/alert/msgType", "preview-msg-type",
                                         f"a {alert.msg_type.value} sends nothing: "
                                         "preview an Alert or Update")])
    sender = rights.check_sender(alert, entity)
    refused = ([sender] if sender else []) + [p for p in rights.check(alert, account, entity) if p.is_error]
    if refused:
        raise PreviewRefused(403, refused)
    kind = rights.message_kind(alert)
    groups = await store.groups(entity.id)
    members, phones, emails, links = await store.directory_rows([g.gid for g in groups])
    at = now or datetime.now(UTC)

    def plan() -> CampaignPlan:
        directory = Directory.from_rows(members=members, phones=phones, emails=emails, memberships=links,
                                        groups=groups)
        return plan_campaign(alert, entity_type=entity.type, entity_groups=groups, directory=directory,
                             kind=kind if isinstance(kind, Kind) else Kind.ALERT,
                             default_language=Language.NL, now=at)

    planned = await _cpu(executor, plan)
    if planned.unknown_addresses:
        names = ", ".join(repr(g) for g in planned.unknown_addresses)
        known = ", ".join(sorted(g.gid for g in groups)) or "none"
        raise PreviewRefused(422, [error("/alert/addresses", "unknown-group",
                                         f"no group {names} in this entity (its groups: {known})")])
    sms = settings.sms
    simulation = alert.status in (Status.EXERCISE, Status.TEST) or entity.simulation or \
        settings.simulation.enabled
    return preview(alert, planned, prices=Prices.from_settings(settings.cost), sms_prefix=sms.prefix,
                   sms_max_parts=sms.max_parts, sms_policy=sms.policy, simulation=simulation,
                   voice_sender=settings.voice.sender_name, voice_max_seconds=settings.voice.max_seconds,
                   voice_confirm=settings.voice.confirm)


async def _cpu(executor: Executor | None, fn: Callable[[], _T]) -> _T:
    return await asyncio.get_running_loop().run_in_executor(executor, fn)
