"""Autoscaling (issue 5): group lag from offsets and the HPA-like scaling decision, as pure functions."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from pygoka.lag import PartitionOffsets, group_lag, partition_lag
from pygoka_operator.autoscaling import Decision, Policy, Sample, decide
from pygoka_operator.autoscaling.decision import policy_from_spec, recommend


def policy(**overrides: object) -> Policy:
    values: dict[str, object] = dict(min_replicas=1, max_replicas=8, target_lag_per_replica=100,
                                     scale_up_window=30.0, scale_down_window=300.0, interval=15.0, partitions=8)
    values.update(overrides)
    return Policy(**values)  # type: ignore[arg-type]


def run(lags: Sequence[tuple[float, int]], current: int, rules: Policy,
        last_scaled: float | None = None) -> list[Decision]:
    """run feeds measurements (time, lag) through decide like the operator does, applying each decision."""
    history: tuple[Sample, ...] = ()
    decisions: list[Decision] = []
    for now, lag in lags:
        decision = decide(now=now, current=current, lag=lag, policy=rules, history=history, last_scaled=last_scaled)
        history = decision.history
        if decision.scale:
            current, last_scaled = decision.replicas, now
        decisions.append(decision)
    return decisions


# --- lag -------------------------------------------------------------------------------------------------

def test_lag_is_end_minus_committed_summed_over_partitions() -> None:
    offsets = [PartitionOffsets("clicks", 0, 0, 100, 40), PartitionOffsets("clicks", 1, 0, 50, 50),
               PartitionOffsets("loop", 0, 0, 7, 2)]
    assert [partition_lag(o) for o in offsets] == [60, 0, 5]
    assert group_lag(offsets) == 65


def test_missing_commit_counts_from_the_start_offset() -> None:
    assert partition_lag(PartitionOffsets("clicks", 0, 30, 100, None)) == 70
    assert partition_lag(PartitionOffsets("clicks", 0, 0, 100, None)) == 100


def test_commit_below_the_start_offset_counts_from_the_start() -> None:
    """Retention deleted the committed position: the consumer resumes at the start, not at the commit."""
    assert partition_lag(PartitionOffsets("clicks", 0, 80, 100, 10)) == 20


def test_lag_is_never_negative_and_empty_groups_have_none() -> None:
    assert partition_lag(PartitionOffsets("clicks", 0, 0, 100, 120)) == 0
    assert partition_lag(PartitionOffsets("clicks", 0, 0, 0, None)) == 0
    assert group_lag([]) == 0


@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6),
                          st.one_of(st.none(), st.integers(0, 3 * 10**6))), max_size=20))
def test_lag_bounded_by_what_is_in_the_log(parts: list[tuple[int, int, int | None]]) -> None:
    offsets = [PartitionOffsets("t", i, min(a, b), max(a, b), c) for i, (a, b, c) in enumerate(parts)]
    lag = group_lag(offsets)
    assert 0 <= lag <= sum(o.end - o.start for o in offsets)


# --- recommendation and bounds ---------------------------------------------------------------------------

def test_recommendation_is_ceil_of_lag_per_target() -> None:
    rules = policy()
    assert [recommend(lag, rules) for lag in (0, 1, 100, 101, 350, 800)] == [1, 1, 1, 2, 4, 8]


def test_recommendation_is_capped_by_partitions_and_max() -> None:
    assert recommend(10_000, policy(partitions=4)) == 4
    assert recommend(10_000, policy(max_replicas=3)) == 3
    assert recommend(10_000, policy(max_replicas=None, partitions=6)) == 6


def test_min_replicas_holds_for_idle_groups_and_never_exceeds_partitions() -> None:
    assert recommend(0, policy(min_replicas=3)) == 3
    assert recommend(0, policy(min_replicas=5, partitions=2)) == 2


def test_policy_from_a_defaulted_spec() -> None:
    spec = {"partitions": 6, "autoscaling": {"enabled": True, "minReplicas": 2, "targetLagPerReplica": 500,
                                             "scaleUpStabilizationSeconds": 0, "scaleDownStabilizationSeconds": 60,
                                             "intervalSeconds": 5}}
    assert policy_from_spec(spec) == Policy(2, None, 500, 0.0, 60.0, 5.0, 6)


# --- decisions -------------------------------------------------------------------------------------------

def test_within_target_holds() -> None:
    decision = decide(now=0, current=2, lag=150, policy=policy())
    assert (decision.scale, decision.replicas, decision.reason) == (False, 2, "WithinTarget")


def test_scale_up_waits_for_the_window_then_scales_to_what_held() -> None:
    decisions = run([(0, 500), (15, 500), (30, 500)], current=1, rules=policy())
    assert [d.reason for d in decisions] == ["Stabilizing", "Stabilizing", "ScaledUp"]
    assert decisions[-1].replicas == 5
    assert "1 -> 5" in decisions[-1].message


def test_a_lag_spike_shorter_than_the_window_does_not_scale_up() -> None:
    decisions = run([(0, 50), (15, 5000), (30, 50), (45, 60)], current=1, rules=policy())
    assert not any(d.scale for d in decisions)


def test_scale_up_goes_to_the_lowest_recommendation_of_the_window() -> None:
    decisions = run([(0, 300), (15, 800), (30, 800)], current=1, rules=policy())
    assert decisions[-1].reason == "ScaledUp" and decisions[-1].replicas == 3


def test_zero_windows_scale_immediately() -> None:
    decision = decide(now=0, current=1, lag=400, policy=policy(scale_up_window=0))
    assert (decision.reason, decision.replicas) == ("ScaledUp", 4)


def test_scale_down_needs_the_longer_window() -> None:
    lags = [(float(t), 0) for t in range(0, 301, 15)]
    decisions = run(lags, current=4, rules=policy())
    assert all(not d.scale for d in decisions[:-1])
    assert decisions[-1].reason == "ScaledDown" and decisions[-1].replicas == 1


def test_a_short_idle_moment_does_not_scale_down() -> None:
    """An idle group whose lag comes back within the scale-down window keeps its replicas."""
    lags = [(0.0, 400), *((float(t), 0) for t in range(15, 300, 15)), (300.0, 400), (315.0, 0)]
    decisions = run(lags, current=4, rules=policy())
    assert not any(d.scale for d in decisions)


def test_scale_down_goes_to_the_highest_recommendation_of_the_window() -> None:
    decisions = run([(0, 300), (100, 100), (200, 100), (300, 0)], current=4, rules=policy())
    assert decisions[-1].reason == "ScaledDown" and decisions[-1].replicas == 3


def test_at_most_one_step_per_interval() -> None:
    rules = policy(scale_up_window=0, interval=15)
    decisions = run([(0, 200), (5, 400), (10, 800), (15, 800)], current=1, rules=rules)
    assert [(d.reason, d.replicas) for d in decisions] == [
        ("ScaledUp", 2), ("RateLimited", 2), ("RateLimited", 2), ("ScaledUp", 8)]


def test_rate_limit_uses_the_last_scaling_time_given() -> None:
    decision = decide(now=100, current=2, lag=800, policy=policy(scale_up_window=0), last_scaled=95)
    assert decision.reason == "RateLimited" and not decision.scale


def test_out_of_bounds_replicas_are_corrected_without_waiting() -> None:
    rules = policy(min_replicas=2, max_replicas=4)
    assert decide(now=0, current=8, lag=10_000, policy=rules).replicas == 4
    assert decide(now=0, current=1, lag=0, policy=rules).replicas == 2
    assert decide(now=0, current=1, lag=0, policy=rules).reason == "OutOfBounds"


def test_zero_replicas_pause_autoscaling() -> None:
    decision = decide(now=0, current=0, lag=10_000, policy=policy(scale_up_window=0))
    assert (decision.reason, decision.scale) == ("Paused", False)


def test_history_is_pruned_to_the_longest_window() -> None:
    decisions = run([(float(t), 0) for t in range(0, 1000, 15)], current=1, rules=policy())
    kept = decisions[-1].history
    assert kept[0].time <= 990 - 300 < kept[1].time
    assert len(kept) <= 300 // 15 + 2


# --- properties ------------------------------------------------------------------------------------------

policies = st.builds(
    lambda lo, span, cap, target, up, down, interval, partitions: Policy(
        lo, None if cap else lo + span, target, up, down, interval, partitions),
    st.integers(1, 10), st.integers(0, 10), st.booleans(), st.integers(1, 10_000),
    st.floats(0, 120), st.floats(0, 600), st.floats(1, 60), st.integers(1, 32))


@settings(max_examples=200, deadline=None)
@given(policies, st.integers(1, 40), st.lists(st.tuples(st.floats(0, 50), st.integers(0, 10**6)), max_size=30))
def test_decisions_always_stay_within_bounds(rules: Policy, current: int,
                                             steps: list[tuple[float, int]]) -> None:
    now, history, last = 0.0, (), None
    for gap, lag in steps:
        now += gap
        decision = decide(now=now, current=current, lag=lag, policy=rules, history=history, last_scaled=last)
        assert rules.lower <= decision.desired <= min(rules.upper, rules.partitions)
        if decision.scale:
            assert rules.lower <= decision.replicas <= rules.upper <= rules.partitions
            current, last = decision.replicas, now
        else:
            assert decision.replicas == current
        history = decision.history


@settings(max_examples=200, deadline=None)
@given(policies, st.integers(1, 32), st.integers(0, 10**6))
def test_a_steady_lag_converges_to_its_recommendation(rules: Policy, current: int, lag: int) -> None:
    """Measured every interval for longer than both windows, a constant lag ends at exactly its recommendation."""
    now, history, last = 0.0, (), None
    for _ in range(int((rules.scale_up_window + rules.scale_down_window) / rules.interval) + 4):
        decision = decide(now=now, current=current, lag=lag, policy=rules, history=history, last_scaled=last)
        if decision.scale:
            current, last = decision.replicas, now
        history = decision.history
        now += rules.interval
    assert current == recommend(lag, rules)
