"""The pod template and volume claim templates shared by processor and view StatefulSets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pygoka_operator.builders.merge import merge
from pygoka_operator.model import KAFKA_CONFIG_DIR, STATE_DIR, Owner

#: RUN_AS is the runtime image's non-root user (docker/runtime.Dockerfile).
RUN_AS = 10001
TERMINATION_GRACE_SECONDS = 60
CONTAINER = "pygoka"
#: CONTAINER_SECURITY is enforced on every container and init container, also those a podTemplate adds.
CONTAINER_SECURITY: dict[str, Any] = {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                                      "allowPrivilegeEscalation": False, "privileged": False}
#: POD_SECURITY is the pod's securityContext; podTemplate may change the uid but never allow root.
POD_SECURITY: dict[str, Any] = {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS,
                                "seccompProfile": {"type": "RuntimeDefault"}}


def env_var(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def base_env(brokers: str, http_port: int, kafka_secret: str | None) -> list[dict[str, Any]]:
    """base_env is the PYGOKA_* configuration of `pygoka run` (see docs/cli.md)."""
    env = [
        env_var("PYGOKA_BROKERS", brokers),
        env_var("PYGOKA_STATE_DIR", STATE_DIR),
        # The pod name is stable in a StatefulSet: static group membership survives restarts without a rebalance.
        {"name": "PYGOKA_INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        env_var("PYGOKA_HTTP_PORT", str(http_port)),
    ]
    if kafka_secret:
        env.append(env_var("PYGOKA_KAFKA_CONFIG_DIR", KAFKA_CONFIG_DIR))
    return env


def pod_template(*, labels: dict[str, str], image: str, command: list[str], env: list[dict[str, Any]],
                 http_port: int, spec: dict[str, Any], query_port: int | None = None,
                 pull_secrets: Sequence[str] = (), service_account: str | None = None) -> dict[str, Any]:
    """pod_template is the StatefulSet's pod template with spec's resources, env and podTemplate merged in;
    pull_secrets are the operator's imagePullSecrets, service_account the pods' identity with its token mounted
    (a podTemplate's serviceAccountName still wins)."""
    secret = (spec.get("kafka") or {}).get("secretRef", {}).get("name")
    mounts: list[dict[str, Any]] = [{"name": "state", "mountPath": STATE_DIR},
                                    {"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    if secret:
        mounts.append({"name": "kafka-config", "mountPath": KAFKA_CONFIG_DIR, "readOnly": True})
        volumes.append({"name": "kafka-config", "secret": {"secretName": secret, "defaultMode": 0o440}})
    ports = [{"name": "http", "containerPort": http_port, "protocol": "TCP"}]
    if query_port is not None:
        # `pygoka run` then serves /tables only there, and http keeps the monitor page, probes and metrics.
        env = [*env, env_var("PYGOKA_QUERY_PORT", str(query_port))]
        ports.append({"name": "query", "containerPort": query_port, "protocol": "TCP"})
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "command": command,
        "env": merge(env, list(spec.get("env") or [])),
        "ports": ports,
        # Probes stay on http (the query port answers nothing but /tables): /readyz turns ready once the assigned
        # partitions are recovered; /healthz fails when run() failed.
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5,
                           "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10,
                          "failureThreshold": 6, "initialDelaySeconds": 10},
        "resources": dict(spec.get("resources") or {}),
        "securityContext": {**CONTAINER_SECURITY, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": mounts,
    }
    template: dict[str, Any] = {
        "metadata": {"labels": dict(labels)},
        "spec": {
            "containers": [container],
            "volumes": volumes,
            # run() commits offsets and closes RocksDB on SIGTERM; big batches need more than the default 30 s.
            "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
            "securityContext": dict(POD_SECURITY),
        },
    }
    if service_account:
        template["spec"]["serviceAccountName"] = service_account
        template["spec"]["automountServiceAccountToken"] = True
    if pull_secrets:
        template["spec"]["imagePullSecrets"] = [{"name": name} for name in pull_secrets]
    merged: dict[str, Any] = merge(template, checked_template(spec.get("podTemplate") or {}))
    # The selector must keep matching whatever the override says.
    merged["metadata"]["labels"] = {**merged["metadata"].get("labels", {}), **labels}
    enforce_security(merged["spec"])
    return merged


def checked_template(value: Any) -> dict[str, Any]:
    """checked_template is spec.podTemplate, refused (ValueError naming the field) unless its parts are objects."""
    if not isinstance(value, dict):
        raise ValueError(f"spec.podTemplate must be an object, not {type(value).__name__}")
    for key in ("metadata", "spec"):
        if key in value and not isinstance(value[key], dict):
            raise ValueError(f"spec.podTemplate.{key} must be an object, not {type(value[key]).__name__}")
    return dict(value)


def enforce_security(pod_spec: dict[str, Any]) -> None:
    """enforce_security makes every container non-root, read-only and unprivileged whatever podTemplate says."""
    if not isinstance(pod_spec, dict):
        return  # a malformed podTemplate: the API server refuses it with its own message
    context = pod_spec.get("securityContext")
    pod_spec["securityContext"] = {**(context if isinstance(context, dict) else {}), "runAsNonRoot": True}
    for key in ("containers", "initContainers"):
        containers = pod_spec.get(key)
        for container in containers if isinstance(containers, list) else []:
            if isinstance(container, dict):
                own = container.get("securityContext")
                container["securityContext"] = {**(own if isinstance(own, dict) else {}), **CONTAINER_SECURITY}


def volume_claim_templates(storage: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """volume_claim_templates is the RocksDB state volume of each pod."""
    claim: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": str(storage.get("size", "1Gi"))}}}
    if storage.get("storageClassName"):
        claim["storageClassName"] = storage["storageClassName"]
    return [{"metadata": {"name": "state", "labels": dict(labels)}, "spec": claim}]


def statefulset(*, owner: Owner, name: str, labels: dict[str, str], selector: dict[str, str], service: str,
                replicas: int, template: dict[str, Any], storage: dict[str, Any]) -> dict[str, Any]:
    """statefulset wraps a pod template into an apps/v1 StatefulSet owned by owner."""
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": owner.namespace, "labels": dict(labels),
                     "ownerReferences": [owner.reference()]},
        "spec": {
            "serviceName": service,
            "replicas": replicas,
            # Pods of a group are peers: start and stop them together, the consumer group balances them.
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": dict(selector)},
            "updateStrategy": {"type": "RollingUpdate"},
            # Volumes outlive scale-down and deletion: the next scale-up reuses their RocksDB state.
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "template": template,
            "volumeClaimTemplates": volume_claim_templates(storage, labels),
        },
    }
