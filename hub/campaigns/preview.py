"""What an alert would cost and look like before anything is sent, pure: from the alert and
its campaign plan to the counts per channel and language, the SMS of each language (parts,
encoding, the characters that force UCS-2 and a GSM-7 rewrite that avoids them) and the
estimated cost.

A call is estimated from its voice script (:func:`hub.voice.script.voice_script`): the
script's spoken length, billed per started minute, as a call that plays it to the end costs.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from hub.campaigns.cost import Prices, euro
from hub.cap.model import Alert, Info
from hub.domain import Channel
from hub.outputs.gsm import is_gsm7
from hub.outputs.sms_text import Policy, SmsEncoding, SmsText, sms_text
from hub.routing.plan import CampaignPlan
from hub.voice.script import VoiceScript, voice_script


def sms_preview(info: Info, *, prefix: str, max_parts: int, policy: Policy) -> tuple[SmsText, dict[str, Any]]:
    """The SMS of one info as it would go out, and what the preview says of it."""
    sms = sms_text(info, prefix=prefix, max_parts=max_parts, policy=policy)
    forcing = sorted({ch for ch in sms.text if not is_gsm7(ch)})
    out: dict[str, Any] = {
        "language": info.lang, "text": sms.text, "characters": len(sms.text), "encoding": sms.encoding.value,
        "parts": sms.part_count, "truncated": sms.truncated, "ucs2Characters": forcing,
        "replacements": [list(r) for r in sms.replacements], "gsm7Rewrite": None,
    }
    if sms.encoding is SmsEncoding.UCS2:
        rewrite = sms_text(info, prefix=prefix, max_parts=max_parts, policy="downgrade")
        if rewrite.encoding is SmsEncoding.GSM7:
            out["gsm7Rewrite"] = {"text": rewrite.text, "parts": rewrite.part_count,
                                  "replacements": [list(r) for r in rewrite.replacements],
                                  "truncated": rewrite.truncated}
        else:  # an emoji or another script has no GSM-7 form: it stays UCS-2 whatever is done
            out["gsm7Rewrite"] = {"text": None, "parts": None, "replacements": [],
                                  "impossible": sorted({ch for ch in rewrite.text if not is_gsm7(ch)})}
    return sms, out


def voice_preview(script: VoiceScript) -> dict[str, Any]:
    """What the preview says of one language's call."""
    return {"language": script.language, "text": script.text, "seconds": script.seconds,
            "minutes": script.minutes, "shortened": list(script.shortened)}


def preview(alert: Alert, plan: CampaignPlan, *, prices: Prices, sms_prefix: str, sms_max_parts: int,
            sms_policy: Policy, simulation: bool = False, voice_sender: str = "BE-Alert",
            voice_max_seconds: float = 90.0, voice_confirm: bool = False) -> dict[str, Any]:
    """The preview of ``alert`` planned as ``plan`` (see the module's documentation)."""
    texts: dict[int, SmsText] = {}
    scripts: dict[int, VoiceScript] = {}
    sms_json: list[dict[str, Any]] = []
    voice_json: list[dict[str, Any]] = []
    per_channel: dict[str, dict[str, int]] = {}
    cost: dict[str, Decimal] = {c.value: Decimal(0) for c in Channel}
    parts_total = 0
    if Channel.SMS in plan.per_channel():
        for index in plan.infos:
            texts[index], described = sms_preview(alert.infos[index], prefix=sms_prefix,
                                                   max_parts=sms_max_parts, policy=sms_policy)
            sms_json.append(described)
    if Channel.VOICE in plan.per_channel():
        for index in plan.infos:
            scripts[index] = voice_script(alert.infos[index], sender=voice_sender,
                                          max_seconds=voice_max_seconds, confirm=voice_confirm)
            voice_json.append(voice_preview(scripts[index]))
    for channel in plan.per_channel():
        languages: Counter[str] = Counter()
        for batch in plan.batches(channel, 5_000):
            for d in batch:
                languages[d.language] += 1
                if channel is Channel.SMS:
                    parts = texts[d.info].part_count
                    parts_total += parts
                    cost["sms"] += prices.sms(d.address, parts)
                elif channel is Channel.VOICE:
                    cost["voice"] += prices.voice(d.address, scripts[d.info].seconds)
        per_channel[channel.value] = dict(sorted(languages.items()))
    by_language: Counter[str] = Counter()
    for counted in per_channel.values():
        by_language.update(counted)
    return {
        "simulation": simulation,
        "reason": plan.reason,
        "groups": list(plan.groups),
        "groupsUndecided": list(plan.groups_undecided),
        "unknownGroups": list(plan.unknown_addresses),
        "members": plan.members_matched,
        "membersUnreached": plan.members_unreached,
        "skipped": dict(plan.skipped),
        "duplicates": {c.value: n for c, n in plan.duplicates.items() if n},
        "notes": list(plan.notes),
        "total": len(plan),
        "deliveries": per_channel,
        "languages": dict(sorted(by_language.items())),
        "sms": sms_json,
        "smsParts": parts_total,
        "cost_eur": {**{c: euro(v) for c, v in cost.items()}, "total": euro(sum(cost.values(), Decimal(0)))},
        "voice": voice_json,
        "billed": not simulation,  # a simulation costs nothing; the figures say what it would
    }
