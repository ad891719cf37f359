"""The CRDs as Python data: the single source of crds/*.yaml and the Helm chart's copies (scripts/gen-crds.py)."""

from __future__ import annotations

from typing import Any

from pygoka.option_spec import Place
from pygoka.options import OPTIONS

from pygoka_operator import GROUP, VERSION
from pygoka_operator.peering import cluster_peering_crd, namespaced_peering_crd

Schema = dict[str, Any]

#: A Kubernetes quantity or integer (resource amounts, storage sizes).
QUANTITY: Schema = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}


def obj(properties: dict[str, Schema], *, required: list[str] | None = None, description: str = "",
        rules: list[dict[str, str]] | None = None) -> Schema:
    """obj is an object schema; every structural schema node needs a type."""
    schema: Schema = {"type": "object", "properties": properties}
    if description:
        schema["description"] = description
    if required:
        schema["required"] = required
    if rules:
        schema["x-kubernetes-validations"] = rules
    return schema


def free(description: str) -> Schema:
    """free is an object kept as written (podTemplate, resources): the API server prunes nothing inside."""
    return {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "description": description}


def string(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def integer(description: str, **extra: Any) -> Schema:
    return {"type": "integer", "description": description, **extra}


def boolean(description: str, default: bool) -> Schema:
    return {"type": "boolean", "description": description, "default": default}


def strings(description: str) -> Schema:
    return {"type": "array", "items": {"type": "string"}, "description": description}


KAFKA: Schema = obj({
    "bootstrapServers": string("Kafka bootstrap servers (host:port,...); default: the operator's setting."),
    "secretRef": obj({"name": string("Secret whose keys are librdkafka settings (sasl.username, ...).")},
                     required=["name"], description="Secret mounted at /etc/pygoka/kafka, one setting per key."),
}, description="Kafka connection.")

STORAGE: Schema = obj({
    "size": {**QUANTITY, "default": "1Gi", "description": "Size of each pod's RocksDB volume."},
    "storageClassName": string("Storage class of the volume claims (default: the cluster's default)."),
}, description="Persistent volume of each pod (volumeClaimTemplates).")
STORAGE["default"] = {}

ENV: Schema = {"type": "array", "description": "Extra container environment variables (core/v1 EnvVar).",
               "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "required": ["name"],
                         "properties": {"name": {"type": "string"}}}}

COMMON_POD: dict[str, Schema] = {
    "resources": free("Container resources (core/v1 ResourceRequirements)."),
    "env": ENV,
    "podTemplate": free("A core/v1 PodTemplateSpec merged over the generated one (containers merged by name)."),
}

CONDITIONS: Schema = {
    "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
    "items": obj({
        "type": string("Ready, GraphReady, TopicsReady, Progressing or Degraded."),
        "status": string("True, False or Unknown.", enum=["True", "False", "Unknown"]),
        "reason": string("CamelCase reason."),
        "message": string("Human-readable detail."),
        "lastTransitionTime": string("When status last changed.", format="date-time"),
        "observedGeneration": integer("metadata.generation the condition was computed from."),
    }, required=["type", "status"]),
}

AUTOSCALING: Schema = obj({
    "enabled": boolean("Scale replicas on consumer lag.", False),
    "minReplicas": integer("Lower bound.", minimum=1, default=1),
    "maxReplicas": integer("Upper bound (also capped by partitions).", minimum=1),
    "targetLagPerReplica": integer("Messages of lag one replica should carry.", minimum=1, default=1000),
    "scaleUpStabilizationSeconds": integer("Window before scaling up.", minimum=0, default=30),
    "scaleDownStabilizationSeconds": integer("Longer window before scaling down.", minimum=0, default=300),
    "intervalSeconds": integer("At most one scaling step per interval.", minimum=1, default=30),
}, description="Lag-based autoscaling (see docs/operator.md).",
   rules=[{"rule": "!has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
           "message": "autoscaling.minReplicas must be <= autoscaling.maxReplicas", "fieldPath": ".minReplicas"}])
AUTOSCALING["default"] = {}



def option_schemas(place: Place) -> dict[str, Schema]:
    """option_schemas are the schemas of the ProcessorOptions fields the spec sets at place, by camelCase key."""
    return {spec.key: spec.schema() for spec in OPTIONS if spec.place == place}


#: OPTIONS_SCHEMA is spec.options: every ProcessorOptions field a pod takes from its spec, checked as the runtime does.
OPTIONS_SCHEMA: Schema = obj(option_schemas("options"), description=(
    "ProcessorOptions of the pods (docs/processor-options.md), each passed as its PYGOKA_* variable; "
    "unset: the runtime's default."))
TOPIC_OPTIONS = option_schemas("topics")

PROCESSOR_SPEC: Schema = obj({
    "group": string("Consumer group and table prefix, as in the code (checked against it); empty: the code's "
                    "(metadata.name when the operator does not learn graphs). Immutable.", default="",
                    maxLength=200,
                    **{"x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "group is immutable"}]}),
    "image": string("Image with the pygoka runtime and the user's code (FROM the pygoka runtime image)."),
    "graph": string("module:attr of the GroupGraph in the image.", pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"),
    "kafka": KAFKA,
    **TOPIC_OPTIONS,
    "partitions": {**TOPIC_OPTIONS["partitions"], "description": (
        "Partitions of the group table and of every topic the operator creates (default: those of the group's "
        "existing topics, else defaultPartitions). Never decreases."),
        "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "partitions cannot decrease"}]},
    "replicationFactor": {**TOPIC_OPTIONS["replicationFactor"], "default": -1},
    "options": OPTIONS_SCHEMA,
    # The topology: learnt from the image (status.graph); set here, each is checked against the code.
    "inputs": strings("Input streams (consumed; created when missing). Optional: the code's; checked against it."),
    "joins": strings("Joined tables (co-partitioned with the inputs). Optional: the code's; checked against it."),
    "lookups": strings("Lookup tables (read whole). Optional: the code's; checked against it."),
    "outputs": strings("Output streams the group emits to. Optional: the code's; checked against it."),
    "loop": {"type": "boolean", "description": "The group has a loop topic '<group>-loop'. Optional: the code's."},
    "persist": {"type": "boolean", "description": "The group has a table '<group>-table'. Optional: the code's."},
    "replicas": integer("Pods; scale through this field or the scale subresource.", minimum=0, default=1),
    "autoscaling": AUTOSCALING,
    "storage": STORAGE,
    **COMMON_POD,
    "topicDeletionPolicy": string("What happens to the created topics on deletion.", enum=["Retain", "Delete"],
                                  default="Retain"),
    "httpPort": integer("Port of the monitor/health HTTP server.", minimum=1, maximum=65535, default=8080),
}, required=["image", "graph"], rules=[
    # fieldPath: the API server's refusal names spec.replicas rather than the whole spec.
    {"rule": "!has(self.partitions) || self.replicas <= self.partitions", "message": "replicas must be <= partitions",
     "fieldPath": ".replicas"},
])

GRAPH_STATUS: Schema = obj({
    "image": string("Image the topology was learnt from."),
    "ref": string("Graph reference (spec.graph) it was learnt for."),
    "group": string("The code's group."),
    "inputs": {"type": "array", "items": {"type": "string"}},
    "joins": {"type": "array", "items": {"type": "string"}},
    "lookups": {"type": "array", "items": {"type": "string"}},
    "outputs": {"type": "array", "items": {"type": "string"}},
    "loop": {"type": "boolean"},
    "persist": {"type": "boolean"},
    "tableCodec": string("Codec of the group table."),
    "job": string("The Job that learnt it (`pygoka graph --json` in the image)."),
}, description="The group's topology as its code in spec.image declares it.")

PROCESSOR_STATUS: Schema = obj({
    "observedGeneration": integer("Generation last reconciled."),
    "graph": GRAPH_STATUS,
    "replicas": integer("Pods of the StatefulSet."),
    "readyReplicas": integer("Ready pods."),
    "selector": string("Label selector of the pods (scale subresource)."),
    "partitions": integer("Partitions of the group's topics."),
    "topics": {"type": "array", "items": obj({
        "name": string("Topic."), "partitions": integer("Partition count."),
        "cleanupPolicy": string("cleanup.policy."),
    })},
    "conditions": CONDITIONS,
    "lag": integer("Consumer lag summed over the input partitions."),
    "desiredReplicas": integer("Replicas the autoscaler wants."),
    "lastScaling": obj({"time": string("When.", format="date-time"), "from": integer("From."),
                        "to": integer("To."), "reason": string("Why.")}),
})

VIEW_SPEC: Schema = obj({
    "table": string("Table topic to serve."),
    "group": string("Processor group whose table ('<group>-table') to serve."),
    "codec": string("Value codec of the built-in query server.", enum=["int64", "string", "json", "bytes"],
                    default="bytes"),
    "image": string("Image (default: the operator's runtime image)."),
    "graph": string("module:attr of a user's view instead of the built-in server.",
                    pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"),
    "replicas": integer("Pods; each holds the whole table.", minimum=0, default=1),
    "storage": STORAGE,
    "servicePort": integer("Port of the query Service.", minimum=1, maximum=65535, default=8080),
    "kafka": KAFKA,
    **COMMON_POD,
}, rules=[{"rule": "has(self.table) != has(self.group)", "message": "exactly one of table or group must be set"}])

VIEW_STATUS: Schema = obj({
    "observedGeneration": integer("Generation last reconciled."),
    "replicas": integer("Pods."),
    "readyReplicas": integer("Ready pods."),
    "selector": string("Label selector of the pods."),
    "table": string("Served table topic."),
    "conditions": CONDITIONS,
})

READY_COLUMN = {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'}
#: REPLICA_COLUMNS are the pods the spec asks for and those ready (kubectl get pg/views).
REPLICA_COLUMNS = [{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                   {"name": "Ready-Replicas", "type": "integer", "jsonPath": ".status.readyReplicas"}]
AGE_COLUMN = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
SCALE = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
         "labelSelectorPath": ".status.selector"}


def crd(kind: str, plural: str, short: list[str], spec: Schema, status: Schema,
        columns: list[dict[str, str]]) -> dict[str, Any]:
    """crd is a namespaced v1 CustomResourceDefinition with status and scale subresources."""
    names: dict[str, Any] = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower(),
                             "categories": ["pygoka"]}
    if short:
        names["shortNames"] = short
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": names,
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "schema": {"openAPIV3Schema": obj({
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                    "metadata": {"type": "object"}, "spec": spec, "status": status,
                }, required=["spec"])},
                "subresources": {"status": {}, "scale": SCALE},
                "additionalPrinterColumns": columns,
            }],
        },
    }


def processorgroup_crd() -> dict[str, Any]:
    """processorgroup_crd is the ProcessorGroup CRD."""
    return crd("ProcessorGroup", "processorgroups", ["pg"], PROCESSOR_SPEC, PROCESSOR_STATUS, [
        READY_COLUMN,
        *REPLICA_COLUMNS,
        {"name": "Partitions", "type": "integer", "jsonPath": ".status.partitions"},
        {"name": "Lag", "type": "integer", "jsonPath": ".status.lag"},
        AGE_COLUMN,
    ])


def view_crd() -> dict[str, Any]:
    """view_crd is the View CRD."""
    return crd("View", "views", [], VIEW_SPEC, VIEW_STATUS, [
        READY_COLUMN,
        *REPLICA_COLUMNS,
        {"name": "Table", "type": "string", "jsonPath": ".status.table"},
        AGE_COLUMN,
    ])


#: CRDS maps the file name under crds/ to its CRD.
CRDS = {"processorgroups.yaml": processorgroup_crd, "views.yaml": view_crd,
        "clusterkopfpeerings.yaml": cluster_peering_crd, "kopfpeerings.yaml": namespaced_peering_crd}
