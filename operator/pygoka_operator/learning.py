"""How the operator learns a group's topology from its image: a Job runs `pygoka graph GRAPH --json` there.

The Job's one container writes GroupGraph.describe() to its termination message, which the kubelet puts in the
pod's status (no log access needed); a failed import leaves the command's last log lines there instead
(terminationMessagePolicy FallbackToLogsOnError), which the condition then shows. The Job is named after a digest
of image and graph, so a new image is a new Job; the result is kept in status.graph with the image and graph it
came from. Everything here is pure: builders of the Job, readers of its outcome, the comparison with the spec.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pygoka.topology import FIELDS, Difference, Topology, differences

from pygoka_operator.builders.labels import labels, selector_labels
from pygoka_operator.builders.pod import CONTAINER_SECURITY, POD_SECURITY, enforce_security
from pygoka_operator.model import Owner, group_of

#: CONTAINER is the learning Job's container.
CONTAINER = "graph"
#: MESSAGE_PATH is where the container writes the description (the kubelet's default terminationMessagePath).
MESSAGE_PATH = "/dev/termination-log"
#: MESSAGE_LIMIT is the kubelet's cap on a termination message: a longer description arrives cut.
MESSAGE_LIMIT = 4096
#: DEADLINE_SECONDS bounds the Job (image pull included); BACKOFF_LIMIT its retries.
DEADLINE_SECONDS = 600
BACKOFF_LIMIT = 2
#: POD_FIELDS are the podTemplate fields the learning pod takes over, so it runs where the group's pods may.
POD_FIELDS = ("nodeSelector", "tolerations", "affinity", "serviceAccountName", "securityContext",
              "imagePullSecrets", "priorityClassName")


def job_name(name: str, image: str, graph: str) -> str:
    """job_name is '<name>-graph-<digest of image and graph>', within the 63 characters a label value allows."""
    digest = hashlib.sha256(f"{image}\n{graph}".encode()).hexdigest()[:10]
    return f"{name[:63 - 17].rstrip('-')}-graph-{digest}"


def graph_job(owner: Owner, spec: dict[str, Any], pull_secrets: Sequence[str] = ()) -> dict[str, Any]:
    """graph_job is the Job printing the topology of spec.graph in spec.image, owned by the ProcessorGroup."""
    name = job_name(owner.name, str(spec["image"]), str(spec["graph"]))
    own_labels = labels(owner.name, "graph", None)
    template = (spec.get("podTemplate") or {}).get("spec") or {}
    pod_spec: dict[str, Any] = {key: template[key] for key in POD_FIELDS if key in template}
    pod_spec.update({
        "restartPolicy": "Never",
        "securityContext": {**POD_SECURITY, **(pod_spec.get("securityContext") or {})},
        "containers": [{
            "name": CONTAINER,
            "image": str(spec["image"]),
            "command": ["pygoka", "graph", str(spec["graph"]), "--json", "--output", MESSAGE_PATH],
            # The user's variables may be what their module needs to import.
            "env": list(spec.get("env") or []),
            "terminationMessagePath": MESSAGE_PATH,
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            "securityContext": {**CONTAINER_SECURITY, "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        }],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    })
    if pull_secrets and "imagePullSecrets" not in pod_spec:
        pod_spec["imagePullSecrets"] = [{"name": secret} for secret in pull_secrets]
    enforce_security(pod_spec)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": owner.namespace, "labels": own_labels,
                     "annotations": {"pygoka.io/image": str(spec["image"]), "pygoka.io/graph": str(spec["graph"])},
                     "ownerReferences": [owner.reference()]},
        "spec": {
            "backoffLimit": BACKOFF_LIMIT,
            "activeDeadlineSeconds": DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": 3600,
            "template": {"metadata": {"labels": {**selector_labels(owner.name, "graph")}}, "spec": pod_spec},
        },
    }


@dataclass(frozen=True)
class Outcome:
    """Outcome is what a learning Job says so far: a topology, a failure (with why), or nothing yet."""

    topology: Topology | None = None
    failure: str | None = None

    @property
    def pending(self) -> bool:
        return self.topology is None and self.failure is None


def job_outcome(job: dict[str, Any], pods: list[dict[str, Any]]) -> Outcome:
    """job_outcome reads the topology from a finished Job's pod, or why it failed; nothing while it runs."""
    status = job.get("status") or {}
    finished = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    messages = [message for pod in pods if (message := termination_message(pod)) is not None]
    if "Complete" in finished or int(status.get("succeeded") or 0) > 0:
        if not messages:
            return Outcome(failure="the graph Job succeeded but its pod left no termination message")
        return parse(messages[-1])
    if "Failed" in finished:
        reason = finished["Failed"].get("message") or finished["Failed"].get("reason") or "failed"
        last = f": {messages[-1].strip()[-600:]}" if messages else ""
        return Outcome(failure=f"`pygoka graph` failed in the image ({reason}){last}")
    return Outcome()


def termination_message(pod: dict[str, Any]) -> str | None:
    """termination_message is the graph container's termination message, once it terminated."""
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated")
        if container.get("name") == CONTAINER and terminated is not None:
            return str(terminated.get("message") or "")
    return None


def parse(message: str) -> Outcome:
    """parse reads `pygoka graph --json`'s output into a topology, or says why it cannot."""
    try:
        return Outcome(topology=Topology.from_description(json.loads(message)))
    except json.JSONDecodeError:
        cut = " (cut at the kubelet's 4096-byte limit)" if len(message.encode()) >= MESSAGE_LIMIT else ""
        return Outcome(failure=f"the graph Job's output is not `pygoka graph --json`{cut}: {message[:300]!r}")
    except ValueError as exc:
        return Outcome(failure=str(exc))


def learnt(status: dict[str, Any], spec: dict[str, Any]) -> Topology | None:
    """learnt is the topology in status.graph when it was learnt from the spec's image and graph."""
    graph = status.get("graph") or {}
    if graph.get("image") != spec.get("image") or graph.get("ref") != spec.get("graph") or "group" not in graph:
        return None
    return Topology.from_status(graph)


def graph_status(topology: Topology, spec: dict[str, Any]) -> dict[str, Any]:
    """graph_status is status.graph: the topology with the image and graph reference it was learnt from."""
    return {"image": spec["image"], "ref": spec["graph"], **topology.to_status()}


def declared(spec: dict[str, Any]) -> dict[str, Any]:
    """declared are the topology fields the spec sets (an empty group sets none)."""
    return {name: spec[name] for name in FIELDS if name in spec and (name != "group" or spec[name])}


def contradictions(spec: dict[str, Any], topology: Topology, image_ref: str) -> list[str]:
    """contradictions are condition messages, one per declared field the learnt topology contradicts."""
    found: list[Difference] = differences(declared(spec), topology)
    return [difference.message("spec", f"the code of {image_ref}") for difference in found]


def from_spec(name: str, spec: dict[str, Any]) -> Topology:
    """from_spec is the topology a spec declares, with the defaults of a ProcessorGroup whose graph is not
    learnt (group: the resource's name; no loop; a table)."""
    return Topology(group=group_of(name, spec), inputs=tuple(spec.get("inputs") or ()),
                    joins=tuple(spec.get("joins") or ()), lookups=tuple(spec.get("lookups") or ()),
                    outputs=tuple(spec.get("outputs") or ()), loop=bool(spec.get("loop", False)),
                    persist=bool(spec.get("persist", True)))


def resolved(spec: dict[str, Any], topology: Topology) -> dict[str, Any]:
    """resolved is spec with its topology fields those of topology, what topics and pods are planned from."""
    return {**spec, **topology.fields()}


def planned(name: str, spec: dict[str, Any], status: dict[str, Any], learn: bool) -> dict[str, Any] | None:
    """planned is the spec of a reconciled group as its topics and pods were planned: resolved with its topology
    (learnt, or declared when learn is off) and its partition count (spec's, else status's); None before the
    graph is learnt or the count is known."""
    topology = learnt(status, spec) if learn else from_spec(name, spec)
    partitions = spec.get("partitions") or status.get("partitions")
    if topology is None or not partitions:
        return None
    return {**resolved(spec, topology), "partitions": int(partitions)}
