"""Scaling a ProcessorGroup on real pods (spec.replicas 1 -> 4 -> 2) while clicks flow.

Counts stay exact and no partition is held by two pods at once, judged from the pods' "assigned/revoked/lost
partitions" lines (one node, one clock). Printed for each step: the time from the patch until every pod holds its
new partitions, and the longest time a partition's table updates stopped (bench/stalls.py, as workload 6 of
bench/compare.py measures it for processes).
"""

from __future__ import annotations

import time

import pytest
from clicks import ClickCount, ClickStream, PodLogs, TableArrivals
from helpers import wait_until
from node_cluster import NodeCluster
from ownership import holders, overlaps

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(900)]
PARTITIONS = 8
#: SESSION_SECONDS is librdkafka's default session.timeout.ms.
SESSION_SECONDS = 45


def pod_access(cluster: NodeCluster, namespace: str, group: str) -> tuple[str, str, str, str]:
    """pod_access is what the group's pods may do, as the API server judges it: get their StatefulSet, get another
    one, list secrets; and the serviceAccountName of pod 0 (the runtime's leave-on-scale-in check needs the first)."""
    def can(*what: str) -> str:
        return cluster.kubectl("auth", "can-i", *what, "-n", namespace,
                               f"--as=system:serviceaccount:{namespace}:{group}", check=False).stdout.strip()

    pod = cluster.get("pod", f"{group}-0", "-n", namespace) or {}
    return (can("get", f"statefulsets.apps/{group}"), can("get", "statefulsets.apps/other"),
            can("list", "secrets"), pod.get("spec", {}).get("serviceAccountName", ""))


def test_scaling_1_to_4_to_2_keeps_counts_and_never_shares_a_partition(in_cluster: NodeCluster) -> None:
    clicks = ClickCount(in_cluster, in_cluster.namespace("scaling"), "scaling", partitions=PARTITIONS)
    selector = f"app.kubernetes.io/instance={clicks.group},app.kubernetes.io/component=processor"
    with PodLogs(in_cluster, clicks.namespace, selector) as logs:
        # librdkafka's default 45 s session: the scaled-in pods must leave the group, not wait for it to expire.
        clicks.apply(replicas=1, options={"guarantee": "exactly_once", "consumerConfig": {}})
        clicks.wait_ready(1)
        clicks.wait_ready(1, kind="view")
        assert pod_access(in_cluster, clicks.namespace, clicks.group) == ("yes", "no", "no", clicks.group)
        phases: list[tuple[int, float, float]] = []
        with TableArrivals(clicks) as table, ClickStream(clicks, per_second=400):
            for replicas in (4, 2):
                patched = time.monotonic()
                in_cluster.kubectl("patch", "pg", clicks.group, "-n", clicks.namespace, "--type=merge",
                                   "-p", f'{{"spec": {{"replicas": {replicas}}}}}')
                pods = {f"{clicks.group}-{i}" for i in range(replicas)}

                def settled(pods: set[str] = pods) -> bool:
                    now = holders(logs.lines())
                    return len(now) == PARTITIONS and set(now.values()) == pods

                # Scaling in: had the static members that go not left, their partitions would wait 45 s.
                wait_until(settled, 300 if replicas > 2 else SESSION_SECONDS - 10, interval=0.5,
                           message=f"{replicas} pods holding all {PARTITIONS} partitions")
                print(f"replicas -> {replicas}: every pod holds its partitions {time.monotonic() - patched:.1f} s "
                      "after the patch")
                clicks.wait_ready(replicas)
                time.sleep(3)
                phases.append((replicas, patched, time.monotonic()))
        # The figure bench/compare.py's workload 6 gives for processes, here for pods scaled by the operator.
        for replicas, start, end in phases:
            stall, stalled = table.partitions.stall(start, end), table.partitions.stalled(start, end)
            print(f"replicas -> {replicas}: the longest stall of a partition {stall:.2f} s "
                  f"({stalled} of {PARTITIONS} over 0.5 s)")
        clicks.drained()
        clicks.wait_counts()
        seen = logs.lines()
    assert overlaps(seen) == []
    # Keys are "<pod>#<container id>".
    left = {run.split("#")[0] for run, lines in seen.items()
            if any("leaving the group for good" in line for line in lines)}
    assert left == {f"{clicks.group}-2", f"{clicks.group}-3"}, f"pods that left their group: {sorted(left)}"
