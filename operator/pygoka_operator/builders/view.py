"""The StatefulSet of a View: every pod holds the whole table on its volume and serves the query API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pygoka_operator.builders.labels import labels, selector_labels
from pygoka_operator.builders.pod import base_env, pod_template, statefulset
from pygoka_operator.model import Owner, child_name, view_table

#: VIEW_HTTP_PORT is the container port of a view's monitor page, probes and metrics (the headless Service's).
VIEW_HTTP_PORT = 8080
#: VIEW_QUERY_PORT is the container port serving only the read-only query API; the query Service maps
#: spec.servicePort to it and to nothing else.
VIEW_QUERY_PORT = 8081


def view_command(spec: dict[str, Any]) -> list[str]:
    """view_command runs the user's graph, or the built-in query server for the table and codec."""
    if spec.get("graph"):
        return ["pygoka", "run", str(spec["graph"])]
    return ["pygoka", "run", "--view", view_table(spec), "--codec", str(spec.get("codec", "bytes"))]


def view_statefulset(owner: Owner, spec: dict[str, Any], brokers: str, default_image: str,
                     pull_secrets: Sequence[str] = ()) -> dict[str, Any]:
    """view_statefulset is the StatefulSet of a defaulted View spec."""
    name = child_name("View", owner.name)
    own_labels = labels(owner.name, "view", spec.get("group"))
    secret = (spec.get("kafka") or {}).get("secretRef", {}).get("name")
    template = pod_template(labels=own_labels, image=str(spec.get("image") or default_image),
                            command=view_command(spec), env=base_env(brokers, VIEW_HTTP_PORT, secret),
                            http_port=VIEW_HTTP_PORT, query_port=VIEW_QUERY_PORT, spec=spec,
                            pull_secrets=pull_secrets)
    return statefulset(owner=owner, name=name, labels=own_labels, selector=selector_labels(owner.name, "view"),
                       service=f"{name}-headless", replicas=int(spec["replicas"]), template=template,
                       storage=spec.get("storage") or {})
