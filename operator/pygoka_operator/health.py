"""Operator liveness: kopf serves this probe at /healthz (`--liveness=http://0.0.0.0:8080/healthz`)."""

from __future__ import annotations

import datetime
from typing import Any

import kopf


@kopf.on.probe(id="now")
def now(**_: Any) -> str:
    """now proves the event loop answers; kopf reports an unhealthy operator when probes fail or hang."""
    return datetime.datetime.now(datetime.UTC).isoformat()
