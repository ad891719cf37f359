"""Operator builders: the StatefulSet, Services and PDB of a full ProcessorGroup and View spec (no cluster)."""

from __future__ import annotations

from typing import Any

import pytest
from pygoka_operator.builders import (
    headless_service,
    pod_disruption_budget,
    processor_access,
    processor_statefulset,
    query_service,
    view_statefulset,
)
from pygoka_operator.builders.labels import labels, selector_labels
from pygoka_operator.builders.merge import merge
from pygoka_operator.model import Owner, processor_spec, view_spec

OWNER = Owner("ProcessorGroup", "clicks", "apps", "uid-1")
VIEW_OWNER = Owner("View", "clicks", "apps", "uid-2")

FULL_SPEC: dict[str, Any] = {
    "group": "click-count",
    "image": "registry.example/clicks:1",
    "graph": "clicks.app:graph",
    "kafka": {"bootstrapServers": "kafka:9092", "secretRef": {"name": "kafka-sasl"}},
    "partitions": 12,
    "inputs": ["user-clicks"],
    "replicas": 3,
    "storage": {"size": "5Gi", "storageClassName": "fast"},
    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
    "env": [{"name": "LOG_FORMAT", "value": "json"}, {"name": "PYGOKA_HTTP_PORT", "value": "9999"}],
    "options": {"hotStandby": True},
    "podTemplate": {
        "metadata": {"annotations": {"team": "data"}, "labels": {"app.kubernetes.io/name": "hijacked"}},
        "spec": {"nodeSelector": {"disk": "ssd"},
                 "containers": [{"name": "pygoka", "resources": {"limits": {"memory": "1Gi"}}},
                                {"name": "sidecar", "image": "busybox"}]},
    },
}


def sts() -> dict[str, Any]:
    return processor_statefulset(OWNER, processor_spec(FULL_SPEC), "kafka:9092")


def container(statefulset: dict[str, Any], name: str = "pygoka") -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in statefulset["spec"]["template"]["spec"]["containers"] if c["name"] == name)
    return found


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def test_statefulset_metadata_labels_and_owner() -> None:
    statefulset = sts()
    assert statefulset["metadata"]["name"] == "clicks"
    assert statefulset["metadata"]["namespace"] == "apps"
    assert statefulset["metadata"]["labels"] == {
        "app.kubernetes.io/name": "pygoka", "app.kubernetes.io/instance": "clicks",
        "app.kubernetes.io/component": "processor", "app.kubernetes.io/managed-by": "pygoka-operator",
        "pygoka.io/group": "click-count"}
    assert statefulset["metadata"]["ownerReferences"] == [{
        "apiVersion": "pygoka.io/v1alpha1", "kind": "ProcessorGroup", "name": "clicks", "uid": "uid-1",
        "controller": True, "blockOwnerDeletion": True}]
    assert statefulset["spec"]["replicas"] == 3
    assert statefulset["spec"]["serviceName"] == "clicks"
    assert statefulset["spec"]["selector"] == {"matchLabels": selector_labels("clicks", "processor")}


def test_pod_labels_keep_matching_the_selector_despite_the_override() -> None:
    template = sts()["spec"]["template"]
    assert template["metadata"]["labels"]["app.kubernetes.io/name"] == "pygoka"
    assert template["metadata"]["annotations"] == {"team": "data"}
    for key, value in sts()["spec"]["selector"]["matchLabels"].items():
        assert template["metadata"]["labels"][key] == value


def test_container_command_env_and_probes() -> None:
    c = container(sts())
    assert c["image"] == "registry.example/clicks:1"
    assert c["command"] == ["pygoka", "run", "clicks.app:graph"]
    env = env_of(c)
    assert env["PYGOKA_BROKERS"] == "kafka:9092"
    assert env["PYGOKA_STATE_DIR"] == "/var/lib/pygoka"
    assert env["PYGOKA_INSTANCE_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["PYGOKA_PARTITIONS"] == "12"
    assert env["PYGOKA_HOT_STANDBY"] == "true"
    assert env["PYGOKA_KAFKA_CONFIG_DIR"] == "/etc/pygoka/kafka"
    assert env["LOG_FORMAT"] == "json"
    # A user's env entry of the same name overrides the generated one instead of duplicating it.
    assert env["PYGOKA_HTTP_PORT"] == "9999"
    assert [e["name"] for e in c["env"]].count("PYGOKA_HTTP_PORT") == 1
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def test_security_context_and_volumes() -> None:
    pod = sts()["spec"]["template"]["spec"]
    c = container(sts())
    assert pod["terminationGracePeriodSeconds"] == 60
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["state"]["mountPath"] == "/var/lib/pygoka"
    assert mounts["tmp"]["mountPath"] == "/tmp"
    assert mounts["kafka-config"] == {"name": "kafka-config", "mountPath": "/etc/pygoka/kafka", "readOnly": True}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}
    assert volumes["kafka-config"]["secret"]["secretName"] == "kafka-sasl"


def test_volume_claim_templates() -> None:
    (claim,) = sts()["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "state"
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}},
                             "storageClassName": "fast"}
    assert sts()["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}


def test_default_spec_has_one_gib_no_secret_and_the_name_as_group() -> None:
    spec = processor_spec({"image": "i", "graph": "m:g", "partitions": 4})
    statefulset = processor_statefulset(OWNER, spec, "b:9092")
    c = container(statefulset)
    assert statefulset["spec"]["replicas"] == 1
    assert statefulset["metadata"]["labels"]["pygoka.io/group"] == "clicks"
    assert statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "storageClassName" not in statefulset["spec"]["volumeClaimTemplates"][0]["spec"]
    assert "PYGOKA_KAFKA_CONFIG_DIR" not in env_of(c)
    # Options the spec leaves out keep the runtime's defaults: no variable at all.
    assert "PYGOKA_HOT_STANDBY" not in env_of(c) and "PYGOKA_GUARANTEE" not in env_of(c)
    assert [v["name"] for v in statefulset["spec"]["template"]["spec"]["volumes"]] == ["tmp"]


def test_pod_template_merge_keeps_generated_fields_and_adds_sidecars() -> None:
    pod = sts()["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"disk": "ssd"}
    assert [c["name"] for c in pod["containers"]] == ["pygoka", "sidecar"]
    c = container(sts())
    assert c["resources"] == {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
    assert c["command"] == ["pygoka", "run", "clicks.app:graph"]


def test_merge_replaces_scalars_and_unnamed_lists() -> None:
    assert merge({"a": 1, "b": {"c": [1, 2]}}, {"b": {"c": [3]}, "d": 4}) == {"a": 1, "b": {"c": [3]}, "d": 4}


def test_services_and_pdb() -> None:
    own = labels("clicks", "processor", "click-count")
    selector = selector_labels("clicks", "processor")
    service = headless_service(OWNER, "clicks", own, selector, 8080)
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    pdb = pod_disruption_budget(OWNER, "clicks", own, selector)
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}
    query = query_service(VIEW_OWNER, "clicks-view", own, selector, 80)
    assert query["spec"]["type"] == "ClusterIP"
    # Only the pods' query port: the Service exposes neither the monitor page nor probes or metrics.
    assert query["spec"]["ports"] == [{"name": "query", "port": 80, "targetPort": "query", "protocol": "TCP"}]


def test_processor_pods_may_get_their_own_statefulset_and_nothing_else() -> None:
    own = labels("clicks", "processor", "click-count")
    account, role, binding = processor_access(OWNER, "clicks", own, processor_spec(FULL_SPEC))
    for child in (account, role, binding):
        assert child["metadata"] == {"name": "clicks", "namespace": "apps", "labels": own,
                                     "ownerReferences": [OWNER.reference()]}
    assert account["kind"] == "ServiceAccount"
    assert role["rules"] == [{"apiGroups": ["apps"], "resources": ["statefulsets"], "resourceNames": ["clicks"],
                              "verbs": ["get"]}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "clicks"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "clicks", "namespace": "apps"}]
    pod = processor_statefulset(OWNER, processor_spec(FULL_SPEC), "kafka:9092")["spec"]["template"]["spec"]
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("clicks", True)


def test_a_pod_template_service_account_wins_gets_the_role_and_view_pods_get_none() -> None:
    spec = processor_spec({**FULL_SPEC, "podTemplate": {"spec": {"serviceAccountName": "own"}}})
    pod = processor_statefulset(OWNER, spec, "kafka:9092")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "own"
    # The pods run as "own": the Role must be bound to it, or they could not tell a scale-in from a restart.
    _, role, binding = processor_access(OWNER, "clicks", labels("clicks", "processor", "click-count"), spec)
    assert role["rules"][0]["resourceNames"] == ["clicks"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "own", "namespace": "apps"}]
    view = view_statefulset(VIEW_OWNER, view_spec({"group": "click-count"}), "kafka:9092",
                            "registry.example/pygoka:1")["spec"]["template"]["spec"]
    assert "serviceAccountName" not in view and "automountServiceAccountToken" not in view


def test_a_view_serves_queries_on_a_port_of_its_own_and_the_query_service_targets_only_it() -> None:
    """View pods: http (probes, metrics, page) and query (PYGOKA_QUERY_PORT); the query Service reaches query only."""
    spec = view_spec({"group": "click-count", "servicePort": 9000})
    c = container(view_statefulset(VIEW_OWNER, spec, "kafka:9092", "rt:1"))
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                          {"name": "query", "containerPort": 8081, "protocol": "TCP"}]
    env = env_of(c)
    assert (env["PYGOKA_HTTP_PORT"], env["PYGOKA_QUERY_PORT"]) == ("8080", "8081")
    assert [e["name"] for e in c["env"]].count("PYGOKA_QUERY_PORT") == 1
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    selector = selector_labels("clicks", "view")
    own = labels("clicks", "view", "click-count")
    (exposed,) = query_service(VIEW_OWNER, "clicks-view", own, selector, int(spec["servicePort"]))["spec"]["ports"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert exposed["port"] == 9000
    # The named targetPort resolves to the container port the runtime is told to serve the queries on.
    assert ports[exposed["targetPort"]] == int(env["PYGOKA_QUERY_PORT"]) != ports["http"]
    (headless,) = headless_service(VIEW_OWNER, "clicks-view-headless", own, selector, 8080)["spec"]["ports"]
    assert (headless["targetPort"], ports[headless["targetPort"]]) == ("http", int(env["PYGOKA_HTTP_PORT"]))


def test_processor_pods_keep_their_queries_on_the_http_port() -> None:
    """A ProcessorGroup has no query Service: its pods get no query port, /tables stays on http."""
    c = container(processor_statefulset(OWNER, processor_spec({"image": "i", "graph": "m:g", "partitions": 4}), "b"))
    assert [p["name"] for p in c["ports"]] == ["http"]
    assert "PYGOKA_QUERY_PORT" not in env_of(c)


def test_view_statefulset_runs_the_builtin_query_server() -> None:
    spec = view_spec({"group": "click-count", "codec": "int64", "replicas": 2})
    statefulset = view_statefulset(VIEW_OWNER, spec, "kafka:9092", "pygoka-runtime:1")
    c = container(statefulset)
    assert statefulset["metadata"]["name"] == "clicks-view"
    assert statefulset["spec"]["serviceName"] == "clicks-view-headless"
    assert statefulset["spec"]["replicas"] == 2
    assert statefulset["metadata"]["labels"]["app.kubernetes.io/component"] == "view"
    assert c["image"] == "pygoka-runtime:1"
    assert c["command"] == ["pygoka", "run", "--view", "click-count-table", "--codec", "int64"]
    assert env_of(c)["PYGOKA_STATE_DIR"] == "/var/lib/pygoka"
    assert statefulset["metadata"]["ownerReferences"][0]["kind"] == "View"


def test_view_with_a_user_graph_and_table_topic() -> None:
    spec = view_spec({"table": "scores", "graph": "app.views:scores", "image": "mine:2"})
    c = container(view_statefulset(VIEW_OWNER, spec, "kafka:9092", "pygoka-runtime:1"))
    assert c["command"] == ["pygoka", "run", "app.views:scores"]
    assert c["image"] == "mine:2"


def test_guarantee_reaches_the_processor_pods() -> None:
    """spec.options.guarantee is PYGOKA_GUARANTEE of `pygoka run`, once."""
    exactly = processor_spec({**FULL_SPEC, "options": {"guarantee": "exactly_once"}})
    c = container(processor_statefulset(OWNER, exactly, "b:9092"))
    assert env_of(c)["PYGOKA_GUARANTEE"] == "exactly_once"
    assert [e["name"] for e in c["env"]].count("PYGOKA_GUARANTEE") == 1


HOSTILE_TEMPLATE: dict[str, Any] = {"spec": {
    "securityContext": {"runAsNonRoot": False, "runAsUser": 2000},
    "containers": [{"name": "pygoka", "securityContext": {"readOnlyRootFilesystem": False, "privileged": True,
                                                          "allowPrivilegeEscalation": True, "runAsNonRoot": False}},
                   {"name": "sidecar", "image": "busybox"}],
    "initContainers": [{"name": "init", "image": "busybox", "securityContext": {"runAsUser": 3000}}],
}}


@pytest.mark.parametrize("kind", ["processor", "view"])
def test_every_container_runs_non_root_read_only_unprivileged(kind: str) -> None:
    """Processor and view pods, their containers, sidecars and init containers (also from a podTemplate trying
    to weaken them): non-root, read-only root filesystem, no privilege escalation."""
    if kind == "processor":
        statefulset = processor_statefulset(OWNER, processor_spec({**FULL_SPEC, "podTemplate": HOSTILE_TEMPLATE}),
                                            "b:9092")
        plain = processor_statefulset(OWNER, processor_spec({"image": "i", "graph": "m:g", "partitions": 1}), "b")
    else:
        statefulset = view_statefulset(VIEW_OWNER, view_spec({"group": "g", "podTemplate": HOSTILE_TEMPLATE}),
                                       "b:9092", "rt:1")
        plain = view_statefulset(VIEW_OWNER, view_spec({"group": "g"}), "b:9092", "rt:1")
    for sts_ in (statefulset, plain):
        pod = sts_["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["securityContext"].get("runAsUser", 10001) != 0
        every = [*pod["containers"], *pod.get("initContainers", [])]
        for c in every:
            context = c["securityContext"]
            assert (context["runAsNonRoot"], context["readOnlyRootFilesystem"], context["allowPrivilegeEscalation"],
                    context["privileged"]) == (True, True, False, False), c["name"]
    pod = statefulset["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["pygoka", "sidecar"]
    assert [c["name"] for c in pod["initContainers"]] == ["init"]
    assert pod["securityContext"]["runAsUser"] == 2000  # another non-root uid is the user's choice
    assert pod["initContainers"][0]["securityContext"]["runAsUser"] == 3000
    assert container(statefulset)["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container(plain)["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_a_malformed_pod_template_is_left_for_the_api_server_to_refuse() -> None:
    spec = processor_spec({"image": "i", "graph": "m:g", "partitions": 1, "podTemplate": {"spec": {"containers": "x"}}})
    assert processor_statefulset(OWNER, spec, "b")["spec"]["template"]["spec"]["containers"] == "x"


@pytest.mark.parametrize(("template", "field"), [
    ("x", "spec.podTemplate"), ({"metadata": "x"}, "spec.podTemplate.metadata"),
    ({"spec": ["x"]}, "spec.podTemplate.spec")])
def test_a_pod_template_of_the_wrong_shape_is_refused_naming_the_field(template: Any, field: str) -> None:
    spec = processor_spec({"image": "i", "graph": "m:g", "partitions": 1, "podTemplate": template})
    with pytest.raises(ValueError, match=f"^{field} must be an object"):
        processor_statefulset(OWNER, spec, "b")
