"""pygoka.logs: JSON lines with time, level, logger, message, the record's extra fields and its exception."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from pygoka.logs import JsonFormatter, configure_logging


def test_a_record_is_one_json_object_with_extras_and_exception() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        record = logging.getLogger("pygoka.test").makeRecord(
            "pygoka.test", logging.WARNING, __file__, 1, "partition %d failed", (3,), exc_info=sys.exc_info(),
            extra={"group": "clicks", "partition": 3})
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "WARNING" and entry["logger"] == "pygoka.test"
    assert entry["message"] == "partition 3 failed"
    assert entry["group"] == "clicks" and entry["partition"] == 3
    assert entry["time"].endswith("+00:00") and "ValueError: bad value" in entry["exception"]


@pytest.mark.parametrize(("level", "log_format", "message"), [
    ("LOUD", "text", "unknown log level 'LOUD'"),
    ("INFO", "xml", "log format must be one of text, json, not 'xml'"),
])
def test_bad_settings_are_refused(level: str, log_format: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        configure_logging(level, log_format)
