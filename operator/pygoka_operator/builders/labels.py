"""Labels of every child: the recommended app.kubernetes.io set plus pygoka.io/group."""

from __future__ import annotations

from pygoka_operator import MANAGER

GROUP_LABEL = "pygoka.io/group"


def selector_labels(name: str, component: str) -> dict[str, str]:
    """selector_labels select one resource's pods; a StatefulSet's selector is immutable, so it never changes."""
    return {"app.kubernetes.io/name": "pygoka", "app.kubernetes.io/instance": name,
            "app.kubernetes.io/component": component}


def labels(name: str, component: str, group: str | None) -> dict[str, str]:
    """labels are put on every child and pod of resource name (component processor or view)."""
    result = {**selector_labels(name, component), "app.kubernetes.io/managed-by": MANAGER}
    if group:
        result[GROUP_LABEL] = group
    return result


def selector_string(selector: dict[str, str]) -> str:
    """selector_string is the label selector in the form status.selector (scale subresource) expects."""
    return ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
