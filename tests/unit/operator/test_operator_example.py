"""The operator's example resources use only fields of the CRDs and build into StatefulSets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pygoka_operator.builders import processor_statefulset, view_statefulset
from pygoka_operator.model import Owner, processor_spec, view_spec
from pygoka_operator.schema import PROCESSOR_SPEC, VIEW_SPEC
from pygoka_operator.topics import plan_topics

ROOT = Path(__file__).resolve().parents[3]


def unknown_fields(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    """unknown_fields lists the paths the API server would prune (fields absent from the schema)."""
    if schema.get("x-kubernetes-preserve-unknown-fields") or not isinstance(value, dict):
        return []
    properties = schema.get("properties", {})
    found = []
    for key, sub in value.items():
        if key not in properties:
            found.append(f"{path}.{key}")
        else:
            found += unknown_fields(properties[key], sub, f"{path}.{key}")
    return found


def documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((ROOT / "examples" / "k8s" / "click-count.yaml").read_text()) if doc]


def test_example_fields_exist_in_the_crds() -> None:
    docs = documents()
    assert [d["kind"] for d in docs] == ["ProcessorGroup", "View"]
    assert unknown_fields(PROCESSOR_SPEC, docs[0]["spec"], "spec") == []
    assert unknown_fields(VIEW_SPEC, docs[1]["spec"], "spec") == []


def test_example_builds_and_plans_its_topics() -> None:
    group, view = documents()
    spec = processor_spec(group["spec"])
    owner = Owner("ProcessorGroup", group["metadata"]["name"], "default", "u")
    sts = processor_statefulset(owner, spec, spec["kafka"]["bootstrapServers"])
    assert sts["spec"]["replicas"] == 2
    plan = plan_topics(owner.name, spec)
    assert int(spec["partitions"]) == 12
    assert [(t.name, t.config["cleanup.policy"]) for t in plan] == [
        ("user-clicks", "delete"), ("click-count-table", "compact")]
    view_sts = view_statefulset(Owner("View", "click-count", "default", "v"), view_spec(view["spec"]), "k:1", "img")
    assert view_sts["spec"]["template"]["spec"]["containers"][0]["command"][-4:] == [
        "--view", "click-count-table", "--codec", "int64"]
