"""The operator's own metrics, the options it refuses and the pull secrets it passes on, against the real API
server and Kafka.

The operator runs as a real process with the chart's ServiceAccount and a metrics port; its /metrics is scraped
over HTTP (Prometheus text and OpenMetrics). A ProcessorGroup with a setting librdkafka refuses is reported in a
condition naming the field, and no StatefulSet is made for it; `kubectl get pg` shows ready replicas.
"""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from operator_cluster import (
    OPERATOR_NS,
    RELEASE,
    Cluster,
    condition,
    free_port,
    processor_group,
    run_operator,
    wait_for,
)
from prometheus_client.parser import text_string_to_metric_families

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def metrics_port(installed: Cluster, brokers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """metrics_port is the port of a cluster-wide operator's /metrics, run until the module ends."""
    port = free_port()
    with run_operator(installed, brokers, tmp_path_factory.mktemp("metrics-operator"), RELEASE, OPERATOR_NS,
                      extra_env={"PYGOKA_OPERATOR_METRICS_PORT": str(port),
                                 "PYGOKA_OPERATOR_IMAGE_PULL_SECRETS": "regcred,mirror"}):
        yield port


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def value(samples: dict[str, list[tuple[dict[str, str], float]]], metric: str, **labels: str) -> float:
    return sum(v for got, v in samples.get(metric, []) if all(got.get(k) == want for k, want in labels.items()))


def test_reconciles_replicas_and_refused_options_in_metrics(installed: Cluster, metrics_port: int) -> None:
    namespace = f"metrics-{uuid.uuid4().hex[:8]}"
    installed.kubectl("create", "namespace", namespace)
    good, bad = "counted", "misconfigured"
    installed.apply(namespace, processor_group(good, inputs=[f"{namespace}-in"], replicas=2))
    installed.apply(namespace, processor_group(bad, inputs=[f"{namespace}-in"], options={
        "consumerConfig": {"session.timeout.msec": "10000"}}))
    statefulset = wait_for(lambda: installed.get("statefulset", good, "-n", namespace), lambda s: True,
                           "the good StatefulSet")
    # The chart's imagePullSecrets reach the pods the operator makes.
    assert statefulset["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]
    refused = wait_for(lambda: installed.get("pg", bad, "-n", namespace),
                       lambda pg: (condition(pg, "Degraded") or {}).get("status") == "True", "the refusal")
    message = condition(refused, "Degraded")["message"]  # type: ignore[index]
    assert message == 'spec.options.consumerConfig: No such configuration property: "session.timeout.msec"'
    assert installed.get("statefulset", bad, "-n", namespace) is None

    samples = wait_for(lambda: scrape(metrics_port),
                       lambda s: value(s, "pygoka_operator_replicas", namespace=namespace, name=good,
                                       state="desired") == 2, "the replica gauges")
    assert value(samples, "pygoka_operator_replicas", namespace=namespace, name=good, state="ready") == 0
    assert value(samples, "pygoka_operator_reconciles_total", kind="ProcessorGroup", result="ok") >= 1
    assert value(samples, "pygoka_operator_reconciles_total", kind="ProcessorGroup", result="blocked") >= 1
    assert value(samples, "pygoka_operator_reconcile_duration_seconds_count", kind="ProcessorGroup") >= 2
    assert value(samples, "pygoka_operator_build_info") == 1

    # OpenMetrics when the scraper asks for it (prometheus_client's own handler negotiates).
    request = urllib.request.Request(f"http://127.0.0.1:{metrics_port}/metrics",
                                     headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        assert response.read().decode().endswith("# EOF\n")

    # kubectl get pg: spec replicas and ready replicas side by side (no kubelet here: none ready).
    table = installed.kubectl("get", "pg", good, "-n", namespace).stdout.splitlines()
    header, row = table[0].split(), table[1].split()
    assert header[:4] == ["NAME", "READY", "REPLICAS", "READY-REPLICAS"] and row[2:4] == ["2", "0"], table

    installed.kubectl("delete", "pg", good, "-n", namespace, "--wait=true", "--timeout=60s")
    wait_for(lambda: scrape(metrics_port), lambda s: value(s, "pygoka_operator_replicas", namespace=namespace,
                                                           name=good, state="desired") == 0
             and not any(labels.get("name") == good for labels, _ in s.get("pygoka_operator_replicas", [])),
             "the deleted group's series gone")

