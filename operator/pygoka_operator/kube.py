"""Idempotent create-or-apply of children with the official kubernetes client (server-side apply on conflict)."""

from __future__ import annotations

import base64
import threading
from typing import Any

from kubernetes import client, config, dynamic
from kubernetes.dynamic.exceptions import BadRequestError, ConflictError, NotFoundError, UnprocessibleEntityError

from pygoka_operator import MANAGER

_lock = threading.Lock()


class Rejected(Exception):
    """Rejected: the API server refused a child as invalid (400/422), a spec error retrying cannot fix."""


class NotOurs(Rejected):
    """NotOurs: an object of a child's kind and name exists and its owner is not the child's (the namespace's
    `default` ServiceAccount, for a ProcessorGroup named default). Applying would take it over, and deleting the
    resource would then delete it."""


_dynamic: Any = None


def load_config() -> None:
    """load_config loads the in-cluster configuration (a pod's ServiceAccount), else the kubeconfig."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


def api() -> Any:
    """api is the process's DynamicClient; its discovery is done once (kopf's handler threads share it)."""
    global _dynamic
    with _lock:
        if _dynamic is None:
            _dynamic = dynamic.DynamicClient(client.ApiClient())  # type: ignore[no-untyped-call]
        return _dynamic


def apply(dyn: Any, manifest: dict[str, Any]) -> dict[str, Any]:
    """apply creates manifest, or (409: it exists) server-side applies it so fields we dropped are removed too.

    An existing object is applied only if it has the manifest's owner (NotOurs otherwise).
    """
    resource = dyn.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    what = f"{manifest['kind']} {namespace}/{name}"
    try:
        try:
            return dict(resource.create(body=manifest, namespace=namespace, field_manager=MANAGER).to_dict())
        except ConflictError:
            pass
        _check_owner(manifest, dict(resource.get(name=name, namespace=namespace).to_dict()), what)
        # force: the operator owns these fields; a manual `kubectl scale statefulset` is reverted here.
        applied = dyn.server_side_apply(resource, body=manifest, namespace=namespace, field_manager=MANAGER,
                                        force_conflicts=True)
        return dict(applied.to_dict())
    except (BadRequestError, UnprocessibleEntityError) as exc:
        raise Rejected(f"the API server rejected {what}: {exc.summary()}") from exc  # type: ignore[no-untyped-call]


#: _ADOPTED are the labels an ownerless object must share with a child to be adopted as that child (one left
#: behind by an orphaning deletion of its resource, for the re-created resource).
_ADOPTED = ("app.kubernetes.io/managed-by", "app.kubernetes.io/instance")


def _check_owner(manifest: dict[str, Any], existing: dict[str, Any], what: str) -> None:
    """_check_owner raises NotOurs unless existing has the owners manifest names, or has no owner and the
    manifest's managed-by and instance labels (our child, orphaned)."""
    wanted = manifest["metadata"].get("ownerReferences") or []
    metadata = existing.get("metadata") or {}
    owners = metadata.get("ownerReferences") or []
    missing = [reference for reference in wanted if reference["uid"] not in {owner.get("uid") for owner in owners}]
    if not missing:
        return
    labels, ours = metadata.get("labels") or {}, manifest["metadata"].get("labels") or {}
    if not owners and all(key in ours and labels.get(key) == ours[key] for key in _ADOPTED):
        return
    others = ", ".join(f"{owner.get('kind')} {owner.get('name')}" for owner in owners) or "none"
    reference = missing[0]
    raise NotOurs(f"{what} exists and is not {reference['kind']} {reference['name']}'s (its owners: {others}); "
                  f"pygoka takes over no object it did not create: rename the {reference['kind']}, or remove "
                  f"that {manifest['kind']}")


def create_once(dyn: Any, manifest: dict[str, Any]) -> dict[str, Any]:
    """create_once creates manifest unless an object of its name exists, and returns what the API server has
    (for objects whose spec is immutable, such as Jobs: never re-applied)."""
    resource = dyn.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    try:
        return dict(resource.create(body=manifest, namespace=namespace, field_manager=MANAGER).to_dict())
    except ConflictError:
        return dict(resource.get(name=name, namespace=namespace).to_dict())
    except (BadRequestError, UnprocessibleEntityError) as exc:
        raise Rejected(f"the API server rejected {manifest['kind']} {namespace}/{name}: "
                       f"{exc.summary()}") from exc  # type: ignore[no-untyped-call]


def select(dyn: Any, api_version: str, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
    """select lists the objects of kind in namespace matching the label selector."""
    resource = dyn.resources.get(api_version=api_version, kind=kind)
    found = resource.get(namespace=namespace, label_selector=selector).to_dict()
    return [dict(item) for item in found.get("items") or []]


def read(dyn: Any, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """read is the object, or None when it does not exist."""
    resource = dyn.resources.get(api_version=api_version, kind=kind)
    try:
        return dict(resource.get(name=name, namespace=namespace).to_dict())
    except NotFoundError:
        return None


def secret_settings(dyn: Any, namespace: str, name: str) -> dict[str, str]:
    """secret_settings are the Kafka Secret's keys as librdkafka settings (values never logged)."""
    secret = read(dyn, "v1", "Secret", namespace, name)
    if secret is None:
        raise LookupError(f"Secret {namespace}/{name} (spec.kafka.secretRef) not found")
    return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}


#: REDACT_MIN is the shortest Secret value redact() hides wherever it appears (shorter ones only under SENSITIVE keys).
REDACT_MIN = 6
SENSITIVE = ("password", "secret", "token", "jaas", "username", "key", "credential")


def redact(text: str, settings: dict[str, str]) -> str:
    """redact replaces the Kafka Secret's values in text (an error message may echo a setting) by '***'."""
    values = {value for key, value in settings.items()
              if value and (len(value) >= REDACT_MIN or any(word in key.lower() for word in SENSITIVE))}
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


#: SPEC_ERRORS are what building or applying a child raises for a spec the CRD schema cannot catch (a podTemplate
#: or resources the API server refuses, a podTemplate of the wrong shape, which the builders refuse with a
#: ValueError naming the field): reported, never retried in a loop. Anything else is a bug and keeps its traceback.
SPEC_ERRORS = (Rejected, ValueError)


def spec_error(exc: BaseException) -> str:
    """spec_error is the message reporting one of SPEC_ERRORS in conditions and events."""
    return str(exc) if isinstance(exc, Rejected) else f"invalid spec ({type(exc).__name__}: {exc})"
