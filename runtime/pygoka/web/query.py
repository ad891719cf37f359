"""Table queries: GET /tables/{table}/{key} answers the decoded value of a key as JSON.

Values are returned as JSON when the codec decoded them to JSON-representable data (str, numbers,
lists, dicts, ...); bytes (the Bytes codec) are returned base64-encoded, anything else as its str().
The answer's "encoding" field ("json", "base64" or "str") says which was done.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from pygoka.errors import NotRunningError, PygokaError, StorageError
from pygoka.processor import Processor
from pygoka.view import View
from pygoka.web.monitor import Monitor, processor_table


@dataclass
class QueryResult:
    """QueryResult is an HTTP status and the JSON body answering a query."""

    status: int
    body: dict[str, Any]


def encode_value(value: Any) -> tuple[Any, str]:
    """encode_value turns a decoded table value into JSON data and the name of the encoding used."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii"), "base64"
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return str(value), "str"
    return value, "json"


def holders(monitor: Monitor, table: str) -> list[Processor | View]:
    """holders are the attached processors and views that hold table, processors first."""
    found: list[Processor | View] = [p for p in monitor.processors if processor_table(p) == table]
    found += [v for v in monitor.views if v.table == table]
    return found


def query(monitor: Monitor, table: str, key: str) -> QueryResult:
    """query reads key of table from the first attached object holding the key's partition."""
    candidates = holders(monitor, table)
    if not candidates:
        return QueryResult(400, {"error": f"unknown table '{table}'", "tables": monitor.table_names()})
    reasons: list[str] = []
    unavailable = True
    for holder in candidates:
        try:
            value = holder.get(key)
        except (NotRunningError, StorageError) as exc:
            reasons.append(str(exc))
            continue
        except PygokaError as exc:
            # A processor holds only its own partitions: the key may live on another instance.
            reasons.append(str(exc))
            unavailable = False
            continue
        if value is None:
            return QueryResult(404, {"error": f"key '{key}' not found in table '{table}'", "table": table,
                                     "key": key})
        data, encoding = encode_value(value)
        return QueryResult(200, {"table": table, "key": key, "value": data, "encoding": encoding})
    return QueryResult(503 if unavailable else 404, {"error": "; ".join(reasons), "table": table, "key": key})
