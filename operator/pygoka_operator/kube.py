"""Idempotent create-or-apply of children with the official kubernetes client (server-side apply on conflict)."""

from __future__ import annotations

import base64
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pygoka_operator import MANAGER

PLURALS = {"StatefulSet": "statefulsets", "Service": "services", "PodDisruptionBudget": "poddisruptionbudgets"}


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    """collection_path is the REST path of kind's collection in namespace."""
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{base}/namespaces/{namespace}/{PLURALS[kind]}"


def _call(api: Any, method: str, path: str, body: Any = None, content_type: str = "application/json",
          query: list[tuple[str, str]] | None = None) -> Any:
    return api.call_api(path, method, body=body, query_params=query or [], response_type="object",
                        header_params={"Content-Type": content_type, "Accept": "application/json"},
                        auth_settings=["BearerToken"], _return_http_data_only=True)


def apply(api: Any, manifest: dict[str, Any]) -> dict[str, Any]:
    """apply creates manifest, or (409: it exists) server-side applies it so fields we dropped are removed too."""
    meta = manifest["metadata"]
    path = collection_path(manifest["apiVersion"], manifest["kind"], meta["namespace"])
    try:
        return dict(_call(api, "POST", path, manifest, query=[("fieldManager", MANAGER)]))
    except ApiException as exc:
        if exc.status != 409:
            raise
    return dict(_call(api, "PATCH", f"{path}/{meta['name']}", manifest, "application/apply-patch+yaml",
                      [("fieldManager", MANAGER), ("force", "true")]))


def read(api: Any, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """read is the object, or None when it does not exist."""
    try:
        return dict(_call(api, "GET", f"{collection_path(api_version, kind, namespace)}/{name}"))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def secret_settings(api: Any, namespace: str, name: str) -> dict[str, str]:
    """secret_settings are the Kafka Secret's keys as librdkafka settings (values never logged)."""
    secret = client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    return {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}
