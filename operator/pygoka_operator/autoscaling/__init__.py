"""Lag-based autoscaling: pure lag and decision functions, the AdminClient lag reader, the kopf daemon."""

from pygoka_operator.autoscaling.decision import Decision, Policy, Sample, decide, policy_from_spec
from pygoka_operator.autoscaling.lag import PartitionOffsets, group_lag, partition_lag

__all__ = ["Decision", "PartitionOffsets", "Policy", "Sample", "decide", "group_lag", "partition_lag",
           "policy_from_spec"]
