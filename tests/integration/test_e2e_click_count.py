"""End to end (issue 5): the operator's pods really run, through tests/podrunner.py, and count clicks exactly.

A ProcessorGroup and a View are applied through the API only; the real kube-controller-manager creates their
StatefulSets' pods, the pod runner binds and runs them as local `pygoka run` processes against the dev Kafka,
and the View's query API (`/tables/<table>/<user>`) must answer exactly the emitted counts for every user.
"""

from __future__ import annotations

import json
import random
import textwrap
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until
from operator_cluster import (
    OPERATOR_NS,
    RELEASE,
    Cluster,
    Operator,
    install_chart,
    processor_group,
    run_operator,
    shared_cluster,
    wait_for,
)
from podrunner import PodRunner
from pygoka import Emitter
from pygoka.codec import String

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(900)]
CLICKS, USERS, PARTITIONS = 100_000, 1_000, 4


@pytest.fixture(scope="module")
def installed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, brokers: str) -> Cluster:
    return install_chart(shared_cluster(request.config, tmp_path_factory), brokers)


@pytest.fixture(scope="module")
def operator(installed: Cluster, brokers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    with run_operator(installed, brokers, tmp_path_factory.mktemp("e2e-operator"), RELEASE, OPERATOR_NS) as running:
        yield running


def query(port: int, table: str, key: str) -> Any:
    """query is the View's answer for key, or None while it is not there (yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/tables/{table}/{key}", timeout=5) as response:
            return json.loads(response.read())["value"]
    except (urllib.error.HTTPError, OSError):
        return None


def test_click_count_through_the_operator(installed: Cluster, operator: Operator, brokers: str, tmp_path: Path,
                                          names: Callable[[str], str]) -> None:
    """100,000 clicks over 1,000 users: the View served by the operator's pods answers every count exactly."""
    group, clicks = names("clicks"), names("user-clicks")
    namespace = names("e2e")
    installed.kubectl("create", "namespace", namespace)
    workdir = tmp_path / "app"
    workdir.mkdir()
    module = f"clicks_{group.replace('-', '_')}"
    # What a user's image holds: examples/k8s/click_count.py with this test's topic and group names.
    (workdir / f"{module}.py").write_text(textwrap.dedent(f"""
        from pygoka.codec import Int64, String
        from pygoka.graph import Input, Persist, define_group

        def count(ctx, msg):
            ctx.set_value((ctx.value() or 0) + 1)

        graph = define_group({group!r}, Input({clicks!r}, String(), count), Persist(Int64()))
    """))
    runner = PodRunner(installed.run_dir / "k8s" / "kubeconfig", namespace, tmp_path / "node", workdir).start()
    try:
        installed.apply(namespace, processor_group(group, graph=f"{module}:graph", inputs=[clicks],
                                                   partitions=PARTITIONS, replicas=2,
                                                   autoscaling={"intervalSeconds": 2}))
        installed.apply(namespace, {"apiVersion": "pygoka.io/v1alpha1", "kind": "View", "metadata": {"name": group},
                                    "spec": {"group": group, "codec": "int64"}})

        def ready(replicas: int) -> Callable[[Any], bool]:
            def check(resource: Any) -> bool:
                assert not runner.errors, f"pod runner failed: {runner.errors[-3:]}"
                return bool((resource.get("status") or {}).get("readyReplicas") == replicas)
            return check

        wait_for(lambda: installed.get("pg", group, "-n", namespace), ready(2), "2 processor pods ready", timeout=180)
        wait_for(lambda: installed.get("view", group, "-n", namespace), ready(1), "view pod ready", timeout=180)

        rng = random.Random(5)
        users = [f"user-{rng.randrange(USERS)}" for _ in range(CLICKS - USERS)] + [f"user-{u}" for u in range(USERS)]
        truth = Counter(users)
        with Emitter(brokers, clicks, String()) as emitter:
            for user in users:
                emitter.emit(user, "click")
            assert emitter.flush(60) == 0

        wait_for(lambda: installed.get("pg", group, "-n", namespace),
                 lambda r: (r.get("status") or {}).get("lag") == 0, "group lag drained", timeout=300)
        port = runner.port_of(f"{group}-view-0")
        table = f"{group}-table"
        last = users[-1]
        wait_until(lambda: query(port, table, last) == truth[last], 120, interval=0.5, message="view caught up")
        wait_until(lambda: all(query(port, table, user) == count for user, count in truth.items()), 120,
                   interval=2, message="every count exact")
        answered = {user: query(port, table, user) for user in truth}
        assert answered == dict(truth)
        assert sum(answered.values()) == CLICKS
        assert runner.errors == []
    finally:
        runner.stop()
