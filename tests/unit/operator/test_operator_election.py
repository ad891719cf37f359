"""Operator command line: leader election flags (kopf peering) and liveness from the chart's variables."""

from __future__ import annotations

from pygoka_operator.__main__ import arguments
from pygoka_operator.election import PRIORITY_CEILING, start_priority


def test_single_replica_runs_standalone_with_liveness() -> None:
    args = arguments({"PYGOKA_OPERATOR_HEALTH_PORT": "9000"})
    assert "--standalone" in args
    assert "--liveness=http://0.0.0.0:9000/healthz" in args
    assert not any(arg.startswith(("--peering", "--priority")) for arg in args)


def test_peering_gets_a_priority_and_the_lifetime_handler() -> None:
    args = arguments({"PYGOKA_OPERATOR_PEERING": "pygoka", "PYGOKA_OPERATOR_PRIORITY": "42"})
    assert "--standalone" not in args
    assert {"--peering=pygoka", "--priority=42"} <= set(args)
    assert args[args.index("pygoka_operator.election") - 1] == "--module"


def test_earlier_replicas_outrank_later_ones() -> None:
    """kopf pauses every operator when priorities tie, so they differ: the earlier start leads."""
    first, second = start_priority(1_700_000_000.000), start_priority(1_700_000_000.001)
    assert first > second > 0
    assert first == PRIORITY_CEILING - 1_700_000_000_000
