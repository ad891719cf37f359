"""Scaling a ProcessorGroup on real pods (spec.replicas 1 -> 4 -> 2) while clicks flow.

Counts stay exact and no partition is held by two pods at once, judged from the pods' "assigned/revoked/lost
partitions" lines (one node, one clock). The time from each patch until every pod holds its new partitions is
printed: the figure the issue asks for.
"""

from __future__ import annotations

import time

import pytest
from clicks import ClickCount, ClickStream, PodLogs
from helpers import wait_until
from node_cluster import NodeCluster
from ownership import holders, overlaps

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(900)]
PARTITIONS = 8


def test_scaling_1_to_4_to_2_keeps_counts_and_never_shares_a_partition(in_cluster: NodeCluster) -> None:
    clicks = ClickCount(in_cluster, in_cluster.namespace("scaling"), "scaling", partitions=PARTITIONS)
    selector = f"app.kubernetes.io/instance={clicks.group},app.kubernetes.io/component=processor"
    with PodLogs(in_cluster, clicks.namespace, selector) as logs:
        clicks.apply(replicas=1, options={"guarantee": "exactly_once"})
        clicks.wait_ready(1)
        clicks.wait_ready(1, kind="view")
        with ClickStream(clicks, per_second=400):
            for replicas in (4, 2):
                patched = time.monotonic()
                in_cluster.kubectl("patch", "pg", clicks.group, "-n", clicks.namespace, "--type=merge",
                                   "-p", f'{{"spec": {{"replicas": {replicas}}}}}')
                pods = {f"{clicks.group}-{i}" for i in range(replicas)}

                def settled(pods: set[str] = pods) -> bool:
                    now = holders(logs.lines())
                    return len(now) == PARTITIONS and set(now.values()) == pods

                wait_until(settled, 300, interval=0.5, message=f"{replicas} pods holding all {PARTITIONS} partitions")
                print(f"replicas -> {replicas}: every pod holds its partitions {time.monotonic() - patched:.1f} s "
                      "after the patch")
                clicks.wait_ready(replicas)
                time.sleep(3)
        clicks.drained()
        clicks.wait_counts()
        seen = logs.lines()
    assert overlaps(seen) == []
