"""End to end on real pods: examples/k8s/click-count.yaml through the operator installed by Helm.

The operator runs as pods of the chart; it learns the group's topology from the click-count image (a Job on the
node), creates the topics and the StatefulSets; the kubelet runs the pods in containers on their volumes. The
counts are read from the View's query Service through the API server's service proxy.
"""

from __future__ import annotations

import time

import pytest
from clicks import ClickCount, PodLogs
from node_cluster import NodeCluster
from ownership import overlaps

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(900)]


def test_click_count_counts_100k_clicks_exactly(in_cluster: NodeCluster) -> None:
    """100,000 clicks over 1,000 users: the View answers every user's count exactly."""
    clicks = ClickCount(in_cluster, in_cluster.namespace("clicks"), "click-count", partitions=4)
    applied = time.monotonic()
    clicks.apply(replicas=2)
    clicks.wait_ready(2)
    clicks.wait_ready(1, kind="view")
    print(f"ProcessorGroup (2 replicas) and View applied -> every pod Ready: {time.monotonic() - applied:.1f} s")
    group = clicks.get()
    assert group["status"]["graph"]["group"] == clicks.group
    emitted = time.monotonic()
    clicks.emit(100_000, users=1_000, seed=5)
    answered = clicks.wait_counts()
    print(f"100,000 clicks emitted -> every count exact in the View: {time.monotonic() - emitted:.1f} s")
    assert len(answered) == 1_000
    assert sum(answered.values()) == 100_000


def test_a_lag_burst_scales_out_to_4_and_back_to_1(in_cluster: NodeCluster) -> None:
    """20,000 clicks waiting at 5,000 per replica scale the group 1 -> 4 on real pods, which drain them and it
    returns to 1; no partition is ever held by two pods at once; the counts are exact."""
    clicks = ClickCount(in_cluster, in_cluster.namespace("burst"), "burst", partitions=4)
    # The burst is in Kafka before the group exists, so the first measurement sees all of it.
    clicks.emit(20_000, users=500, seed=7)
    with PodLogs(in_cluster, clicks.namespace, f"app.kubernetes.io/instance={clicks.group},"
                                                "app.kubernetes.io/component=processor") as logs:
        clicks.apply(replicas=1, autoscaling={"enabled": True, "minReplicas": 1, "maxReplicas": 4,
                                              "targetLagPerReplica": 5000, "scaleUpStabilizationSeconds": 0,
                                              "scaleDownStabilizationSeconds": 10, "intervalSeconds": 2})
        started = time.monotonic()
        out = clicks.wait(lambda r: ((r.get("status") or {}).get("lastScaling") or {}).get("to") == 4,
                          "scaled out to 4", timeout=240)
        assert out["status"]["lastScaling"]["from"] == 1
        print(f"burst -> scaled to 4: {time.monotonic() - started:.1f} s")
        back = clicks.wait(lambda r: r["spec"]["replicas"] == 1 and (r.get("status") or {}).get("lag") == 0
                           and (r.get("status") or {}).get("readyReplicas") == 1, "drained, back to 1", timeout=400)
        print(f"burst -> drained and back to 1: {time.monotonic() - started:.1f} s")
        assert back["status"]["lastScaling"]["reason"].startswith("ScaledDown")
        clicks.wait_ready(1, kind="view")
        clicks.wait_counts()
        seen = logs.lines()
    assert len(seen) >= 4, f"expected at least 4 pod runs in the logs, saw {sorted(seen)}"
    assert overlaps(seen) == []
