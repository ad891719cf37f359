"""The operator's reconcile metrics: outcomes counted and timed, a deleted resource's series dropped."""

from __future__ import annotations

import pytest
from pygoka_operator import metrics


def sample(metric: str, **labels: str) -> float | None:
    value: float | None = metrics.REGISTRY.get_sample_value(metric, labels)
    return value


def test_outcomes_are_counted_by_kind_and_result() -> None:
    before = {result: sample("pygoka_operator_reconciles_total", kind="Unit", result=result) or 0
              for result in ("ok", "blocked", "error")}
    with metrics.reconcile("Unit") as outcome:
        outcome.blocked(None)
    with metrics.reconcile("Unit") as outcome:
        outcome.blocked("topics missing")
    with pytest.raises(RuntimeError), metrics.reconcile("Unit"):
        raise RuntimeError("API down")
    for result in before:
        assert sample("pygoka_operator_reconciles_total", kind="Unit", result=result) == before[result] + 1
    assert (sample("pygoka_operator_reconcile_errors_total", kind="Unit", error="RuntimeError") or 0) >= 1
    assert (sample("pygoka_operator_reconcile_duration_seconds_count", kind="Unit") or 0) >= 3


def test_forget_drops_the_series_of_a_deleted_group() -> None:
    metrics.replicas("ProcessorGroup", "ns", "gone", 3, 1)
    metrics.LAG.labels("ns", "gone", "g").set(12)
    metrics.DESIRED.labels("ns", "gone").set(3)
    assert sample("pygoka_operator_replicas", kind="ProcessorGroup", namespace="ns", name="gone", state="ready") == 1
    metrics.forget("ProcessorGroup", "ns", "gone")
    metrics.forget("ProcessorGroup", "ns", "gone")  # twice: nothing left to drop is fine
    assert sample("pygoka_operator_replicas", kind="ProcessorGroup", namespace="ns", name="gone", state="ready") is None
    assert sample("pygoka_operator_group_lag", namespace="ns", name="gone", group="g") is None
    assert sample("pygoka_operator_autoscaling_desired_replicas", namespace="ns", name="gone") is None
