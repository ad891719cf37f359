"""The scaling decision as a pure function: target replicas from lag, with HPA-like stabilisation windows.

The caller keeps the recommendation history (Decision.history) and the time of the last scaling between
calls; nothing here reads a clock or Kubernetes, so every rule is unit-testable with made-up times.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Policy:
    """Policy is spec.autoscaling with the partition count (a replica beyond it would own no partition)."""

    min_replicas: int
    max_replicas: int | None
    target_lag_per_replica: int
    scale_up_window: float
    scale_down_window: float
    interval: float
    partitions: int

    @property
    def upper(self) -> int:
        """upper is min(maxReplicas, partitions)."""
        cap = self.partitions if self.max_replicas is None else min(self.max_replicas, self.partitions)
        return max(cap, 1)

    @property
    def lower(self) -> int:
        """lower is minReplicas, never above upper (partitions may be fewer than minReplicas)."""
        return max(min(self.min_replicas, self.upper), 1)


def policy_from_spec(spec: Mapping[str, Any]) -> Policy:
    """policy_from_spec reads a defaulted ProcessorGroup spec."""
    auto = spec.get("autoscaling") or {}
    maximum = auto.get("maxReplicas")
    return Policy(min_replicas=int(auto.get("minReplicas", 1)),
                  max_replicas=None if maximum is None else int(maximum),
                  target_lag_per_replica=max(int(auto.get("targetLagPerReplica", 1000)), 1),
                  scale_up_window=float(auto.get("scaleUpStabilizationSeconds", 30)),
                  scale_down_window=float(auto.get("scaleDownStabilizationSeconds", 300)),
                  interval=float(auto.get("intervalSeconds", 15)),
                  partitions=int(spec["partitions"]))


@dataclass(frozen=True)
class Sample:
    """Sample is one recommendation (clamped desired replicas) and when it was made."""

    time: float
    replicas: int


@dataclass(frozen=True)
class Decision:
    """Decision is what to do now: replicas is the new target (== current when holding) and why."""

    current: int
    desired: int
    replicas: int
    reason: str
    message: str
    history: tuple[Sample, ...]

    @property
    def scale(self) -> bool:
        """scale is whether replicas must be written."""
        return self.replicas != self.current


def recommend(lag: int, policy: Policy) -> int:
    """recommend is ceil(lag / targetLagPerReplica) clamped to [lower, upper]."""
    raw = math.ceil(max(lag, 0) / policy.target_lag_per_replica)
    return min(max(raw, policy.lower), policy.upper)


def stabilized(history: Sequence[Sample], now: float, window: float, up: bool) -> int | None:
    """stabilized is the recommendation that held for the whole window, or None if not observed that long.

    Like the HPA: scaling up goes to the lowest recommendation of the window, scaling down to the highest,
    so a single spike (or a single idle measurement) never moves the group.
    """
    start = now - window
    before = [sample for sample in history if sample.time <= start]
    if not before:
        return None
    # The last sample at or before the window start was in force at its beginning.
    relevant = [before[-1], *(sample for sample in history if sample.time > start)]
    values = [sample.replicas for sample in relevant]
    return min(values) if up else max(values)


def prune(history: Sequence[Sample], now: float, keep: float) -> tuple[Sample, ...]:
    """prune drops samples older than keep seconds except the last one before that (it spans the window start)."""
    start = now - keep
    older = [sample for sample in history if sample.time <= start]
    return tuple([*older[-1:], *(sample for sample in history if sample.time > start)])


def decide(*, now: float, current: int, lag: int, policy: Policy, history: Sequence[Sample] = (),
           last_scaled: float | None = None) -> Decision:
    """decide is the next replica count for a group with current replicas and lag at time now."""
    desired = recommend(lag, policy)
    samples = tuple(sorted([*history, Sample(now, desired)], key=lambda sample: sample.time))
    kept = prune(samples, now, max(policy.scale_up_window, policy.scale_down_window))

    def result(replicas: int, reason: str, message: str) -> Decision:
        return Decision(current, desired, replicas, reason, message, kept)

    if current <= 0:
        # Like the HPA, zero replicas means someone paused the group: the autoscaler leaves it alone.
        return result(current, "Paused", "replicas is 0: autoscaling paused")
    if current > policy.upper or current < policy.lower:
        bound = policy.upper if current > policy.upper else policy.lower
        return result(bound, "OutOfBounds", f"replicas {current} outside [{policy.lower}, {policy.upper}]")
    if desired == current:
        return result(current, "WithinTarget", f"lag {lag} needs {desired} replicas")
    up = desired > current
    window = policy.scale_up_window if up else policy.scale_down_window
    target = stabilized(samples, now, window, up)
    direction = "up" if up else "down"
    if target is None or (up and target <= current) or (not up and target >= current):
        return result(current, "Stabilizing",
                      f"lag {lag} recommends {desired} replicas; waiting for the {window:g}s scale-{direction} window")
    if last_scaled is not None and now - last_scaled < policy.interval:
        return result(current, "RateLimited",
                      f"scaled {now - last_scaled:g}s ago; at most one step per {policy.interval:g}s")
    verb = "ScaledUp" if up else "ScaledDown"
    return result(target, verb, f"lag {lag}, target {policy.target_lag_per_replica}/replica: "
                                f"{current} -> {target} replicas (held for {window:g}s)")


__all__ = ["Decision", "Policy", "Sample", "decide", "policy_from_spec", "prune", "recommend", "stabilized"]
