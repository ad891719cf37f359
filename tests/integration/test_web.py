"""pygoka.web over real HTTP against a running processor and view on Kafka: probes, metrics, queries."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pygoka
import pytest
from helpers import Names, Start, wait_until
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families
from pygoka.web import MonitorServer
from web_helpers import USERS, ClickApp, expected_counts, get, get_json

pytestmark = pytest.mark.kafka


CLICKS = [(USERS[i % 3], f"click-{i}") for i in range(12)]  # dave never clicks: a missing key


@pytest.fixture
def server() -> Iterator[MonitorServer]:
    """server is a started MonitorServer on a free port."""
    monitor = MonitorServer(host="127.0.0.1", port=0)
    monitor.start()
    yield monitor
    monitor.stop()


def samples(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """samples scrapes /metrics and groups the samples by name."""
    status, content_type, body = get(f"{url}/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    result: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            result.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return result


def scrape_openmetrics(url: str) -> dict[str, float]:
    """scrape_openmetrics asks /metrics for OpenMetrics and sums the samples of each family."""
    request = urllib.request.Request(f"{url}/metrics", headers={
        "Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        body = response.read().decode()
    assert body.endswith("# EOF\n")
    return {family.name: sum(s.value for s in family.samples if s.name == family.name + "_total" or
                             s.name == family.name) for family in openmetrics_families(body)}


def total(metrics: dict[str, list[tuple[dict[str, str], float]]], metric: str, **labels: str) -> float:
    """total sums the samples of metric whose labels include labels."""
    return sum(value for sample_labels, value in metrics.get(metric, [])
               if all(sample_labels.get(k) == v for k, v in labels.items()))


def test_probes_metrics_and_queries(brokers: str, names: Names, tmp_path: Path, start: Start,
                                    server: MonitorServer) -> None:
    """Readiness follows recovery, metrics match what was emitted, queries answer 200/404/400."""
    app = ClickApp(brokers, names("web-group"), names("web-clicks"))
    app.emit(CLICKS)
    processor = app.processor(tmp_path / "processor")
    server.attach_processor(processor)
    assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"

    status, body = get_json(f"{server.url}/readyz")
    assert status == 503 and body["reasons"] == [f"processor {app.group} not recovered"]
    status, body = get_json(f"{server.url}/healthz")
    assert (status, body["status"]) == (200, "ok")

    running = start(processor)
    counts = expected_counts(CLICKS)
    wait_until(lambda: sum(p["processed"] for p in get_json(f"{server.url}/api/state")[1]["processors"][0]
                           ["partitions"]) == len(CLICKS), message="all clicks processed")
    view = app.view(tmp_path / "view")
    server.attach_view(view)
    view.start()
    wait_until(lambda: get_json(f"{server.url}/readyz")[0] == 200, message="readyz 200 once recovered")
    assert get_json(f"{server.url}/readyz")[1] == {"status": "ready", "reasons": []}

    state = get_json(f"{server.url}/api/state")[1]
    proc = state["processors"][0]
    assert proc["status"] == "running" and proc["recovered"] is True
    assert sorted(p["partition"] for p in proc["partitions"]) == list(range(2))
    assert {p["state"] for p in proc["partitions"]} == {"running"}
    assert state["tables"] == [app.table]

    # Lag comes from librdkafka's cached high watermarks, refreshed by fetches: it drains to 0.
    wait_until(lambda: total(samples(server.url), "pygoka_consumer_lag", group=app.group) == 0
               and len(samples(server.url).get("pygoka_consumer_lag", [])) == 2, message="lag 0 on both partitions")
    wait_until(lambda: total(samples(server.url), "pygoka_table_keys_estimate", source="view") >= 3,
               message="view table size")
    metrics = samples(server.url)
    assert total(metrics, "pygoka_messages_processed_total", group=app.group) == len(CLICKS)
    assert total(metrics, "pygoka_processor_failures_total", group=app.group) == 0
    assert "pygoka_processor_restarts_total" in metrics
    assert total(metrics, "pygoka_processor_restarts_total", group=app.group) == 0
    assert total(metrics, "pygoka_processor_running", group=app.group) == 1
    assert total(metrics, "pygoka_processor_recovered", group=app.group) == 1
    assert total(metrics, "pygoka_view_recovered", table=app.table) == 1
    assert total(metrics, "pygoka_rebalances_total", group=app.group) >= 1
    assert total(metrics, "pygoka_checkpoint_seconds_count", group=app.group) >= 1
    assert total(metrics, "pygoka_checkpoint_seconds_bucket", group=app.group, le="+Inf") == \
        total(metrics, "pygoka_checkpoint_seconds_count", group=app.group)
    assert 0 < total(metrics, "pygoka_checkpoint_seconds_sum", group=app.group) < 60
    # RocksDB's estimate counts overwrites still in the memtable: between the key count and the updates.
    for source in ("processor", "view"):
        assert len(counts) <= total(metrics, "pygoka_table_keys_estimate", source=source) <= len(CLICKS)
        assert {v for _, v in [s for s in metrics["pygoka_table_recovery_progress"]
                               if s[0]["source"] == source]} == {1.0}
        assert total(metrics, "pygoka_table_state", source=source, state="running") == 2
    assert total(metrics, "pygoka_table_state", source="processor", group=app.group, table=app.table,
                 state="running") == 2
    assert max(v for _, v in metrics["pygoka_table_offset"]) >= 0
    assert "process_cpu_seconds_total" in metrics
    (info,) = metrics["pygoka_build_info"]
    assert info[0]["version"] == pygoka.__version__ and info[1] == 1
    # A scraper preferring OpenMetrics gets it (prometheus_client's content negotiation).
    openmetrics = scrape_openmetrics(server.url)
    assert openmetrics["pygoka_messages_processed"] == len(CLICKS)

    for user, count in counts.items():
        status, body = get_json(f"{server.url}/tables/{app.table}/{user}")
        assert (status, body) == (200, {"table": app.table, "key": user, "value": count, "encoding": "json"})
    status, body = get_json(f"{server.url}/tables/{app.table}/dave")
    assert status == 404 and "not found" in body["error"]
    status, body = get_json(f"{server.url}/tables/no-such-table/alice")
    assert status == 400 and body["tables"] == [app.table]

    # Read-only: nothing but GET/HEAD is routed.
    request = urllib.request.Request(f"{server.url}/tables/{app.table}/alice", data=b"9", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 405

    view.stop()
    running.stop()
    # A stopped view answers 503 for queries of its table only when no holder can read it.
    assert get_json(f"{server.url}/tables/{app.table}/alice")[0] == 503
    assert get_json(f"{server.url}/readyz")[0] == 503
    assert get_json(f"{server.url}/healthz")[0] == 200


def test_failed_run_makes_healthz_fail(brokers: str, names: Names, tmp_path: Path, start: Start,
                                       server: MonitorServer) -> None:
    """A processor whose run() failed turns /healthz to 503 and counts the failure in /metrics."""
    app = ClickApp(brokers, names("web-fail"), names("web-fail-clicks"))
    app.emit([("alice", "click"), ("bob", "boom")])
    processor = app.processor(tmp_path / "processor")
    server.attach_processor(processor)
    running = start(processor)
    running.join(60)
    assert running.error is not None and "boom click" in str(running.error)

    status, body = get_json(f"{server.url}/healthz")
    assert status == 503 and body["status"] == "fail"
    assert body["problems"][0].startswith(f"processor {app.group} failed:")
    assert total(samples(server.url), "pygoka_processor_failures_total", group=app.group) == 1
    state = get_json(f"{server.url}/api/state")[1]["processors"][0]
    assert state["status"] == "failed" and "boom click" in state["error"]
