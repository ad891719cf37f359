"""The operator learns each group's topology from its image, against the real API server, Job controller and Kafka.

The operator runs with PYGOKA_OPERATOR_LEARN_GRAPH=true and the chart's ServiceAccount. There is no kubelet here, so
this test stands in for one where the graph Job's pod would run: it runs the pod's own command (`pygoka graph
GRAPH --json`) on the test's graph module and writes the result into the pod's status as a kubelet writes a
termination message; the real Job controller then completes or fails the Job. What only a real node shows (the
image pulled and run, the kubelet's termination message) is left to the e2e tests on one.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from operator_cluster import (
    OPERATOR_NS,
    RELEASE,
    Cluster,
    condition,
    kafka_topic,
    processor_group,
    run_operator,
    wait_for,
)
from pygoka_operator.learning import job_name

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(900)]

IMAGE = "registry.example/clicks:1"
GRAPH = "learn_app:graph"
MODULE = """
from pygoka import Input, Persist, codec, define_group
graph = define_group({group!r}, Input({topic!r}, codec.String(), lambda ctx, msg: None), Persist(codec.Int64()))
"""


@pytest.fixture(scope="module")
def learning_operator(installed: Cluster, brokers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with run_operator(installed, brokers, tmp_path_factory.mktemp("learning-operator"), RELEASE, OPERATOR_NS,
                      extra_env={"PYGOKA_OPERATOR_LEARN_GRAPH": "true"}):
        yield


@pytest.fixture
def namespace(installed: Cluster) -> str:
    name = f"learn-{uuid.uuid4().hex[:8]}"
    installed.kubectl("create", "namespace", name)
    return name


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def graph_output(directory: Path, group: str, topic: str) -> str:
    """graph_output is what the graph pod's command prints in an image holding the module."""
    (directory / "learn_app.py").write_text(textwrap.dedent(MODULE.format(group=group, topic=topic)))
    out = directory / "termination-log"
    subprocess.run([sys.executable, "-m", "pygoka.cli", "graph", GRAPH, "--json", "--output", str(out)], cwd=directory,
                   check=True, capture_output=True, timeout=60)
    return out.read_text()


def job_pods(cluster: Cluster, namespace: str, job: str) -> list[dict[str, Any]]:
    found = cluster.get("pods", "-n", namespace, "-l", f"job-name={job}")
    return list((found or {}).get("items") or [])


def terminate(cluster: Cluster, namespace: str, pod: dict[str, Any], exit_code: int, message: str) -> None:
    """terminate writes what a kubelet writes when the pod's container exits (phase, state, termination message)."""
    finished = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error", "message": message,
                "startedAt": now(), "finishedAt": now()}
    status = {"status": {"phase": "Succeeded" if exit_code == 0 else "Failed", "containerStatuses": [{
        "name": "graph", "image": IMAGE, "imageID": "", "ready": False, "restartCount": 0, "started": False,
        "state": {"terminated": finished}}]}}
    cluster.kubectl("patch", "pod", pod["metadata"]["name"], "-n", namespace, "--subresource=status",
                    "--type=merge", "-p", json.dumps(status))


def run_graph_pod(cluster: Cluster, namespace: str, job: str, exit_code: int, message: str) -> None:
    """run_graph_pod waits for the Job controller's pod and terminates it as the image would."""
    (pod,) = wait_for(lambda: job_pods(cluster, namespace, job) or None, lambda pods: len(pods) >= 1,
                      f"the pod of Job {job}")[:1]
    terminate(cluster, namespace, pod, exit_code, message)


def test_the_code_is_the_source_of_truth(installed: Cluster, learning_operator: None, namespace: str,
                                         brokers: str, tmp_path: Path) -> None:
    """A group declaring nothing but image and graph gets the code's topics; one contradicting its code is refused
    before any topic or pod exists, naming field and values; a new image is learnt before pods roll onto it."""
    admin = AdminClient({"bootstrap.servers": brokers})
    group, topic = f"{namespace}-count", f"{namespace}-clicks"
    message = graph_output(tmp_path, group, topic)
    spec = {"image": IMAGE, "graph": GRAPH}
    installed.apply(namespace, {**processor_group("learnt"), "spec": {**spec, "partitions": 3}})
    installed.apply(namespace, {**processor_group("wrong"), "spec": {**spec, "inputs": ["other-clicks"]}})
    job = job_name("learnt", IMAGE, GRAPH)
    learning = wait_for(lambda: installed.get("pg", "learnt", "-n", namespace),
                        lambda pg: (condition(pg, "GraphReady") or {}).get("reason") == "LearningGraph",
                        "the group to wait for its graph")
    assert job in condition(learning, "GraphReady")["message"]  # type: ignore[index]
    # Learning is progress, not trouble.
    assert (condition(learning, "Degraded") or {}).get("status") == "False"
    assert (condition(learning, "Progressing") or {}).get("reason") == "Waiting"
    assert installed.get("statefulset", "learnt", "-n", namespace) is None
    run_graph_pod(installed, namespace, job, 0, message)
    learnt = wait_for(lambda: installed.get("pg", "learnt", "-n", namespace),
                      lambda pg: (condition(pg, "GraphReady") or {}).get("status") == "True", "the graph learnt")
    assert learnt["status"]["graph"] == {"image": IMAGE, "ref": GRAPH, "group": group, "inputs": [topic], "joins": [],
                                         "lookups": [], "outputs": [], "loop": False, "persist": True,
                                         "tableCodec": "Int64", "job": job}
    statefulset = wait_for(lambda: installed.get("statefulset", "learnt", "-n", namespace), lambda s: True,
                           "the StatefulSet of the learnt group")
    assert kafka_topic(admin, topic) == (3, "delete") and kafka_topic(admin, f"{group}-table") == (3, "compact")
    env = {e["name"]: e.get("value") for e in statefulset["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert json.loads(env["PYGOKA_EXPECTED_TOPOLOGY"])["inputs"] == [topic]
    assert statefulset["metadata"]["labels"]["pygoka.io/group"] == group

    # The same image and graph: the contradiction is found as soon as the Job's pod answers.
    run_graph_pod(installed, namespace, job_name("wrong", IMAGE, GRAPH), 0, message)
    wrong = wait_for(lambda: installed.get("pg", "wrong", "-n", namespace),
                     lambda pg: (condition(pg, "GraphReady") or {}).get("reason") == "GraphMismatch", "the refusal")
    assert condition(wrong, "GraphReady")["message"] == (  # type: ignore[index]
        f"spec.inputs is [other-clicks] but the code of {GRAPH} in image {IMAGE} has [{topic}]")
    assert (condition(wrong, "Degraded") or {}).get("status") == "True"
    assert installed.get("statefulset", "wrong", "-n", namespace) is None
    assert kafka_topic(admin, "other-clicks") is None

    # A new image: learnt again; the StatefulSet keeps the old one until the new code is known to match.
    installed.kubectl("patch", "pg", "learnt", "-n", namespace, "--type=merge", "-p",
                      json.dumps({"spec": {"image": "registry.example/clicks:2"}}))
    new_job = job_name("learnt", "registry.example/clicks:2", GRAPH)
    wait_for(lambda: installed.get("pg", "learnt", "-n", namespace),
             lambda pg: (condition(pg, "GraphReady") or {}).get("reason") == "LearningGraph", "learning again")
    assert installed.get("statefulset", "learnt", "-n", namespace)["spec"]["template"]["spec"]["containers"][0][
        "image"] == IMAGE
    run_graph_pod(installed, namespace, new_job, 0, message)
    wait_for(lambda: installed.get("statefulset", "learnt", "-n", namespace),
             lambda s: s["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/clicks:2",
             "the StatefulSet on the new image")


def test_an_image_whose_graph_cannot_be_loaded_is_reported(installed: Cluster, learning_operator: None,
                                                           namespace: str) -> None:
    """`pygoka graph` failing in the image (here: each of the Job's tries) fails the Job; the condition quotes the
    command's last lines, as FallbackToLogsOnError puts them in the termination message."""
    installed.apply(namespace, {**processor_group("broken"), "spec": {"image": IMAGE, "graph": "missing:graph"}})
    job = job_name("broken", IMAGE, "missing:graph")
    error = "pygoka: cannot import module 'missing': No module named 'missing'"

    def fail_each_pod() -> dict[str, Any] | None:
        for pod in job_pods(installed, namespace, job):
            if pod.get("status", {}).get("phase") not in ("Failed", "Succeeded"):
                terminate(installed, namespace, pod, 2, error)
        return installed.get("pg", "broken", "-n", namespace)

    broken = wait_for(fail_each_pod, lambda pg: (condition(pg, "GraphReady") or {}).get("reason") == "GraphJobFailed",
                      "the failed graph Job reported", timeout=180)
    assert error in condition(broken, "GraphReady")["message"]  # type: ignore[index]
    assert installed.get("statefulset", "broken", "-n", namespace) is None
