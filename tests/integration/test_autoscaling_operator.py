"""Autoscaling (issue 5) through the real operator process, a real kube-apiserver and the dev Kafka.

There is no kubelet here, so the group's pods never consume: the lag is preloaded by producing to the input
topic (scale out), and drained by committing the end offsets for the group ourselves (scale in).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from helpers import Names
from operator_cluster import (
    Cluster,
    Operator,
    processor_group,
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(600)]
PARTITIONS = 4


@pytest.fixture
def namespace(installed: Cluster, names: Names) -> str:
    name = names("as")
    installed.kubectl("create", "namespace", name)
    return name


def input_topic(brokers: str, topic: str, messages: int) -> None:
    """input_topic creates topic with PARTITIONS partitions holding messages records spread evenly."""
    admin = AdminClient({"bootstrap.servers": brokers})
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": brokers})
    for i in range(messages):
        producer.produce(topic, key=f"user-{i}", value=b"click", partition=i % PARTITIONS)
    assert producer.flush(30) == 0


def commit_end_offsets(brokers: str, group: str, topic: str) -> None:
    """commit_end_offsets does what the group's pods would do after draining the topic: commit its end."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": False})
    try:
        ends = [TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                for p in range(PARTITIONS)]
        consumer.commit(offsets=ends, asynchronous=False)
    finally:
        consumer.close()


def status(cluster: Cluster, namespace: str, name: str) -> Callable[[], Any]:
    return lambda: cluster.get("pg", name, "-n", namespace)


def test_lag_scales_the_group_out_and_committing_it_scales_in(installed: Cluster, operator: Operator,
                                                               namespace: str, brokers: str,
                                                               names: Names) -> None:
    """1000 messages of lag at 300/replica want 4 replicas, capped by maxReplicas to 3; drained, back to 1."""
    name, clicks = names("scaled"), names("clicks")
    input_topic(brokers, clicks, 1000)
    installed.apply(namespace, processor_group(name, inputs=[clicks], partitions=PARTITIONS, autoscaling={
        "enabled": True, "minReplicas": 1, "maxReplicas": 3, "targetLagPerReplica": 300,
        "scaleUpStabilizationSeconds": 0, "scaleDownStabilizationSeconds": 6, "intervalSeconds": 2}))

    pg = wait_for(status(installed, namespace, name),
                  # The autoscaler patches spec.replicas first: the group may have no status yet.
                  lambda r: r["spec"]["replicas"] == 3 and "lastScaling" in (r.get("status") or {}), "scaled out to 3",
                  timeout=90)
    assert pg["status"]["lag"] == 1000
    assert pg["status"]["desiredReplicas"] == 3
    last = pg["status"]["lastScaling"]
    assert (last["from"], last["to"]) == (1, 3)
    assert last["reason"].startswith("ScaledUp: lag 1000")
    wait_for(lambda: installed.get("statefulset", name, "-n", namespace), lambda s: s["spec"]["replicas"] == 3,
             "StatefulSet follows the group")
    events = json.loads(installed.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    assert any(e["reason"] == "ScaledUp" and e["involvedObject"]["name"] == name for e in events)

    commit_end_offsets(brokers, name, clicks)
    pg = wait_for(status(installed, namespace, name), lambda r: r["status"].get("lag") == 0, "lag drained")
    # The scale-down window (6 s) must pass with the lag at 0 before the group shrinks.
    assert pg["spec"]["replicas"] == 3
    # The autoscaler patches spec.replicas, then status.lastScaling: wait for both.
    pg = wait_for(status(installed, namespace, name),
                  lambda r: r["spec"]["replicas"] == 1 and r["status"]["lastScaling"]["to"] == 1, "scaled in to 1",
                  timeout=90)
    last = pg["status"]["lastScaling"]
    assert (last["from"], last["to"]) == (3, 1)
    assert last["reason"].startswith("ScaledDown")
    wait_for(lambda: installed.get("statefulset", name, "-n", namespace), lambda s: s["spec"]["replicas"] == 1,
             "StatefulSet scaled in")


def test_disabled_autoscaling_reports_lag_and_keeps_replicas(installed: Cluster, operator: Operator,
                                                             namespace: str, brokers: str,
                                                             names: Names) -> None:
    """With autoscaling off the lag still reaches status.lag (the Lag printer column); kubectl scale rules."""
    name, clicks = names("manual"), names("clicks")
    input_topic(brokers, clicks, 40)
    installed.apply(namespace, processor_group(name, inputs=[clicks], partitions=PARTITIONS, replicas=2,
                                               autoscaling={"intervalSeconds": 2, "targetLagPerReplica": 1}))
    pg = wait_for(status(installed, namespace, name), lambda r: (r.get("status") or {}).get("lag") == 40,
                  "status.lag reported")
    assert pg["spec"]["replicas"] == 2
    assert "lastScaling" not in pg["status"] and "desiredReplicas" not in pg["status"]
    header, row = installed.kubectl("get", "pg", name, "-n", namespace).stdout.splitlines()[:2]
    assert header.split()[:6] == ["NAME", "READY", "REPLICAS", "READY-REPLICAS", "PARTITIONS", "LAG"]
    # Columns are aligned; READY may still be empty, so read LAG at its header's position.
    assert row[header.index("LAG"):].split()[0] == "40"
