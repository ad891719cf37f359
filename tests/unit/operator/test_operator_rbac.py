"""The operator's RBAC self-check: what it asks for, and the exit status and log lines when something is missing."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pygoka_operator import rbac
from pygoka_operator.rbac import Permission, required, verify


class Lines(logging.Handler):
    """Lines collects the self-check's log messages (its logger does not propagate to pytest's)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    rbac.log.addHandler(handler)
    yield handler
    rbac.log.removeHandler(handler)


def test_cluster_wide_checks_every_permission_once_in_all_namespaces() -> None:
    checks = required([], "")
    described = {permission.describe(namespace) for permission, namespace in checks}
    assert len(described) == len(checks)
    assert {"create statefulsets.apps in all namespaces", "patch processorgroups/status.pygoka.io in all namespaces",
            "get secrets in all namespaces", "create events in all namespaces",
            "watch customresourcedefinitions.apiextensions.k8s.io cluster-wide"} <= described
    assert not any("delete" in text or "kopf.dev" in text for text in described)


def test_namespaced_checks_each_watched_namespace_and_peering() -> None:
    checks = required(["a", "b"], "peers")
    described = {permission.describe(namespace) for permission, namespace in checks}
    for namespace in ("a", "b"):
        assert f"create statefulsets.apps in namespace {namespace}" in described
        assert f"patch kopfpeerings.kopf.dev in namespace {namespace}" in described
    assert not any("in all namespaces" in text for text in described)
    assert sorted(text for text in described if "cluster-wide" in text) == sorted(
        text for text in described if "customresourcedefinitions" in text or " namespaces " in text)
    cluster = {permission.describe(ns) for permission, ns in required([], "peers")}
    assert "patch clusterkopfpeerings.kopf.dev cluster-wide" in cluster


def test_missing_permissions_exit_1_naming_each(lines: Lines) -> None:
    denied = {("create", "statefulsets"), ("get", "secrets")}

    def review(permission: Permission, namespace: str) -> bool:
        assert namespace in ("", "apps")
        return (permission.verb, permission.resource) not in denied

    assert verify({"PYGOKA_OPERATOR_NAMESPACES": "apps"}, review) == 1
    errors = [line for line in lines.messages if line.startswith("missing RBAC permission")]
    assert sorted(errors) == ["missing RBAC permission: create statefulsets.apps in namespace apps",
                              "missing RBAC permission: get secrets in namespace apps"]
    assert "exiting: 2 missing RBAC permission(s)" in lines.messages[-1]


def test_all_granted_or_check_disabled_is_0(lines: Lines) -> None:
    assert verify({}, lambda permission, namespace: True) == 0
    assert lines.messages[-1] == f"RBAC permissions checked: {len(required([], ''))} granted"
    assert verify({"PYGOKA_OPERATOR_RBAC_CHECK": "false"}, lambda permission, namespace: False) == 0


class Refused(Exception):
    status = 403


def test_forbidden_reviews_continue_and_an_unreachable_api_server_exits_1(lines: Lines) -> None:
    def forbidden(permission: Permission, namespace: str) -> bool:
        raise Refused("selfsubjectaccessreviews is forbidden")

    assert verify({}, forbidden) == 0
    assert "SelfSubjectAccessReview forbidden" in lines.messages[-1]
    calls: list[int] = []

    def unreachable(permission: Permission, namespace: str) -> bool:
        calls.append(1)
        raise ConnectionRefusedError("connection refused")

    assert verify({}, unreachable, attempts=3, pause=0) == 1
    assert len(calls) == 3
    assert lines.messages[-1] == "cannot check RBAC permissions: ConnectionRefusedError: connection refused"
