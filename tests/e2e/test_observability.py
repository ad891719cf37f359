"""What monitoring sees on the real node: the chart's PodMonitors select the operator's and the groups' running
pods and ports, which serve metrics there; the monitor page works in Chromium through the API server's service
proxy (kubectl proxy in front of it), as a user opens it.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from clicks import ClickCount
from helpers import free_port, wait_until
from node_cluster import CHART, OPERATOR_NS, RELEASE, NodeCluster
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright
from web_helpers import CHROMIUM, CHROMIUM_ARGS, partition_rows, query_form

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(600)]


def pod_monitors(cluster: NodeCluster) -> dict[str, dict[str, Any]]:
    """pod_monitors are the chart's PodMonitors (the Prometheus Operator's CRDs are not installed: rendered)."""
    rendered = cluster.call("helm", "template", RELEASE, str(CHART), "-n", OPERATOR_NS, "--kube-version", "1.35.4",
                            "--set", "monitoring.podMonitor.enabled=true",
                            "--set", "monitoring.groupsPodMonitor.enabled=true").stdout
    return {doc["metadata"]["name"]: doc["spec"] for doc in yaml.safe_load_all(rendered)
            if doc and doc["kind"] == "PodMonitor"}


def selected(cluster: NodeCluster, spec: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    selector = ",".join(f"{key}={value}" for key, value in spec["selector"]["matchLabels"].items())
    return [pod for pod in cluster.pods(namespace, selector) if pod["status"].get("phase") == "Running"]


def test_the_chart_monitors_select_the_running_pods_and_their_metrics(in_cluster: NodeCluster) -> None:
    clicks = ClickCount(in_cluster, in_cluster.namespace("monitored"), "monitored", partitions=2)
    clicks.apply(replicas=1)
    clicks.wait_ready(1)
    clicks.wait_ready(1, kind="view")
    monitors = pod_monitors(in_cluster)
    groups, operator = monitors[f"{RELEASE}-groups"], monitors[RELEASE]
    assert groups["namespaceSelector"] == {"any": True}
    cases = [(operator, OPERATOR_NS, "pygoka_operator_"), (groups, clicks.namespace, "pygoka_build_info")]
    for spec, namespace, metric in cases:
        pods = selected(in_cluster, spec, namespace)
        # The two operator replicas; the group's pod and the View's.
        assert len(pods) == 2, sorted(pod["metadata"]["name"] for pod in pods)
        for endpoint in spec["podMetricsEndpoints"]:
            for pod in pods:
                ports = {p["name"]: p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
                assert endpoint["port"] in ports, (pod["metadata"]["name"], ports)
                path = (f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}:{ports[endpoint['port']]}"
                        f"/proxy{endpoint.get('path', '/metrics')}")
                assert metric in in_cluster.kubectl("get", "--raw", path).stdout


@contextlib.contextmanager
def kubectl_proxy(cluster: NodeCluster) -> Iterator[str]:
    port = free_port()
    with subprocess.Popen([str(cluster.bin_dir / "kubectl"), "proxy", f"--port={port}"], env=cluster.env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proxy:
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: subprocess.run(["curl", "-fsS", f"{url}/version"], capture_output=True).returncode == 0,
                       30, interval=0.5, message="kubectl proxy")
            yield url
        finally:
            proxy.terminate()


def test_the_monitor_page_through_the_api_servers_service_proxy(in_cluster: NodeCluster, tmp_path: Path) -> None:
    clicks = ClickCount(in_cluster, in_cluster.namespace("page"), "page", partitions=2)
    clicks.apply(replicas=1, with_view=False)
    clicks.wait_ready(1)
    clicks.emit(400, users=4)
    clicks.drained()
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run scripts/lib/chromium.sh"
    with kubectl_proxy(in_cluster) as proxy, sync_playwright() as playwright:
        # The group's headless Service (named as the group), port http: what `kubectl proxy` users open.
        url = f"{proxy}/api/v1/namespaces/{clicks.namespace}/services/{clicks.group}:http/proxy/"
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 700})
            page.goto(url)
            try:
                rows = partition_rows(page, clicks.group, 2, timeout_ms=30_000)
            except PlaywrightError as exc:
                state = subprocess.run(["curl", "-sS", f"{url}api/state"], capture_output=True, text=True).stdout
                raise AssertionError(f"no partitions on {url}: {page.content()[:2000]}\napi/state: {state[:2000]}") \
                    from exc
            assert len(rows) == 2
            assert [row.state for row in rows] == ["running", "running"]
            assert sum(row.processed for row in rows) == 400
            answer = query_form(page, clicks.table, "user-1", 200, timeout_ms=15_000)
            assert f'"value": {clicks.truth["user-1"]}' in answer
        finally:
            browser.close()
