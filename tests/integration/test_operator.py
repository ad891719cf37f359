"""The operator (issue 4) as a real process against a real kube-apiserver and the dev Kafka.

The chart is installed with a real `helm install`; the operator runs as `python -m pygoka_operator` with the
chart's ServiceAccount token (the API server authorizes with RBAC), so every object it creates proves the
chart's permissions suffice. There is no kubelet: pods are created but never run, so Ready stays False.
"""

from __future__ import annotations

import json
import re
import textwrap
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from helpers import Names, wait_until
from operator_cluster import (
    CHART,
    INTERVAL,
    OPERATOR_NS,
    RELEASE,
    Cluster,
    Operator,
    condition,
    free_port,
    healthz,
    kafka_topic,
    processor_group,
    run_operator,
    wait_for,
)

# Starting the control plane takes ~10 s with cached binaries (a cold build is much longer).
pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(1800)]


@pytest.fixture
def namespace(installed: Cluster) -> str:
    name = f"op-{uuid.uuid4().hex[:8]}"
    installed.kubectl("create", "namespace", name)
    return name


@pytest.fixture(scope="module")
def admin(brokers: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": brokers})


def test_namespaced_install_reconciles_only_its_namespace(installed: Cluster, brokers: str, tmp_path: Path,
                                                          names: Names) -> None:
    """rbac.clusterWide=false: Roles only in watchNamespaces; the operator run with that ServiceAccount reconciles
    a ProcessorGroup there and may not touch StatefulSets elsewhere.

    It runs before the cluster-wide operator starts (first test using neither it nor `operator`), so the
    StatefulSet below can only come from the namespaced operator; its log names the handled object as well.
    """
    watched, other = names("watched"), names("other")
    for ns in (watched, other):
        installed.kubectl("create", "namespace", ns)
    release = names("scoped")
    installed.call("helm", "install", release, str(CHART), "-n", watched,
                   "--skip-crds", "--set", "rbac.clusterWide=false", "--set", f"watchNamespaces={{{watched}}}",
                   "--set", f"kafka.bootstrapServers={brokers}")
    account = f"{release}-pygoka-operator"
    sa = f"system:serviceaccount:{watched}:{account}"
    def can(*args: str) -> str:
        return installed.kubectl("auth", "can-i", *args, "--as", sa, check=False).stdout.strip()
    assert can("create", "statefulsets.apps", "-n", watched) == "yes"
    assert can("create", "statefulsets.apps", "-n", other) == "no"
    assert can("list", "processorgroups.pygoka.io", "-A") == "no"
    name = names("pg")
    with run_operator(installed, brokers, tmp_path, account, watched, watch=watched) as scoped:
        installed.apply(watched, processor_group(name, inputs=[names("in")]))
        sts = wait_for(lambda: installed.get("statefulset", name, "-n", watched), lambda s: True, "StatefulSet")
        assert sts["spec"]["replicas"] == 1
        wait_until(lambda: f"[{watched}/{name}]" in scoped.log.read_text(), 30, interval=0.5,
                   message="namespaced operator handled the group")
        # A whole-word 403 (a Forbidden response), not the digits of a port such as the API server's 52403.
        assert re.search(r"\b403\b", scoped.log.read_text()) is None
    installed.kubectl("delete", "pg", name, "-n", watched, "--wait=false")


def test_operator_health_and_chart_rbac(installed: Cluster, operator: Operator) -> None:
    """The operator answers /healthz over HTTP with its probes; the chart's ServiceAccount may create children
    but not delete them."""
    assert healthz(operator.health_port) == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.health_port}/healthz", timeout=5) as response:
        probes = json.loads(response.read())
    assert set(probes) == {"now"} and probes["now"].startswith("20")
    sa = f"system:serviceaccount:{OPERATOR_NS}:{RELEASE}"
    can = {verb_resource: installed.kubectl("auth", "can-i", *verb_resource.split(), "--as", sa, "-A",
                                            check=False).stdout.strip()
           for verb_resource in ("create statefulsets.apps", "patch processorgroups.pygoka.io/status",
                                 "get secrets", "delete statefulsets.apps", "list secrets", "delete pods")}
    assert can == {"create statefulsets.apps": "yes", "patch processorgroups.pygoka.io/status": "yes",
                   "get secrets": "yes", "delete statefulsets.apps": "no", "list secrets": "no",
                   "delete pods": "no"}
    deployment = installed.get("deployment", RELEASE, "-n", OPERATOR_NS)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == RELEASE


def test_processor_group_children_topics_and_status(installed: Cluster, operator: Operator, namespace: str,
                                                    admin: AdminClient, names: Names) -> None:
    """A ProcessorGroup gets its topics (input + compacted table), headless Service, StatefulSet, PDB, status."""
    name, clicks = names("clicks"), names("user-clicks")
    installed.kubectl("create", "secret", "generic", "kafka", "-n", namespace, "--from-literal=client.id=pygoka-op")
    installed.apply(namespace, processor_group(name, inputs=[clicks], replicas=2,
                                               kafka={"secretRef": {"name": "kafka"}},
                                               storage={"size": "2Gi"}))
    pg = wait_for(lambda: installed.get("pg", name, "-n", namespace),
                  lambda r: (condition(r, "TopicsReady") or {}).get("status") == "True"
                  and r["status"].get("observedGeneration") == 1, "TopicsReady=True")

    assert kafka_topic(admin, clicks) == (4, "delete")
    assert kafka_topic(admin, f"{name}-table") == (4, "compact")
    status = pg["status"]
    assert sorted(status["topics"], key=lambda t: t["name"]) == sorted([
        {"name": clicks, "partitions": 4, "cleanupPolicy": "delete"},
        {"name": f"{name}-table", "partitions": 4, "cleanupPolicy": "compact"}], key=lambda t: t["name"])
    assert status["partitions"] == 4
    assert status["selector"] == (f"app.kubernetes.io/component=processor,app.kubernetes.io/instance={name},"
                                  "app.kubernetes.io/name=pygoka")
    assert "pygoka.io/finalizer" in pg["metadata"]["finalizers"]

    sts = installed.get("statefulset", name, "-n", namespace)
    assert sts["metadata"]["ownerReferences"][0]["uid"] == pg["metadata"]["uid"]
    assert sts["metadata"]["labels"]["pygoka.io/group"] == name
    assert sts["spec"]["replicas"] == 2
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "2Gi"
    pod_spec = sts["spec"]["template"]["spec"]
    assert pod_spec["containers"][0]["command"] == ["pygoka", "run", "click_count:graph"]
    assert pod_spec["volumes"][-1]["secret"]["secretName"] == "kafka"
    service = installed.get("service", name, "-n", namespace)
    assert service["spec"]["clusterIP"] == "None"
    pdb = installed.get("pdb", name, "-n", namespace)
    assert pdb["spec"]["maxUnavailable"] == 1

    # The StatefulSet controller (real kube-controller-manager) creates the pods and their claims.
    wait_for(lambda: installed.get("pvc", f"state-{name}-1", "-n", namespace), lambda c: True, "PVC of pod 1")
    pg = wait_for(lambda: installed.get("pg", name, "-n", namespace), lambda r: r["status"].get("replicas") == 2,
                  "status.replicas from the StatefulSet")
    assert (condition(pg, "Ready") or {}).get("status") == "False"  # no kubelet: pods never become ready
    assert (condition(pg, "Progressing") or {}).get("reason") == "RollingOut"
    assert (condition(pg, "Degraded") or {}).get("status") == "False"


def test_scale_subresource_and_statefulset_follows_the_group(installed: Cluster, operator: Operator,
                                                             namespace: str, names: Names) -> None:
    """`kubectl scale pg` changes the StatefulSet; scaling the StatefulSet directly is reverted."""
    name = names("scaled")
    installed.apply(namespace, processor_group(name, inputs=[names("in")]))
    wait_for(lambda: installed.get("statefulset", name, "-n", namespace), lambda s: s["spec"]["replicas"] == 1,
             "StatefulSet")
    installed.kubectl("scale", "-n", namespace, f"pg/{name}", "--replicas=3")
    wait_for(lambda: installed.get("statefulset", name, "-n", namespace), lambda s: s["spec"]["replicas"] == 3,
             "StatefulSet scaled to 3")
    scale = json.loads(installed.kubectl("get", "--raw",
                                         f"/apis/pygoka.io/v1alpha1/namespaces/{namespace}/processorgroups/{name}/scale"
                                         ).stdout)
    assert scale["spec"]["replicas"] == 3
    installed.kubectl("scale", "-n", namespace, f"statefulset/{name}", "--replicas=1")
    wait_for(lambda: installed.get("statefulset", name, "-n", namespace), lambda s: s["spec"]["replicas"] == 3,
             "direct StatefulSet scale reverted", timeout=INTERVAL * 10)
    rejected = installed.kubectl("scale", "-n", namespace, f"pg/{name}", "--replicas=5", check=False)
    assert rejected.returncode != 0 and "replicas must be <= partitions" in rejected.stderr


def test_cel_rules_reject_invalid_changes(installed: Cluster, namespace: str, names: Names) -> None:
    """The schema rejects replicas > partitions, fewer partitions, a new group and a View with table and group."""
    name = names("cel")
    too_many = installed.apply(namespace, processor_group(name, replicas=5), check=False)
    assert too_many.returncode != 0 and "replicas must be <= partitions" in too_many.stderr
    installed.apply(namespace, processor_group(name, partitions=4))
    fewer = installed.apply(namespace, processor_group(name, partitions=2), check=False)
    assert fewer.returncode != 0 and "partitions cannot decrease" in fewer.stderr
    regroup = installed.apply(namespace, processor_group(name, group="other"), check=False)
    assert regroup.returncode != 0 and "group is immutable" in regroup.stderr
    assert installed.get("pg", name, "-n", namespace)["spec"]["group"] == ""
    both = {"apiVersion": "pygoka.io/v1alpha1", "kind": "View", "metadata": {"name": name},
            "spec": {"table": "t", "group": "g"}}
    rejected = installed.apply(namespace, both, check=False)
    assert rejected.returncode != 0 and "exactly one of table or group" in rejected.stderr


def test_copartitioning_break_blocks_the_statefulset(installed: Cluster, operator: Operator, namespace: str,
                                                     admin: AdminClient, names: Names) -> None:
    """An existing input with 2 partitions for a 4-partition group: TopicsReady=False naming it; no pods."""
    name, narrow = names("broken"), names("narrow")
    admin.create_topics([NewTopic(narrow, num_partitions=2, replication_factor=1)])[narrow].result(timeout=30)
    installed.apply(namespace, processor_group(name, inputs=[narrow]))
    pg = wait_for(lambda: installed.get("pg", name, "-n", namespace),
                  lambda r: (condition(r, "TopicsReady") or {}).get("status") == "False", "TopicsReady=False")
    topics_ready = condition(pg, "TopicsReady") or {}
    assert topics_ready["reason"] == "PartitionCountMismatch"
    assert f"topic '{narrow}' has 2 partitions, expected 4" in topics_ready["message"]
    assert (condition(pg, "Degraded") or {}).get("status") == "True"
    assert installed.get("statefulset", name, "-n", namespace) is None
    events = installed.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    assert "ReconcileBlocked" in events


def test_spec_change_rolls_the_statefulset(installed: Cluster, operator: Operator, namespace: str,
                                           names: Names) -> None:
    """A new image, env and podTemplate reach the StatefulSet's pod template."""
    name = names("roll")
    installed.apply(namespace, processor_group(name))
    wait_for(lambda: installed.get("statefulset", name, "-n", namespace), lambda s: True, "StatefulSet")
    installed.apply(namespace, processor_group(name, image="registry.example/clicks:2",
                                               env=[{"name": "EXTRA", "value": "1"}],
                                               podTemplate={"spec": {"nodeSelector": {"disk": "ssd"}}}))
    sts = wait_for(lambda: installed.get("statefulset", name, "-n", namespace),
                   lambda s: s["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/clicks:2",
                   "rolled StatefulSet")
    pod_spec = sts["spec"]["template"]["spec"]
    assert {"name": "EXTRA", "value": "1"} in pod_spec["containers"][0]["env"]
    assert pod_spec["nodeSelector"] == {"disk": "ssd"}


def test_pods_of_a_pod_template_service_account_may_read_their_statefulset(installed: Cluster, operator: Operator,
                                                                           namespace: str, names: Names) -> None:
    """Pods running as a podTemplate's ServiceAccount get the Role too: it tells them a scale-in from a restart."""
    name = names("own-sa")
    installed.kubectl("create", "serviceaccount", "apps-identity", "-n", namespace)
    installed.apply(namespace, processor_group(name, podTemplate={"spec": {"serviceAccountName": "apps-identity"}}))
    sts = wait_for(lambda: installed.get("statefulset", name, "-n", namespace), lambda s: True, "StatefulSet")
    assert sts["spec"]["template"]["spec"]["serviceAccountName"] == "apps-identity"

    def can(verb: str, resource: str, account: str) -> str:
        return installed.kubectl("auth", "can-i", verb, resource, "-n", namespace,
                                 f"--as=system:serviceaccount:{namespace}:{account}", check=False).stdout.strip()

    wait_until(lambda: can("get", f"statefulsets.apps/{name}", "apps-identity") == "yes", 30, interval=0.5,
               message="the podTemplate's ServiceAccount may get its StatefulSet")
    assert can("get", "statefulsets.apps/other", "apps-identity") == "no"
    assert can("list", "secrets", "apps-identity") == "no"


def test_objects_the_operator_did_not_create_are_not_taken_over(installed: Cluster, operator: Operator,
                                                                 namespace: str) -> None:
    """A ProcessorGroup named default would make its namespace's default ServiceAccount its own (and delete it with
    itself): the group is blocked naming that ServiceAccount, which stays as it was."""
    installed.apply(namespace, processor_group("default"))
    pg = wait_for(lambda: installed.get("pg", "default", "-n", namespace),
                  lambda r: (condition(r, "Degraded") or {}).get("reason") == "ReconcileBlocked", "Degraded")
    message = (condition(pg, "Degraded") or {}).get("message", "")
    assert f"ServiceAccount {namespace}/default exists and is not ProcessorGroup default's" in message, message
    account = installed.get("serviceaccount", "default", "-n", namespace) or {}
    assert "ownerReferences" not in account.get("metadata", {}), account
    assert "app.kubernetes.io/managed-by" not in (account.get("metadata", {}).get("labels") or {})
    assert installed.get("statefulset", "default", "-n", namespace) is None
    installed.kubectl("delete", "pg", "default", "-n", namespace, "--wait=false")


def test_children_orphaned_by_a_deletion_are_adopted_by_the_recreated_group(installed: Cluster, operator: Operator,
                                                                             namespace: str, names: Names) -> None:
    """`kubectl delete --cascade=orphan` leaves the children without an owner; the group created again adopts them."""
    name = names("orphan")
    installed.apply(namespace, processor_group(name))
    first = wait_for(lambda: installed.get("statefulset", name, "-n", namespace), lambda s: True, "StatefulSet")
    installed.kubectl("delete", "pg", name, "-n", namespace, "--cascade=orphan")
    wait_until(lambda: not (installed.get("statefulset", name, "-n", namespace) or {})
               .get("metadata", {}).get("ownerReferences"), 30, interval=0.5, message="orphaned StatefulSet")
    installed.apply(namespace, processor_group(name))
    pg = wait_for(lambda: installed.get("pg", name, "-n", namespace), lambda r: bool(r.get("status")), "status")
    sts = wait_for(lambda: installed.get("statefulset", name, "-n", namespace),
                   lambda s: [o["uid"] for o in s["metadata"].get("ownerReferences") or []] == [pg["metadata"]["uid"]],
                   "StatefulSet owned by the new ProcessorGroup")
    assert sts["metadata"]["uid"] == first["metadata"]["uid"]  # the same object, adopted


def test_view_children(installed: Cluster, operator: Operator, namespace: str, names: Names) -> None:
    """A View gets a StatefulSet running the built-in query server and its query Service."""
    name = names("counts")
    view = textwrap.dedent(f"""
        apiVersion: pygoka.io/v1alpha1
        kind: View
        metadata: {{name: {name}}}
        spec: {{group: click-count, codec: int64, servicePort: 9000}}
    """)
    installed.apply(namespace, view)
    sts = wait_for(lambda: installed.get("statefulset", f"{name}-view", "-n", namespace), lambda s: True,
                   "view StatefulSet")
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["pygoka", "run", "--view", "click-count-table", "--codec", "int64"]
    assert container["image"] == "pygoka-runtime:test"
    assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [("http", 8080), ("query", 8081)]
    assert {"name": "PYGOKA_QUERY_PORT", "value": "8081"} in container["env"]
    assert container["readinessProbe"]["httpGet"]["port"] == "http"
    service = installed.get("service", f"{name}-view", "-n", namespace)
    # The query Service reaches the pods' query port and nothing else; the headless one stays on http.
    assert service["spec"]["ports"] == [{"name": "query", "port": 9000, "targetPort": "query", "protocol": "TCP"}]
    headless = installed.get("service", f"{name}-view-headless", "-n", namespace)
    assert headless["spec"]["clusterIP"] == "None"
    assert [p["targetPort"] for p in headless["spec"]["ports"]] == ["http"]
    view_status = wait_for(lambda: installed.get("view", name, "-n", namespace),
                           lambda r: (r.get("status") or {}).get("table") == "click-count-table", "view status")
    assert condition(view_status, "Ready") is not None


@pytest.mark.parametrize("policy", ["Delete", "Retain"])
def test_deletion_honours_topic_deletion_policy(installed: Cluster, operator: Operator, namespace: str,
                                                admin: AdminClient, names: Names, policy: str) -> None:
    """Deleting a ProcessorGroup removes its table and loop topics only under Delete; inputs always stay."""
    name, source = names("gone"), names("source")
    installed.apply(namespace, processor_group(name, inputs=[source], loop=True, topicDeletionPolicy=policy))
    wait_for(lambda: installed.get("pg", name, "-n", namespace),
             lambda r: (condition(r, "TopicsReady") or {}).get("status") == "True", "TopicsReady")
    assert kafka_topic(admin, f"{name}-loop") == (4, "delete")
    installed.kubectl("delete", "pg", name, "-n", namespace, "--wait=true", "--timeout=60s")
    assert installed.get("pg", name, "-n", namespace) is None
    if policy == "Delete":
        wait_until(lambda: kafka_topic(admin, f"{name}-table") is None and kafka_topic(admin, f"{name}-loop") is None,
                   30, interval=0.5, message="owned topics deleted")
    else:
        assert kafka_topic(admin, f"{name}-table") == (4, "compact")
        assert kafka_topic(admin, f"{name}-loop") == (4, "delete")
    assert kafka_topic(admin, source) == (4, "delete")
    # The garbage collector removes the children through their owner references.
    wait_until(lambda: installed.get("statefulset", name, "-n", namespace) is None, 60, interval=0.5,
               message="StatefulSet garbage-collected")


def test_schema_rejects_a_graph_without_module_and_attribute(installed: Cluster, namespace: str,
                                                             names: Names) -> None:
    """spec.graph must be module:attr; the API server refuses anything else before the operator sees it."""
    rejected = installed.apply(namespace, processor_group(names("nograph"), graph="click_count"), check=False)
    assert rejected.returncode != 0 and "spec.graph" in rejected.stderr


def test_specs_the_schema_cannot_catch_are_reported_not_fatal(installed: Cluster, operator: Operator,
                                                              namespace: str, names: Names) -> None:
    """Unreachable Kafka and resources the API server refuses: conditions and events say why, the operator
    keeps running and reconciles a valid ProcessorGroup in the meantime."""
    closed = f"127.0.0.1:{free_port()}"
    unreachable, refused, healthy = names("nokafka"), names("badres"), names("fine")
    installed.apply(namespace, processor_group(unreachable, kafka={"bootstrapServers": closed}))
    installed.apply(namespace, processor_group(refused, inputs=[names("in")],
                                               resources={"requests": {"cpu": "lots"}}))
    installed.apply(namespace, processor_group(healthy, inputs=[names("in")]))

    # The first pass may be blocked on the topics it just created; the refusal shows on the next one.
    pg = wait_for(lambda: installed.get("pg", refused, "-n", namespace),
                  lambda r: "the API server rejected" in (condition(r, "Degraded") or {}).get("message", ""),
                  "Degraded for refused resources")
    degraded = condition(pg, "Degraded") or {}
    assert (degraded["status"], degraded["reason"]) == ("True", "ReconcileBlocked")
    assert f"the API server rejected StatefulSet {namespace}/{refused}" in degraded["message"]
    assert "quantities must match" in degraded["message"]
    assert (condition(pg, "TopicsReady") or {}).get("status") == "True"
    assert installed.get("statefulset", refused, "-n", namespace) is None

    wait_for(lambda: installed.get("statefulset", healthy, "-n", namespace), lambda s: True,
             "the valid group's StatefulSet")
    # librdkafka gives up on the closed port after the operator's Kafka timeout (15 s by default).
    pg = wait_for(lambda: installed.get("pg", unreachable, "-n", namespace),
                  lambda r: (condition(r, "TopicsReady") or {}).get("reason") == "KafkaUnreachable",
                  "TopicsReady KafkaUnreachable", timeout=90)
    topics_ready = condition(pg, "TopicsReady") or {}
    assert topics_ready["status"] == "Unknown"
    assert topics_ready["message"].startswith(f"Kafka unreachable at {closed}: ")
    assert (condition(pg, "Degraded") or {}).get("status") == "True"
    assert installed.get("statefulset", unreachable, "-n", namespace) is None

    events = json.loads(installed.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    blocked = {event["involvedObject"]["name"] for event in events if event["reason"] == "ReconcileBlocked"}
    assert {unreachable, refused} <= blocked
    assert operator.process.poll() is None
    assert healthz(operator.health_port) == 200
