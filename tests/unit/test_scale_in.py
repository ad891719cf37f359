"""`pygoka run`'s scale-in check: which StatefulSet a pod name belongs to and whether it still wants the pod."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest
from pygoka.cli.scale_in import InClusterScaleIn, StatefulSetPod, in_cluster_scale_in, scaled_in, statefulset_pod


def test_a_pod_name_gives_its_statefulset_and_ordinal() -> None:
    assert statefulset_pod("clicks-processor-3", "apps") == StatefulSetPod("apps", "clicks-processor", 3)
    assert statefulset_pod("clicks-processor-3", "apps").path == "/apis/apps/v1/namespaces/apps/statefulsets/" \
                                                                 "clicks-processor"  # type: ignore[union-attr]
    assert statefulset_pod("worker-12", "ns") == StatefulSetPod("ns", "worker", 12)
    assert statefulset_pod("clicks-7d9f8c-x2x4z", "apps") is None  # a Deployment's pod
    assert statefulset_pod("laptop", "apps") is None


@pytest.mark.parametrize(("replicas", "ordinal", "leaving"), [(4, 3, False), (2, 3, True), (2, 2, True),
                                                              (2, 1, False), (0, 0, True)])
def test_a_pod_at_or_above_the_replica_count_is_scaled_in(replicas: int, ordinal: int, leaving: bool) -> None:
    assert scaled_in(StatefulSetPod("ns", "g", ordinal), {"spec": {"replicas": replicas}}) is leaving


def test_a_deleted_or_deleting_statefulset_wants_no_pod() -> None:
    pod = StatefulSetPod("ns", "g", 0)
    assert scaled_in(pod, None)
    assert scaled_in(pod, {"metadata": {"deletionTimestamp": "2026-12-03T23:00:00Z"}, "spec": {"replicas": 3}})
    assert not scaled_in(pod, {"metadata": {}, "spec": {}})  # replicas defaults to 1


def account(tmp_path: Path) -> Path:
    (tmp_path / "token").write_text("t0ken\n")
    (tmp_path / "namespace").write_text("apps")
    return tmp_path


def test_only_a_statefulset_pod_with_a_service_account_asks(tmp_path: Path) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    asks = in_cluster_scale_in("g-processor-1", env, account(tmp_path))
    assert isinstance(asks, InClusterScaleIn)
    assert asks.pod == StatefulSetPod("apps", "g-processor", 1) and asks.server == "https://10.96.0.1:443"
    ipv6 = in_cluster_scale_in("g-processor-1", {"KUBERNETES_SERVICE_HOST": "fd00::1"}, tmp_path)
    assert isinstance(ipv6, InClusterScaleIn) and ipv6.server == "https://[fd00::1]:443"
    assert in_cluster_scale_in(None, env, tmp_path) is None
    assert in_cluster_scale_in("g-processor-1", {}, tmp_path) is None  # not in a pod
    assert in_cluster_scale_in("laptop", env, tmp_path) is None
    assert in_cluster_scale_in("g-processor-1", env, tmp_path / "none") is None  # no token mounted


def test_an_api_server_that_cannot_be_asked_keeps_the_membership(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    # A valid CA file, so that what fails is the connection (nothing listens on port 1).
    (account(tmp_path) / "ca.crt").write_bytes(Path(ssl.get_default_verify_paths().openssl_cafile).read_bytes())
    asks = InClusterScaleIn(StatefulSetPod("apps", "g-processor", 1), "https://127.0.0.1:1", tmp_path)
    with caplog.at_level(logging.WARNING, logger="pygoka.cli"):
        assert asks() is False
    assert "cannot tell whether StatefulSet apps/g-processor scaled this pod in" in caplog.text
    assert "Connection refused" in caplog.text
