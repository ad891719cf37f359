"""The operator as a platform team runs it on the real node: restricted namespaces, readiness that the kubelet and
the Service decide, two replicas electing a leader, and the Helm release's upgrade and uninstall.

The helm lifecycle test uninstalls the shared release; the in_cluster fixture installs it again for later tests.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest
from clicks import ClickCount
from confluent_kafka.admin import AdminClient
from helpers import wait_until
from node_cluster import CHART, K8S_SH, OPERATOR_NS, RELEASE, NodeCluster

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(900)]
OPERATOR_PODS = f"app.kubernetes.io/instance={RELEASE}"


def test_every_pod_is_admitted_in_a_restricted_namespace(in_cluster: NodeCluster) -> None:
    """Under pod-security.kubernetes.io/enforce=restricted the graph Job's, the group's and the View's pods are
    admitted and run."""
    namespace = in_cluster.namespace("restricted", {"pod-security.kubernetes.io/enforce": "restricted"})
    clicks = ClickCount(in_cluster, namespace, "restricted", partitions=2)
    clicks.apply(replicas=1)
    clicks.wait_ready(1)
    clicks.wait_ready(1, kind="view")
    clicks.emit(1_000, users=50)
    clicks.wait_counts()
    events = json.loads(in_cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    assert [e["message"] for e in events if "PodSecurity" in e.get("message", "")] == []


def endpoints(cluster: NodeCluster, namespace: str, service: str) -> list[dict[str, Any]]:
    slices = json.loads(cluster.kubectl("get", "endpointslices", "-n", namespace, "-l",
                                        f"kubernetes.io/service-name={service}", "-o", "json").stdout)["items"]
    return [endpoint for item in slices for endpoint in item.get("endpoints") or []]


def test_a_view_gets_queries_only_once_its_table_recovered(in_cluster: NodeCluster) -> None:
    """A View whose brokers cannot be reached yet runs but is not Ready: the kubelet's probe keeps it out of the
    query Service's endpoints and no query reaches it; once Kafka is reachable the same pod recovers, turns Ready,
    enters the endpoints and answers the exact counts."""
    clicks = ClickCount(in_cluster, in_cluster.namespace("readiness"), "readiness", partitions=2)
    clicks.apply(replicas=1, with_view=False)
    clicks.wait_ready(1)
    clicks.emit(5_000, users=100)
    clicks.drained()
    _, view = clicks.manifests()
    # A Service with no endpoints yet: the View's client connects nowhere until the test adds one.
    in_cluster.apply(clicks.namespace, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kafka-later"},
                                        "spec": {"ports": [{"port": 9092, "targetPort": in_cluster.kafka_port,
                                                            "protocol": "TCP"}]}})
    view["spec"]["kafka"] = {"bootstrapServers": "kafka-later:9092"}
    in_cluster.apply(clicks.namespace, view)
    pod = f"{clicks.group}-view-0"

    def running_not_ready() -> bool:
        found = in_cluster.get("pod", pod, "-n", clicks.namespace)
        statuses = ((found or {}).get("status") or {}).get("containerStatuses") or []
        return bool(statuses) and "running" in statuses[0]["state"] and not statuses[0]["ready"]

    wait_until(running_not_ready, 180, interval=1, message=f"{pod} running, not ready")
    probed = in_cluster.get("pod", pod, "-n", clicks.namespace)
    # Probe periods (5 s) pass: the pod stays out, and the query Service answers nothing. Well within the 30 s its
    # first metadata request waits for a broker, after which the View would fail and be restarted.
    for _ in range(2):
        time.sleep(4)
        assert all(not e["conditions"].get("ready") for e in endpoints(in_cluster, clicks.namespace,
                                                                       f"{clicks.group}-view"))
        assert clicks.count("user-1") is None
    subprocess.run([str(K8S_SH), "host-service", clicks.namespace, "kafka-later", "9092",
                    str(in_cluster.kafka_port)], env=in_cluster.env, check=True, capture_output=True)
    clicks.wait_ready(1, kind="view")
    ready = in_cluster.get("pod", pod, "-n", clicks.namespace)
    assert ready["metadata"]["uid"] == probed["metadata"]["uid"], "the same pod turned ready"
    assert ready["status"]["containerStatuses"][0]["restartCount"] == 0
    ips = [e["addresses"][0] for e in endpoints(in_cluster, clicks.namespace, f"{clicks.group}-view")
           if e["conditions"].get("ready")]
    assert ips == [ready["status"]["podIP"]]
    clicks.wait_counts()


def peering_priorities(cluster: NodeCluster) -> dict[str, int]:
    found = cluster.get("clusterkopfpeering", "pygoka-e2e")
    return {identity: int(peer.get("priority", 0)) for identity, peer in ((found or {}).get("status") or {}).items()}


def leader_pod(cluster: NodeCluster) -> str:
    """leader_pod is the operator pod with the highest peering priority (the earliest started: election.py)."""
    priorities = peering_priorities(cluster)
    best = max(priorities, key=lambda identity: priorities[identity])
    pods = [pod["metadata"]["name"] for pod in cluster.pods(OPERATOR_NS, OPERATOR_PODS)]
    matching = [name for name in pods if name in best]
    assert matching, f"no operator pod in the leader's identity {best!r} (pods {pods})"
    return matching[0]


def test_deleting_the_leader_while_a_group_changes(in_cluster: NodeCluster) -> None:
    """The follower takes over from a deleted leader and reconciles the change made while it went away."""
    wait_until(lambda: len(peering_priorities(in_cluster)) == 2, 120, interval=1, message="two operator peers")
    clicks = ClickCount(in_cluster, in_cluster.namespace("leader"), "leader", partitions=4)
    clicks.apply(replicas=1, with_view=False)
    clicks.wait_ready(1)
    leader = leader_pod(in_cluster)
    in_cluster.kubectl("delete", "pod", leader, "-n", OPERATOR_NS, "--wait=false")
    in_cluster.kubectl("patch", "pg", clicks.group, "-n", clicks.namespace, "--type=merge",
                       "-p", '{"spec": {"replicas": 3}}')
    clicks.wait(lambda r: (r["spec"]["replicas"] == 3 and (r.get("status") or {}).get("readyReplicas") == 3),
                "3 pods ready after the leader's deletion", timeout=240)
    sts = in_cluster.get("statefulset", clicks.group, "-n", clicks.namespace)
    assert sts["spec"]["replicas"] == 3
    new_leader = leader_pod(in_cluster)
    assert new_leader != leader
    wait_until(lambda: len(in_cluster.pods(OPERATOR_NS, OPERATOR_PODS)) == 2 and all(
        all(c["ready"] for c in pod["status"].get("containerStatuses") or [{"ready": False}])
        for pod in in_cluster.pods(OPERATOR_NS, OPERATOR_PODS)), 180, interval=1,
        message="the Deployment replaced the deleted replica")


def test_helm_upgrade_then_uninstall_leaves_the_groups_alone(in_cluster: NodeCluster) -> None:
    """helm upgrade with a changed value rolls the operator's pods with it; helm uninstall removes the operator
    but no ProcessorGroup, StatefulSet, volume or topic."""
    clicks = ClickCount(in_cluster, in_cluster.namespace("helm"), "helm", partitions=2)
    clicks.apply(replicas=1, with_view=False)
    clicks.wait_ready(1)
    before = {pod["metadata"]["name"] for pod in in_cluster.pods(OPERATOR_NS, OPERATOR_PODS)}
    in_cluster.call("helm", "upgrade", RELEASE, str(CHART), "-n", OPERATOR_NS, "--reuse-values",
                    "--set", "logLevel=DEBUG", "--wait", "--timeout", "180s")
    deployment = in_cluster.get("deployment", RELEASE, "-n", OPERATOR_NS)
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PYGOKA_LOG_LEVEL"] == "DEBUG"
    wait_until(lambda: {p["metadata"]["name"] for p in in_cluster.pods(OPERATOR_NS, OPERATOR_PODS)}
               .isdisjoint(before), 180, interval=1, message="operator pods replaced by the upgrade")
    claims = {c["metadata"]["name"] for c in json.loads(in_cluster.kubectl(
        "get", "pvc", "-n", clicks.namespace, "-o", "json").stdout)["items"]}
    assert claims
    in_cluster.call("helm", "uninstall", RELEASE, "-n", OPERATOR_NS, "--wait", "--timeout", "120s")
    wait_until(lambda: not in_cluster.pods(OPERATOR_NS, OPERATOR_PODS), 120, interval=1,
               message="operator pods gone")
    assert clicks.get() is not None
    assert in_cluster.get("statefulset", clicks.group, "-n", clicks.namespace) is not None
    assert {c["metadata"]["name"] for c in json.loads(in_cluster.kubectl(
        "get", "pvc", "-n", clicks.namespace, "-o", "json").stdout)["items"]} == claims
    topics = AdminClient({"bootstrap.servers": in_cluster.brokers}).list_topics(timeout=10).topics
    assert {clicks.topic, clicks.table} <= set(topics)
    in_cluster.installed = False
