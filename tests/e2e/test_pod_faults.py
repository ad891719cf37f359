"""Pods of a ProcessorGroup deleted, killed and rolled on the real node: state kept, counts as the guarantee says.

- a deleted pod: the StatefulSet recreates it on the same PersistentVolumeClaim and it resumes from the offsets
  stored in RocksDB there, re-reading nothing of its table partitions;
- a SIGKILL inside a container (what the OOM killer does): the kubelet restarts it (restartCount 1);
  at-least-once counts are >= the truth, exactly-once counts == the truth;
- a rolling update of spec.image to a new tag while clicks flow: every pod ends on the new image, counts exact.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from clicks import ClickCount, ClickStream, PodLogs
from helpers import wait_until
from node_cluster import NodeCluster

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(900)]
PROCESSORS = "app.kubernetes.io/component=processor"


def state_claim(pod: dict[str, Any]) -> dict[str, Any]:
    """state_claim is the pod's PersistentVolumeClaim volume source (RocksDB's volume)."""
    (claim,) = [v["persistentVolumeClaim"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
    return dict(claim)


def test_a_deleted_pod_resumes_from_its_volume(in_cluster: NodeCluster) -> None:
    clicks = ClickCount(in_cluster, in_cluster.namespace("deleted"), "deleted", partitions=4)
    clicks.apply(replicas=2, with_view=False)
    clicks.wait_ready(2)
    clicks.emit(20_000, users=400, seed=3)
    clicks.drained()
    pod = f"{clicks.group}-1"
    claim = state_claim(in_cluster.get("pod", pod, "-n", clicks.namespace))
    volume = in_cluster.get("pvc", claim["claimName"], "-n", clicks.namespace)["spec"]["volumeName"]
    old_uid = in_cluster.get("pod", pod, "-n", clicks.namespace)["metadata"]["uid"]
    with PodLogs(in_cluster, clicks.namespace, f"app.kubernetes.io/instance={clicks.group},{PROCESSORS}") as logs:
        in_cluster.kubectl("delete", "pod", pod, "-n", clicks.namespace, "--wait=true", "--timeout=120s")
        wait_until(lambda: (in_cluster.get("pod", pod, "-n", clicks.namespace) or {}).get("metadata", {})
                   .get("uid", old_uid) != old_uid, 120, interval=1, message=f"{pod} recreated")
        in_cluster.kubectl("wait", "--for=condition=Ready", f"pod/{pod}", "-n", clicks.namespace, "--timeout=180s")
        new = in_cluster.get("pod", pod, "-n", clicks.namespace)
        assert state_claim(new) == claim
        assert in_cluster.get("pvc", claim["claimName"], "-n", clicks.namespace)["spec"]["volumeName"] == volume
        # Only the new container's lines: `kubectl logs -f` of the old one repeats its first recovery.
        run = f"{pod}#{new['status']['containerStatuses'][0]['containerID']}"
        wait_until(lambda: [c for c in logs.caught_up() if c[0] == run], 60, interval=1,
                   message=f"{run}'s table recovery lines")
        recovered = [c for c in logs.caught_up() if c[0] == run]
    # Each of its table partitions starts at the offset RocksDB stored, past the thousands of updates before it,
    # and re-reads exactly what the table topic holds beyond it: nothing, as no click came in meanwhile.
    assert recovered, "the recreated pod logged no table recovery"
    for _run, partition, high, records, start in recovered:
        assert start > 0 and start == high, f"partition {partition} restarted at {start}, table end {high}"
        assert records == 0, f"partition {partition} re-read {records} table records"
    clicks.emit(2_000, users=400, seed=4)
    clicks.drained()
    clicks.apply(replicas=2)
    clicks.wait_ready(1, kind="view")
    clicks.wait_counts()


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_killed_container_is_restarted_and_counts_hold(in_cluster: NodeCluster, guarantee: str) -> None:
    clicks = ClickCount(in_cluster, in_cluster.namespace("killed"), f"killed-{guarantee[0:5].replace('_', '')}",
                        partitions=4)
    clicks.apply(replicas=2, options={"guarantee": guarantee})
    clicks.wait_ready(2)
    victim = f"{clicks.group}-0"
    with ClickStream(clicks, per_second=500):
        time.sleep(4)
        in_cluster.kill_container(clicks.namespace, victim)
        wait_until(lambda: in_cluster.get("pod", victim, "-n", clicks.namespace)["status"]["containerStatuses"][0]
                   .get("restartCount") == 1, 120, interval=1, message=f"{victim} restarted by the kubelet")
        clicks.wait_ready(2)
        time.sleep(4)
    status = in_cluster.get("pod", victim, "-n", clicks.namespace)["status"]["containerStatuses"][0]
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 137  # SIGKILL
    clicks.drained()
    clicks.wait_ready(1, kind="view")
    answered = clicks.wait_counts(exact=guarantee == "exactly_once")
    assert sum(answered.values()) >= sum(clicks.truth.values())
    if guarantee == "exactly_once":
        assert answered == dict(clicks.truth)


def test_a_rolling_update_to_a_new_tag_keeps_state(in_cluster: NodeCluster) -> None:
    clicks = ClickCount(in_cluster, in_cluster.namespace("rolling"), "rolling", partitions=4)
    clicks.apply(replicas=2, options={"guarantee": "exactly_once"})
    clicks.wait_ready(2)
    clicks.wait_ready(1, kind="view")
    clicks.emit(5_000, users=300, seed=9)
    with ClickStream(clicks, per_second=300, users=300):
        time.sleep(3)
        in_cluster.kubectl("patch", "pg", clicks.group, "-n", clicks.namespace, "--type=merge",
                           "-p", '{"spec": {"image": "localhost/click-count:2"}}')

        def rolled() -> bool:
            sts = in_cluster.get("statefulset", clicks.group, "-n", clicks.namespace)
            status = sts.get("status") or {}
            images = {pod["spec"]["containers"][0]["image"]
                      for pod in in_cluster.pods(clicks.namespace, f"app.kubernetes.io/instance={clicks.group},"
                                                                   f"{PROCESSORS}")}
            return (sts["spec"]["template"]["spec"]["containers"][0]["image"] == "localhost/click-count:2"
                    and status.get("updateRevision") == status.get("currentRevision")
                    and status.get("updatedReplicas") == 2 and status.get("readyReplicas") == 2
                    and images == {"localhost/click-count:2"})

        wait_until(rolled, 300, interval=2, message="every pod rolled to click-count:2 and Ready")
        time.sleep(3)
    clicks.drained()
    assert clicks.get()["status"]["graph"]["image"] == "localhost/click-count:2"
    clicks.wait_counts()
