"""Operator CRDs: committed files equal the generated ones; schemas are structural; contract fields exist."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml
from pygoka_operator.schema import CRDS

ROOT = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("gen_crds", ROOT / "scripts" / "gen-crds.py")
assert spec is not None and spec.loader is not None
gen_crds = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_crds)


@pytest.mark.parametrize("directory", ["crds", "charts/pygoka-operator/crds"])
@pytest.mark.parametrize("name", sorted(CRDS))
def test_committed_crds_equal_the_generated_ones(directory: str, name: str) -> None:
    assert (ROOT / directory / name).read_text() == gen_crds.render(name), "run scripts/gen-crds.py"


def walk(schema: dict[str, Any], path: str) -> list[str]:
    """walk lists the paths of schema nodes without a type (structural schemas need one everywhere)."""
    missing = []
    if "type" not in schema and not schema.get("x-kubernetes-int-or-string"):
        missing.append(path)
    for key, sub in schema.get("properties", {}).items():
        missing += walk(sub, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        missing += walk(schema["items"], f"{path}[]")
    return missing


@pytest.mark.parametrize("name", sorted(CRDS))
def test_schemas_are_structural(name: str) -> None:
    version = CRDS[name]()["spec"]["versions"][0]
    assert walk(version["schema"]["openAPIV3Schema"], "") == []


def version_of(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "crds" / name).read_text())
    assert loaded["spec"]["group"] == "pygoka.io"
    version: dict[str, Any] = loaded["spec"]["versions"][0]
    assert version["name"] == "v1alpha1"
    return version


def test_processorgroup_contract() -> None:
    loaded = yaml.safe_load((ROOT / "crds" / "processorgroups.yaml").read_text())
    assert loaded["spec"]["names"]["shortNames"] == ["pg"]
    version = version_of("processorgroups.yaml")
    assert version["subresources"] == {"status": {}, "scale": {
        "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector"}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Ready", "Replicas", "Ready-Replicas", "Partitions", "Lag", "Age"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    props = spec["properties"]
    assert props["group"]["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
    assert props["partitions"]["minimum"] == 1
    assert props["partitions"]["x-kubernetes-validations"][0]["rule"] == "self >= oldSelf"
    assert spec["x-kubernetes-validations"][0]["rule"] == "!has(self.partitions) || self.replicas <= self.partitions"
    assert spec["required"] == ["image", "graph"]
    assert props["replicationFactor"]["default"] == -1
    # The topology fields are optional and have no default: set, each is checked against the code.
    for name in ("inputs", "joins", "lookups", "outputs", "loop", "persist"):
        assert "default" not in props[name], name
    assert props["topicDeletionPolicy"] == {**props["topicDeletionPolicy"], "enum": ["Retain", "Delete"],
                                           "default": "Retain"}
    assert props["options"]["properties"]["guarantee"]["enum"] == ["at_least_once", "exactly_once"]
    assert props["httpPort"]["default"] == 8080
    assert props["storage"]["properties"]["size"]["default"] == "1Gi"
    assert props["podTemplate"]["x-kubernetes-preserve-unknown-fields"] is True
    assert set(props["autoscaling"]["properties"]) == {
        "enabled", "minReplicas", "maxReplicas", "targetLagPerReplica", "scaleUpStabilizationSeconds",
        "scaleDownStabilizationSeconds", "intervalSeconds"}
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"observedGeneration", "replicas", "readyReplicas", "selector", "partitions", "topics", "conditions",
            "lag", "desiredReplicas", "lastScaling"} <= set(status)


def test_view_contract() -> None:
    version = version_of("views.yaml")
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["x-kubernetes-validations"][0]["rule"] == "has(self.table) != has(self.group)"
    assert spec["properties"]["codec"]["enum"] == ["int64", "string", "json", "bytes"]
    assert spec["properties"]["servicePort"]["default"] == 8080
