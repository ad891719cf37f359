"""Lag-based autoscaling: the pure decision function and the kopf daemon (lag itself is pygoka.lag's)."""

from pygoka_operator.autoscaling.decision import Decision, Policy, Sample, decide, policy_from_spec

__all__ = ["Decision", "Policy", "Sample", "decide", "policy_from_spec"]
