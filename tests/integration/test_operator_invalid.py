"""Invalid custom resources against the real API server, every field of both CRDs (generated from the schema).

Each case (tests/crd_cases.py) is applied with `kubectl apply --validate=strict` (server-side field validation,
so unknown fields are refused rather than pruned): the API server must refuse it with a message naming the field
path, and store nothing. The operator runs meanwhile; the last test shows it survived all of them and that specs
only the operator can judge (a malformed podTemplate, env the API server refuses in a StatefulSet) are reported
in conditions while a valid group is reconciled.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from crd_cases import RULE_CASES, SPECS, Case, fields, rule_messages, schema_cases
from helpers import Names
from operator_cluster import Cluster, Operator, condition, healthz, processor_group, wait_for

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(900)]
CASES = schema_cases()


@pytest.fixture(scope="module")
def namespace(installed: Cluster) -> str:
    name = f"invalid-{uuid.uuid4().hex[:8]}"
    installed.kubectl("create", "namespace", name)
    return name


def resource(kind: str, name: str, spec: dict[str, Any]) -> str:
    return json.dumps({"apiVersion": "pygoka.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec})


def strict_apply(cluster: Cluster, namespace: str, text: str) -> Any:
    return cluster.kubectl("apply", "--validate=strict", "-n", namespace, "-f", "-", stdin=text, check=False)


def test_every_field_and_rule_has_cases() -> None:
    """The generated cases cover every field of both specs, and RULE_CASES every CEL rule of the schemas."""
    covered = {case.path for case in CASES}
    for kind, schema in SPECS.items():
        assert fields(schema) <= covered, kind
    assert set(RULE_CASES) == rule_messages(SPECS["ProcessorGroup"]) | rule_messages(SPECS["View"])
    kinds = {(case.kind, case.what.split("-")[0]) for case in CASES}
    assert {("ProcessorGroup", "unknown"), ("View", "unknown"), ("ProcessorGroup", "missing")} <= kinds


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_api_server_refuses_naming_the_field(installed: Cluster, operator: Operator, namespace: str,
                                            case: Case) -> None:
    """A wrong type, a value out of range, a missing required field or an unknown field: refused, field named."""
    name = f"bad-{uuid.uuid4().hex[:8]}"
    refused = strict_apply(installed, namespace, resource(case.kind, name, case.spec))
    assert refused.returncode != 0, f"accepted: {case.spec}"
    assert case.path in refused.stderr, refused.stderr
    assert installed.get(case.kind.lower(), name, "-n", namespace) is None


@pytest.mark.parametrize("message", sorted(RULE_CASES))
def test_cel_rules_refuse_naming_the_field(installed: Cluster, operator: Operator, namespace: str,
                                          message: str) -> None:
    """replicas above partitions, a partitions decrease, a group rename, min above max autoscaling replicas, a
    View with both table and group: refused with the rule's message and the field; the stored spec unchanged."""
    case = RULE_CASES[message]
    name = f"rule-{uuid.uuid4().hex[:8]}"
    if case.before is not None:
        strict_apply(installed, namespace, resource(case.kind, name, case.before)).check_returncode()
    refused = strict_apply(installed, namespace, resource(case.kind, name, case.spec))
    assert refused.returncode != 0 and message in refused.stderr, refused.stderr
    assert f"{case.path}: " in refused.stderr, refused.stderr
    stored = installed.get(case.kind.lower(), name, "-n", namespace)
    if case.before is None:
        assert stored is None
    else:
        assert {key: stored["spec"][key] for key in case.before} == case.before


#: REPORTED are specs the schema cannot judge (free-form objects): the operator reports them in conditions.
REPORTED: dict[str, tuple[dict[str, Any], str]] = {
    "template-metadata": ({"podTemplate": {"metadata": "not-an-object"}},
                          "spec.podTemplate.metadata must be an object"),
    "containers-not-a-list": ({"podTemplate": {"spec": {"containers": "not-a-list"}}}, "containers"),
    "env-value-from": ({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {}}}]}, "valueFrom.secretKeyRef"),
}


def blocked(cluster: Cluster, namespace: str, name: str, text: str) -> Any:
    """blocked waits for the group's Degraded=True/ReconcileBlocked naming text and returns the group.

    The first pass may be blocked on the topics it just created; the refusal shows on the next one.
    """
    return wait_for(lambda: cluster.get("pg", name, "-n", namespace),
                    lambda r: (condition(r, "Degraded") or {}).get("reason") == "ReconcileBlocked"
                    and text in (condition(r, "Degraded") or {}).get("message", ""),
                    f"Degraded for {name} naming {text!r}", timeout=120)


def test_operator_survives_and_reports_what_only_it_can_judge(installed: Cluster, operator: Operator,
                                                             namespace: str, names: Names) -> None:
    """After every refused resource above the operator is healthy; free-form fields the API server refuses in the
    StatefulSet are reported (Degraded/ReconcileBlocked naming the field) and a valid group still reconciles."""
    for key, (extra, _) in REPORTED.items():
        installed.apply(namespace, processor_group(f"{key}-{uuid.uuid4().hex[:6]}", inputs=[names("in")], **extra))
    valid = names("valid")
    installed.apply(namespace, processor_group(valid, inputs=[names("in")]))
    wait_for(lambda: installed.get("statefulset", valid, "-n", namespace), lambda s: True, "the valid StatefulSet",
             timeout=120)
    groups = json.loads(installed.kubectl("get", "pg", "-n", namespace, "-o", "json").stdout)["items"]
    for key, (_, text) in REPORTED.items():
        (name,) = [g["metadata"]["name"] for g in groups if g["metadata"]["name"].startswith(f"{key}-")]
        pg = blocked(installed, namespace, name, text)
        assert (condition(pg, "Degraded") or {})["status"] == "True", key
        assert installed.get("statefulset", name, "-n", namespace) is None
    assert operator.process.poll() is None
    assert healthz(operator.health_port) == 200
    assert "Handler 'reconcile_processorgroup' failed" not in operator.log_text()
