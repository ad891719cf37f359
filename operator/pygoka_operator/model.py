"""Plain values the builders share: schema defaults, names of the group's objects and topics, owners."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from pygoka.graph import group_table

from pygoka_operator import API_VERSION, MANAGER
from pygoka_operator.schema import PROCESSOR_SPEC, VIEW_SPEC, Schema

#: STATE_DIR is where each pod's volume claim is mounted (PYGOKA_STATE_DIR).
STATE_DIR = "/var/lib/pygoka"
#: KAFKA_CONFIG_DIR is where the Kafka Secret's keys are mounted, one librdkafka setting per file.
KAFKA_CONFIG_DIR = "/etc/pygoka/kafka"


@dataclass(frozen=True)
class Owner:
    """Owner is the custom resource children are adopted by (owner reference, labels, names)."""

    kind: str
    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        """reference is the controller owner reference of a child."""
        return {"apiVersion": API_VERSION, "kind": self.kind, "name": self.name, "uid": self.uid,
                "controller": True, "blockOwnerDeletion": True}


def apply_defaults(schema: Schema, value: Any) -> Any:
    """apply_defaults fills the schema's defaults into value, as the API server does on admission."""
    if schema.get("type") != "object" or not isinstance(value, dict):
        return value
    result = dict(value)
    for key, sub in schema.get("properties", {}).items():
        if key not in result and "default" in sub:
            result[key] = copy.deepcopy(sub["default"])
        if key in result:
            result[key] = apply_defaults(sub, result[key])
    return result


def processor_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """processor_spec is a ProcessorGroup spec with defaults (also for objects stored before a default existed)."""
    return dict(apply_defaults(PROCESSOR_SPEC, spec))


def view_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """view_spec is a View spec with defaults."""
    return dict(apply_defaults(VIEW_SPEC, spec))


def group_of(name: str, spec: dict[str, Any]) -> str:
    """group_of is spec.group, or the resource name when it is empty."""
    return str(spec.get("group") or name)


def view_table(spec: dict[str, Any]) -> str:
    """view_table is the topic a View serves: spec.table or '<spec.group>-table'."""
    if spec.get("table"):
        return str(spec["table"])
    return group_table(str(spec["group"]))


def child_name(kind: str, name: str) -> str:
    """child_name names a resource's StatefulSet/Service: views get a suffix so both kinds may share a name."""
    return name if kind == "ProcessorGroup" else f"{name}-view"


__all__ = ["KAFKA_CONFIG_DIR", "MANAGER", "STATE_DIR", "Owner", "apply_defaults", "child_name", "group_of",
           "processor_spec", "view_spec", "view_table"]
