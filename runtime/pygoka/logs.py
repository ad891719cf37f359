"""Logging of `pygoka run`: text or one JSON object per line, at a level, with librdkafka's lines among them."""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any

#: LOG_FORMATS are the values of --log-format / $PYGOKA_LOG_FORMAT.
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: LIBRDKAFKA_LOGGER receives librdkafka's own log lines (served by the clients' poll, consume and flush calls).
LIBRDKAFKA_LOGGER = logging.getLogger("pygoka.librdkafka")
# The attributes every LogRecord has: anything else was passed with extra= and goes into the JSON object.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """JsonFormatter writes a record as one JSON object: time, level, logger, message, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str, log_format: str) -> None:
    """configure_logging logs to stderr at level (INFO, DEBUG, ...) as text or json, raising ValueError naming
    what is wrong."""
    name = level.upper()
    if not isinstance(logging.getLevelName(name), int):
        raise ValueError(f"unknown log level '{level}'")
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not '{log_format}'")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=name, handlers=[handler], force=True)
