"""The chart's monitoring: alerts parsed by Prometheus's rule parser, the dashboard decoded strictly with Grafana's
schema types, every metric either queries one that pygoka exports, and monitors that select the pods' ports.

Both checks run scripts/promcheck.sh (Prometheus's and grafana-foundation-sdk's Go packages from the module proxy,
built once and cached).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from pygoka.web.metrics import build_registry
from pygoka.web.monitor import Monitor
from pygoka_operator import metrics as operator_metrics
from pygoka_operator.builders import processor_statefulset, view_statefulset
from pygoka_operator.model import Owner, processor_spec, view_spec
from test_operator_chart import ROOT, by_kind, render

FILES = ROOT / "charts" / "pygoka-operator" / "files"
RULES = FILES / "prometheus-rules.yaml"
DASHBOARD = FILES / "grafana-dashboard.json"
PROMCHECK = ROOT / "scripts" / "promcheck.sh"


def promcheck(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PROMCHECK), *args], input=stdin, capture_output=True, text=True, timeout=600)


def exported() -> set[str]:
    """exported are the sample names pygoka's processes export: the runtime's and the operator's."""
    names: set[str] = set()
    for registry in (build_registry(Monitor()), operator_metrics.REGISTRY):
        for family in registry.collect():
            if isinstance(family, CounterMetricFamily) or family.type == "counter":
                names.add(f"{family.name}_total")
            elif isinstance(family, HistogramMetricFamily) or family.type == "histogram":
                names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
            else:
                names.add(family.name)
    return names


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [" ".join(rule["expr"].split()) for group in groups for rule in group["rules"]]


def test_the_rules_parse_and_query_only_exported_metrics() -> None:
    checked = promcheck("rules", str(RULES))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"{RULES}: 2 groups, 9 rules"
    names = promcheck("exprs", stdin="\n".join(rule_exprs()))
    assert names.returncode == 0, names.stderr
    assert set(names.stdout.split()) <= exported(), set(names.stdout.split()) - exported()
    alerts = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    assert {"PygokaConsumerLagGrowing", "PygokaProcessorNotRunning", "PygokaTableNotRecovered"} <= alerts


def test_the_dashboard_matches_grafanas_schema_and_queries_only_exported_metrics() -> None:
    checked = promcheck("dashboard", str(DASHBOARD))
    assert checked.returncode == 0, checked.stderr
    queried = set(checked.stdout.split())
    assert queried <= exported(), queried - exported()
    # Lag, rate, recovery, rebalances and pod state, per group.
    assert {"pygoka_consumer_lag", "pygoka_messages_processed_total", "pygoka_table_recovery_progress",
            "pygoka_rebalances_total", "pygoka_operator_replicas"} <= queried
    titles = [panel["title"] for panel in json.loads(DASHBOARD.read_text())["panels"]]
    assert len(titles) == len(set(titles))


@pytest.mark.parametrize(("broken", "error"), [
    (lambda d: d["panels"][0].update(gridPoss={}), "unexpected field 'gridPoss'"),
    (lambda d: d["panels"][1]["gridPos"].update(w="wide"), "panels[1].gridPos.w"),
    (lambda d: d["panels"][2]["targets"][0].update(expr="sum by (group (x)"), "parse error"),
    (lambda d: d["panels"][3]["targets"][0].update(expr="up{job=\"$nothing\"}"), "undefined variable $nothing"),
])
def test_the_dashboard_check_fails_on_a_broken_dashboard(tmp_path: Path, broken: Any, error: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    broken(dashboard)
    (tmp_path / "d.json").write_text(json.dumps(dashboard))
    checked = promcheck("dashboard", str(tmp_path / "d.json"))
    assert checked.returncode == 1 and error in checked.stderr, checked.stderr


def test_the_rules_check_fails_on_a_broken_rule(tmp_path: Path) -> None:
    rules = yaml.safe_load(RULES.read_text())
    rules["groups"][0]["rules"][1]["expr"] = "pygoka_processor_running =="
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(rules))
    checked = promcheck("rules", str(tmp_path / "r.yaml"))
    assert checked.returncode == 1 and "PygokaProcessorNotRunning" in checked.stderr, checked.stderr


def pod_of(statefulset: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = statefulset["spec"]["template"]
    return template


def test_monitors_select_the_pods_and_ports_they_scrape(tmp_path: Path) -> None:
    """The groups' PodMonitor selects the labels and port name of the operator's processor and view pods; the
    operator's PodMonitor and ServiceMonitor select its own pod's labels and metrics port."""
    docs = render(tmp_path, "monitoring.podMonitor.enabled=true", "monitoring.serviceMonitor.enabled=true",
                  "monitoring.groupsPodMonitor.enabled=true", "monitoring.prometheusRule.enabled=true",
                  "monitoring.grafanaDashboard.enabled=true", "monitoring.prometheusRule.labels.release=kps")
    monitors = {m["metadata"]["name"]: m for m in by_kind(docs, "PodMonitor")}
    groups = monitors["rel-pygoka-operator-groups"]["spec"]
    assert groups["namespaceSelector"] == {"any": True}
    owner = Owner("ProcessorGroup", "clicks", "apps", "uid")
    pods = [pod_of(processor_statefulset(owner, processor_spec({"image": "i", "graph": "m:g", "partitions": 2}),
                                         "kafka:9092")),
            pod_of(view_statefulset(Owner("View", "clicks", "apps", "uid"), view_spec({"group": "g"}), "kafka:9092",
                                    "runtime:1"))]
    for pod in pods:
        assert groups["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        ports = {p["name"] for c in pod["spec"]["containers"] for p in c["ports"]}
        assert {e["port"] for e in groups["podMetricsEndpoints"]} <= ports
    (deployment,) = by_kind(docs, "Deployment")
    operator_pod = deployment["spec"]["template"]
    operator_ports = {p["name"] for p in operator_pod["spec"]["containers"][0]["ports"]}
    own = monitors["rel-pygoka-operator"]["spec"]
    assert own["selector"]["matchLabels"].items() <= operator_pod["metadata"]["labels"].items()
    assert {e["port"] for e in own["podMetricsEndpoints"]} <= operator_ports
    (service,) = [s for s in by_kind(docs, "Service") if s["metadata"]["name"] == "rel-pygoka-operator-metrics"]
    assert service["spec"]["selector"].items() <= operator_pod["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] in operator_ports
    (service_monitor,) = by_kind(docs, "ServiceMonitor")
    assert service_monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service_monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    (rule,) = by_kind(docs, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(RULES.read_text()) and rule["metadata"]["labels"]["release"] == "kps"
    (dashboard,) = by_kind(docs, "ConfigMap")
    assert json.loads(dashboard["data"]["pygoka.json"]) == json.loads(DASHBOARD.read_text())
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_watched_namespaces_limit_the_groups_monitor(tmp_path: Path) -> None:
    docs = render(tmp_path, "monitoring.groupsPodMonitor.enabled=true", "rbac.clusterWide=false",
                  "watchNamespaces={team-a,team-b}")
    (monitor,) = by_kind(docs, "PodMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}


def test_nothing_is_rendered_for_monitoring_by_default(tmp_path: Path) -> None:
    docs = render(tmp_path)
    assert not [d for d in docs if d["apiVersion"].startswith("monitoring.coreos.com")]
    assert by_kind(docs, "ConfigMap") == []


def test_the_monitors_decode_strictly_into_the_prometheus_operator_types(tmp_path: Path) -> None:
    """Every monitoring.coreos.com object the chart renders is a valid PodMonitor, ServiceMonitor or
    PrometheusRule of the Prometheus Operator's API (its Go types, unknown fields refused)."""
    sets = ["monitoring.podMonitor.enabled=true", "monitoring.serviceMonitor.enabled=true",
            "monitoring.groupsPodMonitor.enabled=true", "monitoring.prometheusRule.enabled=true"]
    manifest = tmp_path / "monitors.yaml"
    manifest.write_text(yaml.safe_dump_all(render(tmp_path, *sets)))
    checked = promcheck("monitors", str(manifest))
    assert checked.returncode == 0, checked.stderr
    assert sorted(checked.stdout.splitlines()) == ["PodMonitor rel-pygoka-operator",
                                                   "PodMonitor rel-pygoka-operator-groups",
                                                   "PrometheusRule rel-pygoka-operator",
                                                   "ServiceMonitor rel-pygoka-operator"]
    manifest.write_text(manifest.read_text().replace("podMetricsEndpoints:", "podMetricEndpoints:"))
    broken = promcheck("monitors", str(manifest))
    assert broken.returncode == 1 and 'unknown field "podMetricEndpoints"' in broken.stderr, broken.stderr
