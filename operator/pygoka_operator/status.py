"""Status conditions keyed by type (Ready, GraphReady, TopicsReady, Progressing, Degraded), as pure functions."""

from __future__ import annotations

import datetime
from typing import Any

CONDITION_TYPES = ("Ready", "GraphReady", "TopicsReady", "Progressing", "Degraded")


def now() -> str:
    """now is an RFC 3339 timestamp in UTC, as Kubernetes writes them."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str,
                  generation: int | None, timestamp: str | None = None) -> list[dict[str, Any]]:
    """set_condition returns conditions with type_ set; lastTransitionTime changes only when status does."""
    previous = next((c for c in conditions if c.get("type") == type_), None)
    transition = (previous.get("lastTransitionTime") if previous is not None and previous.get("status") == status
                  else None) or timestamp or now()
    condition: dict[str, Any] = {"type": type_, "status": status, "reason": reason, "message": message,
                                 "lastTransitionTime": transition}
    if generation is not None:
        condition["observedGeneration"] = generation
    others = [c for c in conditions if c.get("type") != type_]
    ordered = [*others, condition]
    # A stable order keeps status patches minimal and kubectl output readable.
    return sorted(ordered, key=lambda c: CONDITION_TYPES.index(c["type"]) if c["type"] in CONDITION_TYPES else 99)


def get_condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    """get_condition is the condition of type_, if any."""
    return next((c for c in conditions if c.get("type") == type_), None)


def rollout_conditions(conditions: list[dict[str, Any]], *, desired: int, statefulset: dict[str, Any] | None,
                       generation: int | None, blocked: str | None = None, waiting: str | None = None,
                       timestamp: str | None = None) -> list[dict[str, Any]]:
    """rollout_conditions sets Ready, Progressing and Degraded from the StatefulSet's status.

    blocked names why the StatefulSet was not created or updated (topics not ready, a configuration error);
    waiting names a step under way before it may be (the graph being learnt): progress, not degradation.
    """
    sts_status = (statefulset or {}).get("status") or {}
    sts_generation = ((statefulset or {}).get("metadata") or {}).get("generation")
    ready = int(sts_status.get("readyReplicas") or 0)
    updated = int(sts_status.get("updatedReplicas") or 0)
    current = (statefulset is not None and sts_status.get("observedGeneration") == sts_generation
               and updated >= desired and int(sts_status.get("replicas") or 0) == desired)
    out = conditions
    if blocked is not None:
        out = set_condition(out, "Degraded", "True", "ReconcileBlocked", blocked, generation, timestamp)
        out = set_condition(out, "Progressing", "False", "ReconcileBlocked", blocked, generation, timestamp)
    elif waiting is not None:
        out = set_condition(out, "Degraded", "False", "AsExpected", "reconciled", generation, timestamp)
        out = set_condition(out, "Progressing", "True", "Waiting", waiting, generation, timestamp)
    else:
        out = set_condition(out, "Degraded", "False", "AsExpected", "reconciled", generation, timestamp)
        if current and ready >= desired:
            out = set_condition(out, "Progressing", "False", "RolloutComplete",
                                f"{ready}/{desired} pods ready and updated", generation, timestamp)
        else:
            out = set_condition(out, "Progressing", "True", "RollingOut",
                                f"{ready}/{desired} pods ready, {updated} updated", generation, timestamp)
    if statefulset is None:
        out = set_condition(out, "Ready", "False", "NoStatefulSet", blocked or waiting or "StatefulSet not created yet",
                            generation, timestamp)
    elif ready >= desired and current:
        out = set_condition(out, "Ready", "True", "PodsReady", f"{ready}/{desired} pods ready", generation, timestamp)
    else:
        out = set_condition(out, "Ready", "False", "PodsNotReady", f"{ready}/{desired} pods ready", generation,
                            timestamp)
    return out


def replica_status(statefulset: dict[str, Any] | None) -> dict[str, int]:
    """replica_status is status.replicas and status.readyReplicas from the StatefulSet."""
    sts_status = (statefulset or {}).get("status") or {}
    return {"replicas": int(sts_status.get("replicas") or 0),
            "readyReplicas": int(sts_status.get("readyReplicas") or 0)}
