"""Operator security on the real API server: the RBAC self-check, and Kafka credentials that never leak.

The operator runs as a real process with a ServiceAccount's token, so the API server authorizes every call with
RBAC: with the chart's role it starts; bound to nothing, or missing one rule of the chart's role, it exits 1 at
once, logging each missing permission. A Kafka Secret's values reach the pods only as a secret volume, and appear
in no operator log line (at DEBUG), no event, no status and no StatefulSet, also when librdkafka echoes one.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Names
from operator_cluster import (
    INTERVAL,
    OPERATOR_NS,
    RELEASE,
    Cluster,
    Operator,
    condition,
    processor_group,
    run_operator,
    service_account_kubeconfig,
    wait_for,
)
from pygoka_operator.rbac import required

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(900)]
#: EXIT_WITHIN bounds how long an operator without permissions may take to exit (the check is ~20 requests).
EXIT_WITHIN = 60


@pytest.fixture
def namespace(installed: Cluster) -> Iterator[str]:
    name = f"sec-{uuid.uuid4().hex[:8]}"
    installed.kubectl("create", "namespace", name)
    yield name
    installed.kubectl("delete", "namespace", name, "--wait=false")


def run_until_exit(cluster: Cluster, directory: Path, account: str, namespace: str) -> tuple[int, str]:
    """run_until_exit runs `python -m pygoka_operator` as the ServiceAccount and returns its exit status and log."""
    directory.mkdir(parents=True, exist_ok=True)
    kubeconfig = directory / "kubeconfig"
    service_account_kubeconfig(cluster, kubeconfig, account, namespace)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYGOKA_OPERATOR_BROKERS": "127.0.0.1:1",
           "PYGOKA_OPERATOR_INTERVAL": str(INTERVAL), "PYGOKA_OPERATOR_HEALTH_PORT": "0",
           "PYGOKA_OPERATOR_NAMESPACES": ""}
    try:
        done = subprocess.run([sys.executable, "-m", "pygoka_operator"], env=env, capture_output=True, text=True,
                              timeout=EXIT_WITHIN)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the operator did not exit within {EXIT_WITHIN}s: {exc.stderr!r}")
    return done.returncode, done.stdout + done.stderr


def missing_lines(log: str) -> list[str]:
    return sorted(line.split("missing RBAC permission: ", 1)[1] for line in log.splitlines()
                  if "missing RBAC permission: " in line)


def test_chart_role_passes_the_self_check(operator: Operator) -> None:
    """The chart's ServiceAccount has every permission the operator checks for (the operator fixture runs it)."""
    assert f"RBAC permissions checked: {len(required([], ''))} granted" in operator.log_text()
    assert "missing RBAC permission" not in operator.log_text()


def test_no_role_exits_naming_every_missing_permission(installed: Cluster, namespace: str, tmp_path: Path) -> None:
    """A ServiceAccount bound to no role: exit 1 before kopf starts, one log line per permission."""
    installed.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    status, log = run_until_exit(installed, tmp_path, "nobody", namespace)
    assert status == 1, log
    expected = sorted(permission.describe(ns) for permission, ns in required([], ""))
    assert missing_lines(log) == expected
    assert "create statefulsets.apps in all namespaces" in expected
    assert f"exiting: {len(expected)} missing RBAC permission(s)" in log
    assert "Traceback" not in log and "kopf." not in log, "kopf must not start"


def test_one_rule_missing_exits_naming_only_it(installed: Cluster, namespace: str, tmp_path: Path,
                                               names: Names) -> None:
    """The chart's ClusterRole without its Secrets rule: exit 1 naming exactly `get secrets`."""
    chart_role = installed.get("clusterrole", RELEASE)
    rules = [rule for rule in chart_role["rules"] if rule["resources"] != ["secrets"]]
    assert len(rules) == len(chart_role["rules"]) - 1
    role, account = names("almost"), "almost"
    installed.kubectl("create", "serviceaccount", account, "-n", namespace)
    manifests = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
         "rules": rules},
        *[{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
           "metadata": {"name": f"{role}-{suffix}"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ref},
           "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]}
          for suffix, ref in (("main", role), ("discovery", f"{RELEASE}-discovery"))],
    ]
    installed.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}))
    try:
        status, log = run_until_exit(installed, tmp_path, account, namespace)
        assert status == 1, log
        assert missing_lines(log) == ["get secrets in all namespaces"]
    finally:
        installed.kubectl("delete", "clusterrole", role, check=False)
        installed.kubectl("delete", "clusterrolebinding", f"{role}-main", f"{role}-discovery", check=False)


def leaks(text: str, secrets: list[str]) -> list[str]:
    """leaks are the secret values (or their base64) found in text."""
    forms = [form for value in secrets for form in (value, base64.b64encode(value.encode()).decode())]
    return [form for form in forms if form in text]


def test_kafka_secret_never_leaks(installed: Cluster, brokers: str, namespace: str, tmp_path: Path,
                                  names: Names) -> None:
    """SASL settings from a Secret: the pods mount it; the operator (DEBUG log) reconciles with it and with a
    Secret whose setting librdkafka refuses and echoes; no value shows in logs, events, status or StatefulSets."""
    tag = uuid.uuid4().hex[:10]
    user, password, protocol = f"user-{tag}", f"pw-{tag}-S3cr3t", f"PROTO{tag}"
    installed.kubectl("create", "secret", "generic", "kafka-sasl", "-n", namespace,
                      f"--from-literal=sasl.username={user}", f"--from-literal=sasl.password={password}")
    installed.kubectl("create", "secret", "generic", "kafka-bad", "-n", namespace,
                      f"--from-literal=security.protocol={protocol}", f"--from-literal=sasl.password={password}")
    good, bad, view = names("sasl"), names("badproto"), names("saslview")
    sasl, refusing = {"secretRef": {"name": "kafka-sasl"}}, {"secretRef": {"name": "kafka-bad"}}
    with run_operator(installed, brokers, tmp_path, RELEASE, OPERATOR_NS, watch=namespace,
                      extra_env={"PYGOKA_LOG_LEVEL": "DEBUG"}) as running:
        installed.apply(namespace, processor_group(good, inputs=[names("in")], kafka=sasl))
        installed.apply(namespace, processor_group(bad, inputs=[names("in")], kafka=refusing))
        installed.apply(namespace, {"apiVersion": "pygoka.io/v1alpha1", "kind": "View", "metadata": {"name": view},
                                    "spec": {"group": good, "kafka": sasl}})
        wait_for(lambda: installed.get("pg", good, "-n", namespace),
                 lambda r: (condition(r, "TopicsReady") or {}).get("status") == "True", "TopicsReady with SASL Secret")
        refused = wait_for(lambda: installed.get("pg", bad, "-n", namespace),
                           lambda r: (condition(r, "TopicsReady") or {}).get("reason") == "KafkaError",
                           "TopicsReady KafkaError for the refused setting")
        message = (condition(refused, "TopicsReady") or {})["message"]
        assert 'Invalid value "***" for configuration property "security.protocol"' in message, message
        sts = wait_for(lambda: installed.get("statefulset", good, "-n", namespace), lambda s: True, "StatefulSet")
        wait_for(lambda: installed.get("statefulset", f"{view}-view", "-n", namespace), lambda s: True,
                 "View StatefulSet")
        log = running.log_text()
    assert "[DEBUG" in log, "the operator did not log at DEBUG"
    pod = sts["spec"]["template"]["spec"]
    assert {"name": "kafka-config", "secret": {"secretName": "kafka-sasl", "defaultMode": 0o440}} in pod["volumes"]
    for env in pod["containers"][0]["env"]:
        assert "value" not in env or not leaks(env["value"], [user, password]), env
    secrets = [user, password, protocol]
    everything = {
        "operator log": log,
        "events": installed.kubectl("get", "events", "-n", namespace, "-o", "json").stdout,
        "statuses": installed.kubectl("get", "pg,view", "-n", namespace, "-o", "json").stdout,
        "statefulsets": installed.kubectl("get", "statefulsets", "-n", namespace, "-o", "json").stdout,
    }
    assert "ReconcileBlocked" in everything["events"]
    assert {where: leaks(text, secrets) for where, text in everything.items()} == {key: [] for key in everything}
