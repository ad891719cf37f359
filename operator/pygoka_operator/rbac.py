"""RBAC self-check at startup: every (verb, resource) the operator uses, asked with SelfSubjectAccessReviews.

Without it a missing permission shows as kopf retrying 403s forever; with it the operator exits 1 before kopf
starts, logging one line per missing permission ("missing RBAC permission: create statefulsets.apps in
namespace apps"). REQUIRED mirrors the chart's role (templates/_helpers.tpl): a unit test keeps them equal, so
the chart grants exactly what the operator checks for.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: EXIT_MISSING is the exit status when permissions are missing or cannot be checked.
EXIT_MISSING = 1


@dataclass(frozen=True)
class Permission:
    """Permission is one verb on one resource (or subresource) of an API group."""

    verb: str
    resource: str
    group: str = ""
    subresource: str = ""
    #: cluster: a cluster-scoped resource, checked once without a namespace.
    cluster: bool = False

    @property
    def qualified(self) -> str:
        """qualified is resource[/subresource][.group], as kubectl names it (statefulsets.apps)."""
        name = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{name}.{self.group}" if self.group else name

    def describe(self, namespace: str) -> str:
        """describe is 'verb resource in namespace X' (or 'in all namespaces', 'cluster-wide')."""
        where = "cluster-wide" if self.cluster else (f"in namespace {namespace}" if namespace else
                                                      "in all namespaces")
        return f"{self.verb} {self.qualified} {where}"


def _each(verbs: str, resource: str, group: str = "", subresource: str = "",
          cluster: bool = False) -> list[Permission]:
    return [Permission(verb, resource, group, subresource, cluster) for verb in verbs.split()]


#: REQUIRED are the namespaced permissions the handlers use: kopf lists, watches and patches the resources and
#: their status; children are read (an existing object is applied only if it is ours), created and server-side
#: applied (patch), never deleted (owner references let the garbage collector do that); the Kafka Secret is read;
#: kopf posts core/v1 events. Granting the pods' Role (get statefulsets) passes the API server's escalation check
#: only because the operator holds that get itself.
REQUIRED: tuple[Permission, ...] = (
    *_each("list watch patch", "processorgroups", "pygoka.io"),
    *_each("list watch patch", "views", "pygoka.io"),
    *_each("patch", "processorgroups", "pygoka.io", "status"),
    *_each("patch", "views", "pygoka.io", "status"),
    *_each("get create patch", "statefulsets", "apps"),
    *_each("get create patch", "services"),
    *_each("get create patch", "poddisruptionbudgets", "policy"),
    *_each("get create patch", "serviceaccounts"),
    *_each("get create patch", "roles", "rbac.authorization.k8s.io"),
    *_each("get create patch", "rolebindings", "rbac.authorization.k8s.io"),
    *_each("get", "secrets"),
    *_each("create", "events"),
)
#: DISCOVERY is what kopf reads cluster-wide to discover resources and namespaces (the chart's -discovery role).
DISCOVERY: tuple[Permission, ...] = (
    *_each("list watch", "customresourcedefinitions", "apiextensions.k8s.io", cluster=True),
    *_each("list watch", "namespaces", cluster=True),
)


#: LEARNING is what learning topologies from images takes (PYGOKA_OPERATOR_LEARN_GRAPH): create the graph Jobs
#: (immutable: read, never patched) and find their pods, whose status holds the result.
LEARNING: tuple[Permission, ...] = (
    *_each("get create", "jobs", "batch"),
    *_each("list", "pods"),
)


def peering_permissions(namespaced: bool) -> tuple[Permission, ...]:
    """peering_permissions let kopf watch the peering object and patch its keep-alive into it."""
    if namespaced:
        return tuple(_each("list watch patch", "kopfpeerings", "kopf.dev"))
    return tuple(_each("list watch patch", "clusterkopfpeerings", "kopf.dev", cluster=True))


def required(namespaces: list[str], peering: str, learn: bool = False) -> list[tuple[Permission, str]]:
    """required pairs each needed permission with the namespace it is needed in ("": all, or cluster-scoped)."""
    scopes = namespaces or [""]
    namespaced = [*REQUIRED, *(LEARNING if learn else ()), *(peering_permissions(bool(namespaces)) if peering else ())]
    checks = [(permission, "") for permission in DISCOVERY]
    for namespace in scopes:
        checks += [(permission, "" if permission.cluster else namespace) for permission in namespaced
                   if not permission.cluster or namespace == scopes[0]]
    return checks


Review = Callable[[Permission, str], bool]


def missing(review: Review, checks: list[tuple[Permission, str]]) -> list[str]:
    """missing describes each check the review denies."""
    return [permission.describe(namespace) for permission, namespace in checks if not review(permission, namespace)]


def access_review(api_client: Any) -> Review:
    """access_review asks the API server whether this operator's identity may do one thing."""
    from kubernetes import client

    api = client.AuthorizationV1Api(api_client)

    def allowed(permission: Permission, namespace: str) -> bool:
        attributes = client.V1ResourceAttributes(verb=permission.verb, group=permission.group,
                                                 resource=permission.resource,
                                                 subresource=permission.subresource or None,
                                                 namespace=namespace or None)
        review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=attributes))
        status = api.create_self_subject_access_review(review).status
        return bool(status is not None and status.allowed)

    return allowed


def namespaces_of(env: Mapping[str, str]) -> list[str]:
    """namespaces_of is PYGOKA_OPERATOR_NAMESPACES as a list (empty: all namespaces)."""
    return [ns.strip() for ns in env.get("PYGOKA_OPERATOR_NAMESPACES", "").split(",") if ns.strip()]


def verify(env: Mapping[str, str], review: Review | None = None, attempts: int = 10, pause: float = 3.0) -> int:
    """verify logs every missing permission and returns the exit status (0: all granted or check disabled).

    An API server that cannot be reached is retried attempts times; one that refuses SelfSubjectAccessReviews
    themselves (403) leaves the check undone with a warning.
    """
    if env.get("PYGOKA_OPERATOR_RBAC_CHECK", "true").strip().lower() in ("0", "false", "no", "off"):
        return 0
    _log_to_stderr()
    learn = env.get("PYGOKA_OPERATOR_LEARN_GRAPH", "").strip().lower() in ("1", "true", "yes", "on")
    checks = required(namespaces_of(env), env.get("PYGOKA_OPERATOR_PEERING", "").strip(), learn)
    if review is None:
        from pygoka_operator import kube

        kube.load_config()
        review = access_review(None)
    for attempt in range(1, attempts + 1):
        try:
            absent = missing(review, checks)
            break
        except Exception as exc:  # noqa: BLE001 - classified below: forbidden reviews, or the API server is away
            if getattr(exc, "status", None) == 403:
                log.warning("cannot check RBAC permissions (SelfSubjectAccessReview forbidden): continuing")
                return 0
            if attempt == attempts:
                log.error("cannot check RBAC permissions: %s: %s", type(exc).__name__, exc)
                return EXIT_MISSING
            log.warning("cannot check RBAC permissions yet (%s), retrying", type(exc).__name__)
            time.sleep(pause)
    for description in absent:
        log.error("missing RBAC permission: %s", description)
    if absent:
        log.error("exiting: %d missing RBAC permission(s); grant the chart's role (charts/pygoka-operator)",
                  len(absent))
        return EXIT_MISSING
    log.info("RBAC permissions checked: %d granted", len(checks))
    return 0


def _log_to_stderr() -> None:
    # kopf configures the root logger only later; this logger writes on its own so nothing is printed twice.
    log.setLevel(logging.INFO)
    if not any(getattr(handler, "pygoka_rbac", False) for handler in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)-8s] %(name)s: %(message)s"))
        handler.pygoka_rbac = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        log.propagate = False
