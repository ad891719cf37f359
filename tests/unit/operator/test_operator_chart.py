"""The Helm chart: `helm lint --strict` passes and `helm template` renders least-privilege RBAC in both modes.

helm is the one scripts/k8s.sh builds (`scripts/k8s.sh env` prints its directory); no cluster is needed.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "pygoka-operator"


def helm_path() -> Path:
    """helm_path is scripts/k8s.sh's helm; run `scripts/k8s.sh install` if this fails."""
    exports = subprocess.run([str(ROOT / "scripts" / "k8s.sh"), "env"], capture_output=True, text=True, check=True)
    line = next(line for line in exports.stdout.splitlines() if line.startswith("export PATH="))
    helm = Path(line.removeprefix("export PATH=").split(":", 1)[0]) / "helm"
    assert helm.exists(), f"{helm} missing: run scripts/k8s.sh install"
    return helm


def helm(*args: str, check: bool = True, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELM_CACHE_HOME": str(tmp / "cache"), "HELM_CONFIG_HOME": str(tmp / "config"),
           "HELM_DATA_HOME": str(tmp / "data")}
    result = subprocess.run([str(helm_path()), *args], capture_output=True, text=True, env=env, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


#: KUBE_VERSION is the cluster version `helm template` assumes (the chart's kubeVersion refuses helm's default).
KUBE_VERSION = "1.35.0"


def render(tmp: Path, *sets: str) -> list[dict[str, Any]]:
    args = ["template", "rel", str(CHART), "--namespace", "ops", "--include-crds", "--kube-version", KUBE_VERSION]
    for value in sets:
        args += ["--set", value]
    return [doc for doc in yaml.safe_load_all(helm(*args, tmp=tmp).stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def test_lint_strict(tmp_path: Path) -> None:
    result = helm("lint", "--strict", str(CHART), tmp=tmp_path)
    assert "0 chart(s) failed" in result.stdout


def test_cluster_wide_default(tmp_path: Path) -> None:
    docs = render(tmp_path, "kafka.bootstrapServers=kafka:9092")
    assert sorted(crd["metadata"]["name"] for crd in by_kind(docs, "CustomResourceDefinition")) == [
        "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev", "processorgroups.pygoka.io", "views.pygoka.io"]
    assert by_kind(docs, "ClusterKopfPeering") == [] and by_kind(docs, "KopfPeering") == []
    (deployment,) = by_kind(docs, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PYGOKA_OPERATOR_BROKERS"] == "kafka:9092"
    assert env["PYGOKA_OPERATOR_NAMESPACES"] == ""
    assert env["PYGOKA_OPERATOR_RUNTIME_IMAGE"] == "ghcr.io/pygoka/pygoka-runtime:0.1.0"
    assert container["image"] == "ghcr.io/pygoka/pygoka-operator:0.1.0"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "rel-pygoka-operator"
    assert [sa["metadata"]["name"] for sa in by_kind(docs, "ServiceAccount")] == ["rel-pygoka-operator"]
    assert sorted(r["metadata"]["name"] for r in by_kind(docs, "ClusterRole")) == [
        "rel-pygoka-operator", "rel-pygoka-operator-discovery"]
    assert by_kind(docs, "Role") == []
    rules = next(r for r in by_kind(docs, "ClusterRole") if r["metadata"]["name"] == "rel-pygoka-operator")["rules"]
    verbs = {resource: set(rule["verbs"]) for rule in rules for resource in rule["resources"]}
    # Children are removed by the garbage collector: the operator never needs delete.
    assert all("delete" not in v for v in verbs.values())
    assert verbs["secrets"] == {"get"}
    assert verbs["processorgroups/status"] == {"patch"}


def test_namespaced_roles_per_watched_namespace(tmp_path: Path) -> None:
    docs = render(tmp_path, "rbac.clusterWide=false", "watchNamespaces={team-a,team-b}")
    roles = by_kind(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert sorted(b["metadata"]["namespace"] for b in by_kind(docs, "RoleBinding")) == ["team-a", "team-b"]
    assert [r["metadata"]["name"] for r in by_kind(docs, "ClusterRole")] == ["rel-pygoka-operator-discovery"]
    (deployment,) = by_kind(docs, "Deployment")
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PYGOKA_OPERATOR_NAMESPACES"] == "team-a,team-b"


@pytest.mark.parametrize(("values", "error"), [
    (["rbac.clusterWide=false"], "rbac.clusterWide=false needs watchNamespaces"),
    (["replicaCount=2"], "replicaCount > 1 needs peering.name"),
    # values.schema.json: a misspelt or mistyped value is refused, naming it.
    (["kafka.bootstrapServer=kafka:9092"], "at '/kafka': additional properties 'bootstrapServer' not allowed"),
    (["replicaCount=two"], "at '/replicaCount': got string, want integer"),
    (["logFormat=xml"], "at '/logFormat'"),
    (["monitoring.podMonitor.enable=true"], "additional properties 'enable' not allowed"),
    (["imagePullSecrets[0].nam=regcred"], "at '/imagePullSecrets/0'"),
])
def test_invalid_values_fail(tmp_path: Path, values: list[str], error: str) -> None:
    args = ["template", "rel", str(CHART), "--kube-version", KUBE_VERSION]
    for value in values:
        args += ["--set", value]
    result = helm(*args, check=False, tmp=tmp_path)
    assert result.returncode != 0 and error in result.stderr


def test_peering_enables_leader_election(tmp_path: Path) -> None:
    """Cluster-wide: a ClusterKopfPeering of peering.name, and the ClusterRole may watch and patch it."""
    docs = render(tmp_path, "replicaCount=2", "peering.name=pygoka", "peering.lifetimeSeconds=20")
    (deployment,) = by_kind(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PYGOKA_OPERATOR_PEERING"] == "pygoka"
    assert env["PYGOKA_OPERATOR_PEERING_LIFETIME"] == "20"
    (peering,) = by_kind(docs, "ClusterKopfPeering")
    assert peering["apiVersion"] == "kopf.dev/v1" and peering["metadata"]["name"] == "pygoka"
    rules = next(r for r in by_kind(docs, "ClusterRole") if r["metadata"]["name"] == "rel-pygoka-operator")["rules"]
    (rule,) = [rule for rule in rules if rule["apiGroups"] == ["kopf.dev"]]
    assert rule == {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"],
                    "verbs": ["list", "watch", "patch"]}


def test_namespaced_peering_per_watched_namespace(tmp_path: Path) -> None:
    """Watching namespaces, kopf peers through a KopfPeering in each; the Roles grant exactly those."""
    docs = render(tmp_path, "rbac.clusterWide=false", "watchNamespaces={team-a,team-b}", "peering.name=pygoka")
    assert by_kind(docs, "ClusterKopfPeering") == []
    assert sorted((p["metadata"]["namespace"], p["metadata"]["name"]) for p in by_kind(docs, "KopfPeering")) == [
        ("team-a", "pygoka"), ("team-b", "pygoka")]
    for role in by_kind(docs, "Role"):
        (rule,) = [rule for rule in role["rules"] if rule["apiGroups"] == ["kopf.dev"]]
        assert rule["resources"] == ["kopfpeerings"]


def test_default_images_follow_the_released_version(tmp_path: Path) -> None:
    """Chart appVersion = pygoka's version, and the operator's own runtime-image default is the chart's."""
    import tomllib

    from pygoka_operator.config import OperatorConfig

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == version
    (deployment,) = by_kind(render(tmp_path), "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert container["image"] == f"ghcr.io/pygoka/pygoka-operator:{version}"
    assert env["PYGOKA_OPERATOR_RUNTIME_IMAGE"] == OperatorConfig().runtime_image == \
        f"ghcr.io/pygoka/pygoka-runtime:{version}"


def triple(permission: Any) -> tuple[str, str, str]:
    """triple is a self-check permission as the (apiGroup, resource[/subresource], verb) of an RBAC rule."""
    resource = f"{permission.resource}/{permission.subresource}" if permission.subresource else permission.resource
    return permission.group, resource, permission.verb


def granted(roles: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """granted is every (apiGroup, resource, verb) the roles' rules allow."""
    return {(group, resource, verb) for role in roles for rule in role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


@pytest.mark.parametrize(("values", "namespaces", "peering", "learn"), [
    ([], [], "", True),
    (["learnGraph=false"], [], "", False),
    (["peering.name=pygoka", "replicaCount=2"], [], "pygoka", True),
    (["rbac.clusterWide=false", "watchNamespaces={team-a,team-b}"], ["team-a", "team-b"], "", True),
    (["rbac.clusterWide=false", "watchNamespaces={team-a}", "peering.name=p", "learnGraph=false"], ["team-a"], "p",
     False),
])
def test_rbac_is_exactly_what_the_operator_checks_at_startup(tmp_path: Path, values: list[str],
                                                             namespaces: list[str], peering: str,
                                                             learn: bool) -> None:
    """Least privilege: the chart grants exactly the permissions the operator's startup self-check requires,
    in every namespace it watches, and nothing more (no delete, no list of Secrets, no update)."""
    from pygoka_operator.rbac import required

    docs = render(tmp_path, *values)
    needed = required(namespaces, peering, learn)
    if namespaces:
        assert granted(by_kind(docs, "ClusterRole")) == {triple(p) for p, _ in needed if p.cluster}
        for namespace in namespaces:
            roles = [r for r in by_kind(docs, "Role") if r["metadata"]["namespace"] == namespace]
            assert granted(roles) == {triple(p) for p, ns in needed if ns == namespace}, namespace
    else:
        assert by_kind(docs, "Role") == []
        assert granted(by_kind(docs, "ClusterRole")) == {triple(p) for p, _ in needed}
    assert not any(verb in ("delete", "deletecollection", "update", "*") for _, _, verb in
                   granted([*by_kind(docs, "ClusterRole"), *by_kind(docs, "Role")]))


def test_operator_pod_runs_non_root_read_only_unprivileged(tmp_path: Path) -> None:
    (deployment,) = by_kind(render(tmp_path), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "initContainers" not in pod
    (container,) = pod["containers"]
    assert container["securityContext"] == {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                                            "allowPrivilegeEscalation": False, "privileged": False,
                                            "capabilities": {"drop": ["ALL"]}}
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]


def test_an_old_cluster_is_refused(tmp_path: Path) -> None:
    """kubeVersion: the CRDs' CEL rules with fieldPath need Kubernetes 1.29."""
    result = helm("template", "rel", str(CHART), "--kube-version", "1.28.0", check=False, tmp=tmp_path)
    assert result.returncode != 0 and "chart requires kubeVersion: >=1.29.0-0" in result.stderr


def test_names_env_labels_priority_and_security_contexts_are_overridable(tmp_path: Path) -> None:
    docs = render(tmp_path, "fullnameOverride=ops", "nameOverride=streams", "extraEnv[0].name=HTTPS_PROXY",
                  "extraEnv[0].value=http://proxy:3128", "podLabels.team=data", "priorityClassName=critical",
                  "podSecurityContext.runAsUser=20000", "securityContext.readOnlyRootFilesystem=false",
                  "imagePullSecrets[0].name=regcred", "imagePullSecrets[1].name=mirror")
    (deployment,) = by_kind(docs, "Deployment")
    assert deployment["metadata"]["name"] == "ops"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/name"] == "streams"
    assert [sa["metadata"]["name"] for sa in by_kind(docs, "ServiceAccount")] == ["ops"]
    assert sorted(r["metadata"]["name"] for r in by_kind(docs, "ClusterRole")) == ["ops", "ops-discovery"]
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["team"] == "data"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert pod["spec"]["priorityClassName"] == "critical"
    assert pod["spec"]["securityContext"]["runAsUser"] == 20000
    (container,) = pod["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is False
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HTTPS_PROXY"] == "http://proxy:3128"
    # The operator's own pull secrets, and the names it gives the pods it makes.
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]
    assert env["PYGOKA_OPERATOR_IMAGE_PULL_SECRETS"] == "regcred,mirror"
    assert env["PYGOKA_LOG_FORMAT"] == "json" and env["PYGOKA_OPERATOR_METRICS_PORT"] == "9090"
    assert {"name": "metrics", "containerPort": 9090} in container["ports"]


def test_package_and_lint_the_packaged_chart(tmp_path: Path) -> None:
    """`helm package` makes the chart archive of the chart's version; it lints strictly and renders as it is."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    helm("package", str(CHART), "--destination", str(tmp_path), tmp=tmp_path)
    archive = tmp_path / f"pygoka-operator-{chart['version']}.tgz"
    assert archive.exists()
    helm("lint", "--strict", str(archive), tmp=tmp_path)
    rendered = helm("template", "rel", str(archive), "--kube-version", KUBE_VERSION, tmp=tmp_path).stdout
    assert "kind: Deployment" in rendered
    names = tarfile.open(archive).getnames()
    assert {"pygoka-operator/values.schema.json", "pygoka-operator/README.md",
            "pygoka-operator/files/grafana-dashboard.json", "pygoka-operator/files/prometheus-rules.yaml"} <= set(names)


#: OBJECT_VALUES are values that are Kubernetes objects or label maps: one setting each, not one per key.
OBJECT_VALUES = {"resources", "podSecurityContext", "securityContext", "labels"}


def leaves(values: dict[str, Any], prefix: str = "") -> list[str]:
    """leaves are the dotted paths of values' settings."""
    paths = []
    for key, value in values.items():
        if isinstance(value, dict) and value and key not in OBJECT_VALUES:
            paths += leaves(value, f"{prefix}{key}.")
        else:
            paths.append(f"{prefix}{key}")
    return paths


def test_the_readme_and_the_schema_describe_every_value() -> None:
    """Each value of values.yaml has a row in the chart's README and a place in values.schema.json."""
    import json

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    schema = json.loads((CHART / "values.schema.json").read_text())
    for path in leaves(values):
        assert f"| `{path}` |" in readme, path
        node = schema
        for part in path.split("."):
            node = node["properties"][part]
