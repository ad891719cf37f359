"""Learning a group's topology from its image: the graph Job, reading its outcome, the comparison with the spec,
and what topics, pods and the autoscaler are planned from (pure, no cluster)."""

from __future__ import annotations

import json
from typing import Any

from pygoka.topology import Topology
from pygoka_operator import learning
from pygoka_operator.builders import processor_statefulset
from pygoka_operator.model import Owner, processor_spec

OWNER = Owner("ProcessorGroup", "clicks", "apps", "uid-1")
SPEC = processor_spec({"image": "registry.example/clicks:1", "graph": "clicks.app:graph",
                       "env": [{"name": "APP_MODE", "value": "prod"}],
                       "podTemplate": {"spec": {"nodeSelector": {"pool": "streams"},
                                                "containers": [{"name": "sidecar", "image": "busybox"}]}}})
TOPOLOGY = Topology("click-count", ("user-clicks",), persist=True, table_codec="Int64")
DESCRIPTION = {"group": "click-count", "inputs": [{"topic": "user-clicks", "codec": "String"}], "loop": None,
               "joins": [], "lookups": [], "outputs": [], "persist": {"topic": "click-count-table", "codec": "Int64"},
               "visitors": []}


def test_the_graph_job_runs_pygoka_graph_in_the_image() -> None:
    job = learning.graph_job(OWNER, SPEC, pull_secrets=["regcred"])
    assert job["metadata"]["name"] == learning.job_name("clicks", SPEC["image"], SPEC["graph"])
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]  # the podTemplate's sidecar would keep the Job from ever completing
    assert container["image"] == "registry.example/clicks:1"
    assert container["command"] == ["pygoka", "graph", "clicks.app:graph", "--json", "--output",
                                    "/dev/termination-log"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["env"] == [{"name": "APP_MODE", "value": "prod"}]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["restartPolicy"] == "Never" and pod["nodeSelector"] == {"pool": "streams"}
    assert pod["imagePullSecrets"] == [{"name": "regcred"}] and pod["securityContext"]["runAsNonRoot"] is True


def test_a_new_image_or_graph_is_a_new_job_name_within_63_characters() -> None:
    names = {learning.job_name("clicks", image, graph) for image in ("i:1", "i:2") for graph in ("m:g", "m:h")}
    assert len(names) == 4
    long = learning.job_name("x" * 80, "i:1", "m:g")
    assert len(long) <= 63 and long.endswith(learning.job_name("x", "i:1", "m:g")[-17:])


def pod(message: str | None) -> dict[str, Any]:
    state = {"terminated": {"exitCode": 0, "message": message}} if message is not None else {"running": {}}
    return {"status": {"containerStatuses": [{"name": "graph", "state": state}]}}


def job(condition: str | None, message: str = "") -> dict[str, Any]:
    conditions = [{"type": condition, "status": "True", "message": message}] if condition else []
    return {"status": {"conditions": conditions}}


def test_the_outcome_of_the_job() -> None:
    assert learning.job_outcome(job(None), [pod(None)]).pending
    done = learning.job_outcome(job("Complete"), [pod(json.dumps(DESCRIPTION))])
    assert done.topology == TOPOLOGY and done.failure is None
    failed = learning.job_outcome(job("Failed", "Job has reached the specified backoff limit"),
                                  [pod("pygoka: cannot import module 'clicks': No module named 'clicks'")])
    assert failed.failure == ("`pygoka graph` failed in the image (Job has reached the specified backoff limit): "
                              "pygoka: cannot import module 'clicks': No module named 'clicks'")
    assert learning.job_outcome(job("Complete"), []).failure == (
        "the graph Job succeeded but its pod left no termination message")
    cut = learning.job_outcome(job("Complete"), [pod(json.dumps(DESCRIPTION)[:-1] + "x" * 4096)])
    assert cut.failure is not None and "cut at the kubelet's 4096-byte limit" in cut.failure


def test_status_graph_belongs_to_one_image_and_graph() -> None:
    status = {"graph": {**learning.graph_status(TOPOLOGY, SPEC), "job": "clicks-graph-1"}}
    assert learning.learnt(status, SPEC) == TOPOLOGY
    assert learning.learnt(status, {**SPEC, "image": "registry.example/clicks:2"}) is None
    assert learning.learnt(status, {**SPEC, "graph": "clicks.app:other"}) is None
    assert learning.learnt({}, SPEC) is None


def test_a_spec_contradicting_the_code_names_field_and_both_values() -> None:
    where = "clicks.app:graph in image registry.example/clicks:1"
    assert learning.contradictions({**SPEC, "inputs": ["user-clicks"], "persist": True}, TOPOLOGY, where) == []
    assert learning.contradictions({**SPEC, "group": "clicks", "inputs": ["user-clicks", "admin-clicks"]},
                                   TOPOLOGY, where) == [
        f"spec.group is 'clicks' but the code of {where} has 'click-count'",
        f"spec.inputs is [user-clicks, admin-clicks] but the code of {where} has [user-clicks]"]


def test_what_topics_pods_and_the_autoscaler_are_planned_from() -> None:
    status = {"graph": learning.graph_status(TOPOLOGY, SPEC), "partitions": 8}
    planned = learning.planned("clicks", SPEC, status, learn=True)
    assert planned is not None
    assert (planned["group"], planned["inputs"], planned["persist"], planned["partitions"]) == (
        "click-count", ["user-clicks"], True, 8)
    assert learning.planned("clicks", SPEC, {"partitions": 8}, learn=True) is None  # not learnt yet
    # Without learning, the spec's fields with the old defaults: group = the resource's name, a table, no loop.
    declared = learning.planned("clicks", {**SPEC, "inputs": ["a"], "partitions": 4}, {}, learn=False)
    assert declared is not None
    assert (declared["group"], declared["inputs"], declared["loop"], declared["persist"], declared["partitions"]) \
        == ("clicks", ["a"], False, True, 4)


def test_the_pods_check_their_code_against_the_planned_topology() -> None:
    spec = {**learning.resolved(SPEC, TOPOLOGY), "partitions": 8}
    statefulset = processor_statefulset(OWNER, spec, "kafka:9092", expected=TOPOLOGY.fields())
    env = {e["name"]: e.get("value") for e in statefulset["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert json.loads(env["PYGOKA_EXPECTED_TOPOLOGY"]) == TOPOLOGY.fields()
    assert env["PYGOKA_PARTITIONS"] == "8"
    assert statefulset["metadata"]["labels"]["pygoka.io/group"] == "click-count"
