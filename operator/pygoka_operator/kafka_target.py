"""The Kafka a ProcessorGroup or View names: the brokers its pods are given, and the same brokers as the operator,
running in a namespace of its own, reaches them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pygoka.kafka.config import Config, admin_config

from pygoka_operator import kube


@dataclass(frozen=True)
class KafkaTarget:
    """KafkaTarget is a resource's Kafka: brokers as written in its spec, its namespace, its Secret's settings."""

    brokers: str
    namespace: str
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def operator_brokers(self) -> str:
        """operator_brokers are the brokers with each bare host name qualified by the resource's namespace."""
        return ",".join(qualified(address.strip(), self.namespace) for address in self.brokers.split(","))

    def admin_config(self) -> Config:
        """admin_config is the configuration of the operator's AdminClient for this Kafka."""
        return admin_config(self.operator_brokers, self.settings)


def qualified(address: str, namespace: str) -> str:
    """qualified is address ([protocol://]host[:port]) with a bare host name as <host>.<namespace>.svc.

    A pod resolves `kafka:9092` as the Service kafka of its own namespace (its DNS search path); the operator's pod
    would find the one of the operator's namespace, or none. Names with a dot, IPv6 literals and localhost are
    kept: they mean the same everywhere, and `.svc` is completed by every pod's search path whatever the cluster
    domain.
    """
    scheme, separator, rest = address.rpartition("://")
    prefix = scheme + separator
    host, colon, port = rest.rpartition(":") if not rest.endswith("]") else (rest, "", "")
    if not colon:
        host, port = rest, ""
    if not host or "." in host or host.startswith("[") or host == "localhost":
        return address
    return f"{prefix}{host}.{namespace}.svc{colon}{port}"


def resource_kafka(api_client: Any, namespace: str, spec: dict[str, Any], default_brokers: str) -> KafkaTarget:
    """resource_kafka is the Kafka of a resource's spec (LookupError: no brokers anywhere, or no such Secret)."""
    kafka = spec.get("kafka") or {}
    brokers = str(kafka.get("bootstrapServers") or default_brokers)
    if not brokers:
        raise LookupError("no Kafka brokers: set spec.kafka.bootstrapServers or the chart's kafka value")
    secret = (kafka.get("secretRef") or {}).get("name")
    return KafkaTarget(brokers, namespace, kube.secret_settings(api_client, namespace, secret) if secret else {})
