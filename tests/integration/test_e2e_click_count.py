"""End to end (issue 5): the operator's pods really run, through tests/podrunner.py, and count clicks exactly.

A ProcessorGroup and a View are applied through the API only; the real kube-controller-manager creates their
StatefulSets' pods, the pod runner binds and runs them as local `pygoka run` processes against the dev Kafka,
and the View's query API (`/tables/<table>/<user>`, on the pods' `query` port only) must answer exactly the
emitted counts for every user.
"""

from __future__ import annotations

import json
import random
import textwrap
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import Names, wait_until
from operator_cluster import (
    Cluster,
    Operator,
    processor_group,
    wait_for,
)
from podrunner import PodRunner
from pygoka import Emitter
from pygoka.codec import String

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(900)]
CLICKS, USERS, PARTITIONS = 100_000, 1_000, 4


def query(port: int, table: str, key: str) -> Any:
    """query is the View's answer for key, or None while it is not there (yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/tables/{table}/{key}", timeout=5) as response:
            return json.loads(response.read())["value"]
    except (urllib.error.HTTPError, OSError):
        return None


def status_of(url: str) -> int:
    """status_of is the HTTP status of a GET of url."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def graph_module(workdir: Path, group: str, clicks: str) -> str:
    """graph_module writes what a user's image holds (examples/k8s/click_count.py with this test's names)."""
    workdir.mkdir(parents=True, exist_ok=True)
    module = f"clicks_{group.replace('-', '_')}"
    (workdir / f"{module}.py").write_text(textwrap.dedent(f"""
        from pygoka.codec import Int64, String
        from pygoka.graph import Input, Persist, define_group

        def count(ctx, msg):
            ctx.set_value((ctx.value() or 0) + 1)

        graph = define_group({group!r}, Input({clicks!r}, String(), count), Persist(Int64()))
    """))
    return f"{module}:graph"


def emit_clicks(brokers: str, topic: str, clicks: int, seed: int) -> Counter[str]:
    """emit_clicks emits clicks over USERS users (each at least once) and returns the true counts."""
    rng = random.Random(seed)
    users = [f"user-{rng.randrange(USERS)}" for _ in range(clicks - USERS)] + [f"user-{u}" for u in range(USERS)]
    with Emitter(brokers, topic, String(), partitions=PARTITIONS) as emitter:
        for user in users:
            emitter.emit(user, "click")
        assert emitter.flush(60) == 0
    return Counter(users)


def ready(runner: PodRunner, replicas: int) -> Callable[[Any], bool]:
    """ready checks a resource's readyReplicas, failing at once if the pod runner broke."""
    def check(resource: Any) -> bool:
        assert not runner.errors, f"pod runner failed: {runner.errors[-3:]}"
        return bool((resource.get("status") or {}).get("readyReplicas") == replicas)
    return check


def assert_counts(runner: PodRunner, view_pod: str, table: str, truth: Counter[str]) -> None:
    """assert_counts waits for the View's query port to serve the truth, then compares every user's count."""
    port = runner.port_of(view_pod, "query")
    wait_until(lambda: all(query(port, table, user) == count for user, count in truth.items()), 180,
               interval=2, message="every count exact")
    answered = {user: query(port, table, user) for user in truth}
    assert answered == dict(truth)
    assert sum(answered.values()) == sum(truth.values())
    # The http port (probes, metrics, monitor page) no longer answers queries; the query port nothing else.
    http = runner.port_of(view_pod)
    user = next(iter(truth))
    assert status_of(f"http://127.0.0.1:{http}/tables/{table}/{user}") == 404
    assert status_of(f"http://127.0.0.1:{http}/readyz") == 200
    assert status_of(f"http://127.0.0.1:{port}/readyz") == 404


def view(name: str, group: str) -> dict[str, Any]:
    return {"apiVersion": "pygoka.io/v1alpha1", "kind": "View", "metadata": {"name": name},
            "spec": {"group": group, "codec": "int64"}}


def test_click_count_through_the_operator(installed: Cluster, operator: Operator, brokers: str, tmp_path: Path,
                                          names: Names) -> None:
    """100,000 clicks over 1,000 users: the View served by the operator's pods answers every count exactly."""
    group, clicks, namespace = names("clicks"), names("user-clicks"), names("e2e")
    installed.kubectl("create", "namespace", namespace)
    graph = graph_module(tmp_path / "app", group, clicks)
    runner = PodRunner(installed.run_dir / "k8s" / "kubeconfig", namespace, tmp_path / "node", tmp_path / "app")
    runner.start()
    try:
        installed.apply(namespace, processor_group(group, graph=graph, inputs=[clicks], partitions=PARTITIONS,
                                                   replicas=2, autoscaling={"intervalSeconds": 2}))
        installed.apply(namespace, view(group, group))
        wait_for(lambda: installed.get("pg", group, "-n", namespace), ready(runner, 2), "2 processor pods ready",
                 timeout=180)
        wait_for(lambda: installed.get("view", group, "-n", namespace), ready(runner, 1), "view pod ready",
                 timeout=180)
        truth = emit_clicks(brokers, clicks, CLICKS, seed=5)
        wait_for(lambda: installed.get("pg", group, "-n", namespace),
                 lambda r: (r.get("status") or {}).get("lag") == 0, "group lag drained", timeout=300)
        assert_counts(runner, f"{group}-view-0", f"{group}-table", truth)
        assert runner.errors == []
    finally:
        runner.stop()


def test_a_lag_burst_scales_out_and_draining_scales_back_in(installed: Cluster, operator: Operator, brokers: str,
                                                           tmp_path: Path, names: Names) -> None:
    """20,000 preloaded clicks at 5,000/replica scale the group 1 -> 4; the pods drain them, it returns to 1."""
    group, clicks, namespace = names("burst"), names("user-clicks"), names("e2e")
    installed.kubectl("create", "namespace", namespace)
    graph = graph_module(tmp_path / "app", group, clicks)
    # The burst is in Kafka before the group exists, so the first measurement sees all of it.
    truth = emit_clicks(brokers, clicks, 20_000, seed=7)
    runner = PodRunner(installed.run_dir / "k8s" / "kubeconfig", namespace, tmp_path / "node", tmp_path / "app")
    runner.start()
    try:
        installed.apply(namespace, view(group, group))
        installed.apply(namespace, processor_group(group, graph=graph, inputs=[clicks], partitions=PARTITIONS,
                                                   autoscaling={"enabled": True, "targetLagPerReplica": 5000,
                                                                "scaleUpStabilizationSeconds": 0,
                                                                "scaleDownStabilizationSeconds": 6,
                                                                "intervalSeconds": 2}))
        pg = wait_for(lambda: installed.get("pg", group, "-n", namespace),
                      lambda r: ((r.get("status") or {}).get("lastScaling") or {}).get("to") == 4, "scaled out to 4",
                      timeout=120)
        assert pg["status"]["lastScaling"]["from"] == 1
        pg = wait_for(lambda: installed.get("pg", group, "-n", namespace),
                      lambda r: r["spec"]["replicas"] == 1 and (r.get("status") or {}).get("lag") == 0,
                      "drained and scaled back in to 1", timeout=300)
        # Draining may pass through an intermediate count (4 -> 3 -> 1) as the lag falls; it ends at 1.
        assert pg["status"]["lastScaling"]["to"] == 1 and pg["status"]["lastScaling"]["from"] > 1
        assert pg["status"]["lastScaling"]["reason"].startswith("ScaledDown")
        wait_for(lambda: installed.get("view", group, "-n", namespace), ready(runner, 1), "view pod ready",
                 timeout=180)
        assert_counts(runner, f"{group}-view-0", f"{group}-table", truth)
        assert runner.errors == []
    finally:
        runner.stop()
