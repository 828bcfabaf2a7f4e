"""Logging set-up: text for people or JSON lines for collectors.

Log calls across the hub pass ids, codes and counts, never personal data (phone numbers,
e-mail addresses, names) or tokens.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from hub.config import LogSettings

# Libraries that log whole payloads at debug level: aiosqlite the SQL parameters (received CAP,
# token hashes), signxml each canonicalized document, aiormq every AMQP frame. Those carry
# personal data, so these loggers never go below info, whatever the hub's own level.
PAYLOAD_LOGGERS = ("aiosqlite", "signxml", "aiormq", "aio_pika")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup(settings: LogSettings) -> None:
    handler = logging.StreamHandler()
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # access lines carry no value here
    for name in PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(max(root.level, logging.INFO))
