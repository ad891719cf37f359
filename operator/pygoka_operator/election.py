"""Leader election between operator replicas through kopf peering.

kopf pauses an operator while a live peer with a higher priority exists, and pauses *every* operator when
peers share a priority. So each replica gets its own priority: the earlier a replica started, the higher it
is, which makes the longest-running replica the leader and a restarted one a follower. A leader that stops
cleanly removes itself from the peering object; one that dies is dropped once its keep-alive lifetime ends.
"""

from __future__ import annotations

import os
import time
from typing import Any

import kopf

#: PRIORITY_CEILING keeps start-time priorities positive (epoch milliseconds stay below it for centuries).
PRIORITY_CEILING = 10**13


def start_priority(now: float | None = None) -> int:
    """start_priority is higher for replicas that started earlier (millisecond resolution: no ties in practice)."""
    return PRIORITY_CEILING - int((time.time() if now is None else now) * 1000)


@kopf.on.startup()
def peering_lifetime(settings: kopf.OperatorSettings, **_: Any) -> None:
    """peering_lifetime: seconds after a replica's last keep-alive before the others consider it dead."""
    lifetime = os.environ.get("PYGOKA_OPERATOR_PEERING_LIFETIME", "")
    if lifetime:
        settings.peering.lifetime = int(lifetime)
