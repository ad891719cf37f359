"""Invalid custom resources generated from the CRD schema: one or more cases for every field of every spec.

Every property the schema declares gets a value of the wrong type; fields with a minimum, maximum, enum, pattern
or maxLength also get a value just outside; every required field is left out once; every object the API server
prunes gets an unknown field, and every map a value of the wrong type. A field added to pygoka_operator.schema
is covered without touching the tests. Each case names the field path the API server's refusal must name.
Cross-field CEL rules are in RULE_CASES.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pygoka_operator.schema import PROCESSOR_SPEC, VIEW_SPEC

#: VALID are minimal valid specs the cases change one field of.
VALID: dict[str, dict[str, Any]] = {
    "ProcessorGroup": {"image": "registry.example/clicks:1", "graph": "click_count:graph", "partitions": 4},
    "View": {"group": "click-count"},
}
SPECS = {"ProcessorGroup": PROCESSOR_SPEC, "View": VIEW_SPEC}
#: WRONG is a value of another type for each schema type.
WRONG: dict[str, Any] = {"string": 12345, "integer": "twelve", "number": "fast", "boolean": "maybe",
                         "array": "not-a-list", "object": "not-an-object"}
UNKNOWN = "notAField"


@dataclass(frozen=True)
class Case:
    """Case is one invalid spec: the kind, a description, the spec, and the field path the refusal must name."""

    kind: str
    what: str
    spec: dict[str, Any]
    path: str
    #: before is applied first (a valid spec), for rules about changes (transition rules).
    before: dict[str, Any] | None = field(default=None)

    @property
    def id(self) -> str:
        """id is the pytest id: kind, field path and what is wrong."""
        return f"{self.kind}:{self.path}:{self.what}"


def with_value(spec: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    """with_value is a copy of spec with the value at path (objects on the way created)."""
    result = copy.deepcopy(spec)
    node = result
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return result


def without(spec: dict[str, Any], path: list[str]) -> dict[str, Any]:
    """without is a copy of spec without the value at path."""
    result = copy.deepcopy(spec)
    node = result
    for key in path[:-1]:
        node = node[key]
    node.pop(path[-1], None)
    return result


def schema_type(schema: dict[str, Any]) -> str:
    """schema_type is the schema's type, or int-or-string for quantities."""
    return "int-or-string" if schema.get("x-kubernetes-int-or-string") else str(schema["type"])


def out_of_range(schema: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """out_of_range yields (what, value) just outside each constraint of a scalar schema."""
    if "minimum" in schema:
        # An exclusive minimum refuses the minimum itself.
        yield "below-minimum", schema["minimum"] if schema.get("exclusiveMinimum") else schema["minimum"] - 1
    if "maximum" in schema:
        yield "above-maximum", schema["maximum"] + 1
    if "enum" in schema:
        yield "not-in-enum", "not_a_choice"
    if "pattern" in schema:
        yield "pattern-mismatch", "no module and attribute"
    if "maxLength" in schema:
        yield "too-long", "g" * (schema["maxLength"] + 1)


def field_cases(kind: str, schema: dict[str, Any], base: dict[str, Any], path: list[str]) -> Iterator[Case]:
    """field_cases are the invalid values of the field at path (in spec) and of everything below it."""
    name = ".".join(["spec", *path])
    type_ = schema_type(schema)
    wrong = True if type_ == "int-or-string" else WRONG[type_]
    yield Case(kind, f"wrong-type-{type_}", with_value(base, path, wrong), name)
    for what, value in out_of_range(schema):
        yield Case(kind, what, with_value(base, path, value), name)
    items = schema.get("items")
    if type_ == "array" and isinstance(items, dict):
        yield Case(kind, "wrong-item-type", with_value(base, path, [WRONG[schema_type(items)]]), f"{name}[0]")
        if items.get("required"):
            yield Case(kind, "item-missing-required", with_value(base, path, [{}]), f"{name}[0].{items['required'][0]}")
    if type_ == "object":
        yield from object_cases(kind, schema, base, path)


def object_cases(kind: str, schema: dict[str, Any], base: dict[str, Any], path: list[str]) -> Iterator[Case]:
    """object_cases: an unknown field (unless the object keeps them), each required field left out, each field."""
    name = ".".join(["spec", *path])
    # The object itself must be valid for its children's cases: fill in its required fields.
    valid = dict(VALID[kind]) if not path else {key: "x" for key in schema.get("required", [])}
    inner = base if not path else with_value(base, path, valid)
    values = schema.get("additionalProperties")
    if isinstance(values, dict):
        # A map (settings of librdkafka, of a topic): any key, but each value of the map's value type.
        yield Case(kind, "wrong-value-type", with_value(inner, [*path, "some.key"], WRONG[schema_type(values)]),
                   f"{name}.some.key")
    elif not schema.get("x-kubernetes-preserve-unknown-fields"):
        yield Case(kind, "unknown-field", with_value(inner, [*path, UNKNOWN], "x"), f"{name}.{UNKNOWN}")
    for required in schema.get("required", []):
        yield Case(kind, "missing-required", without(inner, [*path, required]), f"{name}.{required}")
    for key, sub in schema.get("properties", {}).items():
        yield from field_cases(kind, sub, inner, [*path, key])


def schema_cases() -> list[Case]:
    """schema_cases are the cases of every field of both CRDs' specs."""
    return [case for kind, schema in SPECS.items() for case in object_cases(kind, schema, VALID[kind], [])]


def fields(schema: dict[str, Any], prefix: str = "spec") -> set[str]:
    """fields are the paths of every property in schema (what schema_cases must cover)."""
    paths = set()
    for key, sub in schema.get("properties", {}).items():
        paths.add(f"{prefix}.{key}")
        paths |= fields(sub, f"{prefix}.{key}")
    return paths


PG = VALID["ProcessorGroup"]
#: RULE_CASES break each CEL rule of the schemas (keyed by its message); test_every_rule_has_a_case keeps it complete.
RULE_CASES: dict[str, Case] = {
    "replicas must be <= partitions": Case("ProcessorGroup", "cel", {**PG, "replicas": 5}, "spec.replicas"),
    "partitions cannot decrease": Case("ProcessorGroup", "cel", {**PG, "partitions": 2}, "spec.partitions",
                                       before=PG),
    "group is immutable": Case("ProcessorGroup", "cel", {**PG, "group": "renamed"}, "spec.group", before=PG),
    "autoscaling.minReplicas must be <= autoscaling.maxReplicas": Case(
        "ProcessorGroup", "cel", {**PG, "autoscaling": {"minReplicas": 3, "maxReplicas": 2}},
        "spec.autoscaling.minReplicas"),
    "exactly one of table or group must be set": Case("View", "cel", {"table": "t", "group": "g"}, "spec"),
}


def rule_messages(schema: dict[str, Any]) -> set[str]:
    """rule_messages are the messages of every x-kubernetes-validations rule in schema."""
    found = {rule["message"] for rule in schema.get("x-kubernetes-validations", [])}
    for sub in schema.get("properties", {}).values():
        found |= rule_messages(sub)
    return found
