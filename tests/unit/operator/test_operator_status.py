"""Operator status: conditions keyed by type, transition times, and rollout conditions from a StatefulSet."""

from __future__ import annotations

from typing import Any

from pygoka_operator.status import get_condition, replica_status, rollout_conditions, set_condition


def test_set_condition_keeps_transition_time_while_status_is_unchanged() -> None:
    first = set_condition([], "Ready", "False", "PodsNotReady", "0/1", 1, "2026-01-01T00:00:00Z")
    same = set_condition(first, "Ready", "False", "PodsNotReady", "0/2", 2, "2026-01-02T00:00:00Z")
    changed = set_condition(same, "Ready", "True", "PodsReady", "2/2", 2, "2026-01-03T00:00:00Z")
    assert same == [{"type": "Ready", "status": "False", "reason": "PodsNotReady", "message": "0/2",
                     "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 2}]
    assert changed[0]["lastTransitionTime"] == "2026-01-03T00:00:00Z"
    assert len(changed) == 1


def test_conditions_are_keyed_by_type_in_a_stable_order() -> None:
    conditions: list[dict[str, Any]] = []
    for type_ in ("Degraded", "Ready", "TopicsReady", "Progressing", "Ready"):
        conditions = set_condition(conditions, type_, "True", "R", "m", 1)
    assert [c["type"] for c in conditions] == ["Ready", "TopicsReady", "Progressing", "Degraded"]


def statefulset(ready: int, replicas: int, updated: int, observed: int = 3) -> dict[str, Any]:
    return {"metadata": {"generation": 3},
            "status": {"observedGeneration": observed, "replicas": replicas, "readyReplicas": ready,
                       "updatedReplicas": updated}}


def test_rollout_complete_is_ready() -> None:
    conditions = rollout_conditions([], desired=2, statefulset=statefulset(2, 2, 2), generation=5)
    assert get_condition(conditions, "Ready") is not None
    assert {c["type"]: (c["status"], c["reason"]) for c in conditions} == {
        "Ready": ("True", "PodsReady"), "Progressing": ("False", "RolloutComplete"),
        "Degraded": ("False", "AsExpected")}


def test_rolling_out_is_progressing_and_not_ready() -> None:
    conditions = rollout_conditions([], desired=3, statefulset=statefulset(2, 3, 1), generation=5)
    by_type = {c["type"]: (c["status"], c["reason"]) for c in conditions}
    assert by_type["Ready"] == ("False", "PodsNotReady")
    assert by_type["Progressing"] == ("True", "RollingOut")


def test_stale_statefulset_generation_is_not_ready() -> None:
    conditions = rollout_conditions([], desired=2, statefulset=statefulset(2, 2, 2, observed=2), generation=5)
    ready = get_condition(conditions, "Ready")
    assert ready is not None and (ready["status"], ready["reason"]) == ("False", "PodsNotReady")


def test_blocked_is_degraded_without_statefulset() -> None:
    conditions = rollout_conditions([], desired=1, statefulset=None, generation=1, blocked="topic 'x' has 3")
    by_type = {c["type"]: (c["status"], c["reason"], c["message"]) for c in conditions}
    assert by_type["Degraded"] == ("True", "ReconcileBlocked", "topic 'x' has 3")
    assert by_type["Ready"] == ("False", "NoStatefulSet", "topic 'x' has 3")


def test_replica_status() -> None:
    assert replica_status(statefulset(1, 2, 2)) == {"replicas": 2, "readyReplicas": 1}
    assert replica_status(None) == {"replicas": 0, "readyReplicas": 0}


def test_waiting_for_the_graph_is_progress_not_degradation() -> None:
    out = rollout_conditions([], desired=2, statefulset=None, generation=1, waiting="learning the topology (Job j)")
    by_type = {c["type"]: (c["status"], c["reason"]) for c in out}
    assert by_type == {"Ready": ("False", "NoStatefulSet"), "Progressing": ("True", "Waiting"),
                       "Degraded": ("False", "AsExpected")}
    assert next(c for c in out if c["type"] == "Ready")["message"] == "learning the topology (Job j)"
