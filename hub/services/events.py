"""Reading the ``alert.*`` events that ingest publishes (JSON: the stored alert's id, its
status, scope, msgType, the ids it references...), the same way in every stage."""

from __future__ import annotations

import json
from typing import Any

from hub.broker.base import Reject


def alert_event(body: bytes) -> tuple[dict[str, Any], int, list[int]]:
    """The event's fields, its alert id and the ids of the alerts it references; ``Reject``
    (to the dead letters: it will never read better) when the body is not such an event."""
    try:
        event = json.loads(body)
        return event, int(event["id"]), [int(r) for r in event.get("references", [])]
    except (ValueError, KeyError, TypeError) as exc:
        raise Reject(f"not an alert event: {exc}") from exc
