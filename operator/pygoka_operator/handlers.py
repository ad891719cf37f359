"""kopf handlers: thin, level-based reconciliation of ProcessorGroups and Views through the pure builders."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from pygoka.errors import TopicError
from pygoka.topic_manager import KafkaTopicManager
from pygoka.topology import Topology

from pygoka_operator import GROUP, MANAGER, VERSION, kube, learning, metrics
from pygoka_operator.autoscaling import daemon as _autoscaler  # noqa: F401 - registers the autoscaler daemon
from pygoka_operator.builders import (
    headless_service,
    pod_disruption_budget,
    processor_access,
    processor_statefulset,
    query_service,
    view_statefulset,
)
from pygoka_operator.builders.labels import labels, selector_labels, selector_string
from pygoka_operator.builders.view import VIEW_HTTP_PORT
from pygoka_operator.client_config import client_config_problems
from pygoka_operator.config import OperatorConfig
from pygoka_operator.kafka_target import KafkaTarget, resource_kafka
from pygoka_operator.model import Owner, child_name, processor_spec, view_spec, view_table
from pygoka_operator.status import get_condition, replica_status, rollout_conditions, set_condition
from pygoka_operator.topics import condition, kafka_problem, plan_topics, reconcile_topics, status_topics

log = logging.getLogger(__name__)
SETTINGS = OperatorConfig.from_env()
FINALIZER = "pygoka.io/finalizer"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """configure keeps kopf's bookkeeping in annotations: the structural status schema would prune status.kopf."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="pygoka.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="pygoka.io")
    settings.persistence.finalizer = FINALIZER
    settings.posting.level = logging.WARNING
    kube.load_config()
    if SETTINGS.metrics_port:
        metrics.serve(SETTINGS.metrics_port)
        log.info("metrics on port %d", SETTINGS.metrics_port)


def kafka_settings(api_client: Any, namespace: str, spec: dict[str, Any]) -> KafkaTarget:
    """kafka_settings is the Kafka of a spec; what the spec lacks is a PermanentError."""
    try:
        return resource_kafka(api_client, namespace, spec, SETTINGS.brokers)
    except LookupError as exc:
        raise kopf.PermanentError(str(exc)) from exc


def owner_of(body: kopf.Body) -> Owner:
    meta = body["metadata"]
    return Owner(str(body["kind"]), str(meta["name"]), str(meta["namespace"]), str(meta["uid"]))


def reconcile_group_topics(api_client: Any, owner: Owner, spec: dict[str, Any], patch: kopf.Patch,
                           conditions: list[dict[str, Any]],
                           generation: int | None) -> tuple[str, str | None, list[dict[str, Any]]]:
    """reconcile_group_topics creates and checks the topics of a resolved spec: (brokers, why the StatefulSet must
    wait, conditions); status.partitions is the count planned with.

    The reason is None when the topics are ready. Messages never carry the Kafka Secret's values (librdkafka echoes
    an invalid setting's value in its error).
    """
    target = KafkaTarget("", owner.namespace)

    def fail(reason: str, message: str) -> tuple[str, str | None, list[dict[str, Any]]]:
        message = kube.redact(message, target.settings)
        return target.brokers, message, set_condition(conditions, "TopicsReady", "Unknown", reason, message,
                                                      generation)

    try:
        target = kafka_settings(api_client, owner.namespace, spec)
    except kopf.PermanentError as exc:
        return fail("ConfigurationError", str(exc))
    except Exception as exc:  # noqa: BLE001 - the Secret could not be read (API trouble): retried next tick
        return fail("ConfigurationError", f"cannot read the Kafka Secret: {type(exc).__name__}: {exc}")
    try:
        kafka = KafkaTopicManager(target.admin_config(), timeout=SETTINGS.kafka_timeout)
        check, observed, plan, partitions = reconcile_topics(kafka, owner.name, spec)
    except TopicError as exc:  # Kafka trouble is reported, retried on the next timer tick
        return fail(*kafka_problem(target.operator_brokers, exc))
    except Exception as exc:  # noqa: BLE001 - e.g. settings librdkafka refuses when making the client
        return fail("KafkaError", f"Kafka at {target.operator_brokers}: {type(exc).__name__}: {exc}")
    status, reason, message = condition(check)
    patch.status["topics"] = status_topics(plan, observed)
    patch.status["partitions"] = partitions
    conditions = set_condition(conditions, "TopicsReady", status, reason, message, generation)
    return target.brokers, None if check.ready else message, conditions


def learn_topology(api_client: Any, owner: Owner, spec: dict[str, Any], status: dict[str, Any], patch: kopf.Patch,
                   conditions: list[dict[str, Any]],
                   generation: int | None) -> tuple[Topology | None, str | None, list[dict[str, Any]]]:
    """learn_topology is (the topology to plan with, why nothing may be created yet, conditions).

    With learning on, the topology is the code's: learnt once per image and graph by a Job (status.graph), and a
    spec whose topic fields contradict it is refused (GraphReady=False/GraphMismatch naming field and values)
    before any topic, StatefulSet or pod exists for it. With learning off, the spec's fields are the topology.
    """
    if not SETTINGS.learn_graph:
        return learning.from_spec(owner.name, spec), None, conditions

    def waiting(state: str, reason: str, message: str) -> tuple[None, str, list[dict[str, Any]]]:
        return None, message, set_condition(conditions, "GraphReady", state, reason, message, generation)

    where = f"{spec['graph']} in image {spec['image']}"
    topology = learning.learnt(status, spec)
    if topology is None:
        try:
            job = kube.create_once(api_client, learning.graph_job(owner, spec, SETTINGS.image_pull_secrets))
        except kube.SPEC_ERRORS as exc:  # e.g. spec.env the API server refuses in the Job's pod
            return waiting("False", "GraphJobRejected", kube.spec_error(exc))
        name = job["metadata"]["name"]
        pods = kube.select(api_client, "v1", "Pod", owner.namespace, f"job-name={name}")
        outcome = learning.job_outcome(job, pods)
        if outcome.failure is not None:
            return waiting("False", "GraphJobFailed", f"cannot learn the topology of {where} (Job {name}): "
                           f"{outcome.failure}; fix the image, or delete the Job to try again")
        if outcome.topology is None:
            return waiting("Unknown", "LearningGraph", f"learning the topology of {where} (Job {name})")
        topology = outcome.topology
        patch.status["graph"] = {**learning.graph_status(topology, spec), "job": name}
    found = learning.contradictions(spec, topology, where)
    if found:
        return waiting("False", "GraphMismatch", "; ".join(found))
    conditions = set_condition(conditions, "GraphReady", "True", "GraphMatches",
                               f"the spec agrees with the code of {where}", generation)
    return topology, None, conditions


@kopf.on.create(GROUP, VERSION, "processorgroups")
@kopf.on.update(GROUP, VERSION, "processorgroups", field="spec")
@kopf.on.resume(GROUP, VERSION, "processorgroups")
@kopf.timer(GROUP, VERSION, "processorgroups", interval=SETTINGS.interval, initial_delay=SETTINGS.interval)
def reconcile_processorgroup(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """reconcile_processorgroup: the topology first, then the topics; the StatefulSet is only created or rolled
    onto a topology that matches the code and topics that are ready."""
    with metrics.reconcile("ProcessorGroup") as outcome:
        outcome.blocked(processorgroup(body, patch))


def processorgroup(body: kopf.Body, patch: kopf.Patch) -> str | None:
    """processorgroup reconciles a ProcessorGroup into patch and returns why its StatefulSet was held, if it was."""
    owner = owner_of(body)
    declared = processor_spec(dict(body.get("spec") or {}))
    generation = body["metadata"].get("generation")
    status = dict(body.get("status") or {})
    conditions: list[dict[str, Any]] = list(status.get("conditions") or [])
    api_client = kube.api()
    name = child_name("ProcessorGroup", owner.name)
    selector = selector_labels(owner.name, "processor")
    statefulset: dict[str, Any] | None = None
    topology, blocked, conditions = learn_topology(api_client, owner, declared, status, patch, conditions, generation)
    # The graph being learnt is progress, not trouble: no warning event, not Degraded.
    learning_now = (get_condition(conditions, "GraphReady") or {}).get("reason") == "LearningGraph"
    waiting, blocked = (blocked, None) if topology is None and learning_now else (None, blocked)
    if topology is not None:
        spec = learning.resolved(declared, topology)
        brokers, blocked, conditions = reconcile_group_topics(api_client, owner, spec, patch, conditions, generation)
        # Settings librdkafka refuses would only crash-loop the pods: keep the running ones and say which.
        blocked = "; ".join(client_config_problems(spec.get("options") or {})) or blocked
        own_labels = labels(owner.name, "processor", topology.group)
        # The pods' identity and its one permission (get their StatefulSet) exist before any pod runs.
        blocked = _apply_children(api_client, blocked, [
            headless_service(owner, name, own_labels, selector, int(spec["httpPort"])),
            pod_disruption_budget(owner, name, own_labels, selector),
            *processor_access(owner, name, own_labels, spec)])
        # The pods check their code against the topology planned with: a learnt one whole, else what the spec says.
        expected = topology.fields() if SETTINGS.learn_graph else {**learning.declared(declared),
                                                                    "group": topology.group}
        if blocked is None:
            try:
                statefulset = kube.apply(api_client, processor_statefulset(
                    owner, {**spec, "partitions": patch.status["partitions"]}, brokers, SETTINGS.image_pull_secrets,
                    expected))
            except kube.SPEC_ERRORS as exc:
                blocked = kube.spec_error(exc)
    if blocked is not None or waiting is not None:
        # Never roll pods onto topics that break co-partitioning, nor onto code the spec contradicts or that is not
        # known yet: the existing StatefulSet stays as it is.
        statefulset = kube.read(api_client, "apps/v1", "StatefulSet", owner.namespace, name)
    if blocked is not None:
        kopf.warn(body, reason="ReconcileBlocked", message=blocked)
    patch.status["conditions"] = rollout_conditions(conditions, desired=int(declared["replicas"]),
                                                    statefulset=statefulset, generation=generation, blocked=blocked,
                                                    waiting=waiting)
    patch.status.update(replica_status(statefulset))
    patch.status["selector"] = selector_string(selector)
    if blocked is None and waiting is None:
        patch.status["observedGeneration"] = generation
    metrics.replicas("ProcessorGroup", owner.namespace, owner.name, int(declared["replicas"]),
                     int(patch.status.get("readyReplicas") or 0))
    return blocked or waiting


@kopf.on.delete(GROUP, VERSION, "processorgroups")
def delete_processorgroup(body: kopf.Body, **_: Any) -> None:
    """delete_processorgroup deletes the group's own topics under topicDeletionPolicy: Delete (children: GC)."""
    metrics.forget("ProcessorGroup", str(body["metadata"]["namespace"]), str(body["metadata"]["name"]))
    spec = processor_spec(dict(body.get("spec") or {}))
    if spec["topicDeletionPolicy"] != "Delete":
        return
    owner = owner_of(body)
    api_client = kube.api()
    try:
        target = kafka_settings(api_client, owner.namespace, spec)
    except kopf.PermanentError:
        return
    planned = learning.planned(owner.name, spec, dict(body.get("status") or {}), SETTINGS.learn_graph)
    if planned is None:
        return  # never planned (graph not learnt, or topics never seen): the operator created no topic
    owned = [topic.name for topic in plan_topics(owner.name, planned) if topic.owned]
    try:
        KafkaTopicManager(target.admin_config(), timeout=SETTINGS.kafka_timeout).delete(owned)
    except TopicError as exc:  # kopf retries and keeps the finalizer until the topics are gone
        message = kube.redact(kafka_problem(target.operator_brokers, exc)[1], target.settings)
        raise kopf.TemporaryError(message, delay=SETTINGS.interval) from None
    log.info("deleted topics %s of %s/%s", owned, owner.namespace, owner.name)


@kopf.on.create(GROUP, VERSION, "views")
@kopf.on.update(GROUP, VERSION, "views", field="spec")
@kopf.on.resume(GROUP, VERSION, "views")
@kopf.timer(GROUP, VERSION, "views", interval=SETTINGS.interval, initial_delay=SETTINGS.interval)
def reconcile_view(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """reconcile_view applies a View's StatefulSet, headless Service and query Service."""
    with metrics.reconcile("View") as outcome:
        outcome.blocked(view(body, patch))


@kopf.on.delete(GROUP, VERSION, "views", optional=True)
def delete_view(body: kopf.Body, **_: Any) -> None:
    """delete_view drops the View's metric series (optional: it holds no finalizer, children go by GC)."""
    metrics.forget("View", str(body["metadata"]["namespace"]), str(body["metadata"]["name"]))


def view(body: kopf.Body, patch: kopf.Patch) -> str | None:
    """view reconciles a View into patch and returns why its StatefulSet was held, if it was."""
    owner = owner_of(body)
    spec = view_spec(dict(body.get("spec") or {}))
    generation = body["metadata"].get("generation")
    conditions: list[dict[str, Any]] = list((body.get("status") or {}).get("conditions") or [])
    api_client = kube.api()
    name = child_name("View", owner.name)
    own_labels = labels(owner.name, "view", spec.get("group"))
    selector = selector_labels(owner.name, "view")
    blocked: str | None = None
    statefulset: dict[str, Any] | None = None
    try:
        brokers = kafka_settings(api_client, owner.namespace, spec).brokers
    except kopf.PermanentError as exc:
        blocked = str(exc)
    blocked = _apply_children(api_client, blocked, [
        headless_service(owner, f"{name}-headless", own_labels, selector, VIEW_HTTP_PORT),
        query_service(owner, name, own_labels, selector, int(spec["servicePort"]))])
    if blocked is None:
        try:
            statefulset = kube.apply(api_client, view_statefulset(owner, spec, brokers, SETTINGS.runtime_image,
                                                                          SETTINGS.image_pull_secrets))
        except kube.SPEC_ERRORS as exc:
            blocked = kube.spec_error(exc)
    if blocked is not None:
        statefulset = kube.read(api_client, "apps/v1", "StatefulSet", owner.namespace, name)
        kopf.warn(body, reason="ReconcileBlocked", message=blocked)
    patch.status["conditions"] = rollout_conditions(conditions, desired=int(spec["replicas"]),
                                                    statefulset=statefulset, generation=generation, blocked=blocked)
    patch.status.update(replica_status(statefulset))
    patch.status["selector"] = selector_string(selector)
    patch.status["table"] = view_table(spec)
    if blocked is None:
        patch.status["observedGeneration"] = generation
    metrics.replicas("View", owner.namespace, owner.name, int(spec["replicas"]),
                     int(patch.status.get("readyReplicas") or 0))
    return blocked


def _apply_children(api_client: Any, blocked: str | None, children: list[dict[str, Any]]) -> str | None:
    """_apply_children applies children besides the StatefulSet; it returns blocked, with the spec error that
    stopped them, if one did (such as an object of a child's name that is not ours)."""
    try:
        for child in children:
            kube.apply(api_client, child)
    except kube.SPEC_ERRORS as exc:
        return "; ".join(filter(None, [blocked, kube.spec_error(exc)]))
    return blocked


__all__ = ["MANAGER", "configure", "delete_processorgroup", "delete_view", "reconcile_processorgroup", "reconcile_view"]
