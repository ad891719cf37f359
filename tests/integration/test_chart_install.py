"""`helm install` of the chart against the real API server: misspelt or mistyped values are refused before
anything is created; a release with every naming, environment, label, priority, security and pull-secret value
set is created as asked, and its notes warn that no Kafka brokers are set."""

from __future__ import annotations

import uuid

import pytest
from operator_cluster import CHART, Cluster

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(600)]


@pytest.mark.parametrize(("value", "error"), [
    ("kafka.bootstrapServer=kafka:9092", "at '/kafka': additional properties 'bootstrapServer' not allowed"),
    ("replicaCount=two", "at '/replicaCount': got string, want integer"),
])
def test_helm_install_refuses_a_bad_value(installed: Cluster, value: str, error: str) -> None:
    release = f"bad-{uuid.uuid4().hex[:6]}"
    result = installed.call("helm", "install", release, str(CHART), "-n", release, "--create-namespace",
                            "--set", value, check=False)
    assert result.returncode != 0 and error in result.stderr, result.stderr
    assert release not in installed.call("helm", "list", "-A", "-q").stdout.split()
    assert installed.get("namespace", release) is None


def test_helm_install_with_overrides_warns_without_brokers(installed: Cluster) -> None:
    namespace = f"chart-{uuid.uuid4().hex[:6]}"
    installed.kubectl("create", "namespace", namespace)
    release = "second"
    result = installed.call(
        "helm", "install", release, str(CHART), "-n", namespace, "--set", "rbac.clusterWide=false",
        "--set", f"watchNamespaces={{{namespace}}}", "--set", f"fullnameOverride=ops-{namespace}",
        "--set", "nameOverride=streams", "--set", "extraEnv[0].name=HTTPS_PROXY",
        "--set", "extraEnv[0].value=http://proxy:3128", "--set", "podLabels.team=data",
        "--set", "priorityClassName=system-cluster-critical", "--set", "imagePullSecrets[0].name=regcred")
    assert "WARNING: no Kafka brokers are set" in result.stdout, result.stdout
    deployment = installed.get("deployment", f"ops-{namespace}", "-n", namespace)
    assert deployment is not None and deployment["metadata"]["labels"]["app.kubernetes.io/name"] == "streams"
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["team"] == "data"
    assert pod["spec"]["priorityClassName"] == "system-cluster-critical"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["HTTPS_PROXY"] == "http://proxy:3128" and env["PYGOKA_OPERATOR_IMAGE_PULL_SECRETS"] == "regcred"
    with_brokers = installed.call("helm", "upgrade", release, str(CHART), "-n", namespace, "--reuse-values",
                                  "--set", "kafka.bootstrapServers=kafka:9092")
    assert "WARNING" not in with_brokers.stdout
    installed.call("helm", "uninstall", release, "-n", namespace)
