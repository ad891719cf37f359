"""Strategic-merge-like merging of a user's podTemplate into the generated pod template."""

from __future__ import annotations

import copy
from typing import Any


def merge(base: Any, override: Any) -> Any:
    """merge overlays override on base: dicts recursively, lists of named items by name, anything else replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        result = dict(base)
        for key, value in override.items():
            result[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return result
    if isinstance(base, list) and isinstance(override, list) and _named(base) and _named(override):
        # Containers, volumes, env and ports are lists keyed by name in Kubernetes: merge like kubectl's
        # strategic merge so an override of one container's resources keeps the generated command and env.
        result_list = [copy.deepcopy(item) for item in base]
        index = {item["name"]: i for i, item in enumerate(result_list)}
        for item in override:
            if item["name"] in index:
                result_list[index[item["name"]]] = merge(result_list[index[item["name"]]], item)
            else:
                result_list.append(copy.deepcopy(item))
        return result_list
    return copy.deepcopy(override)


def _named(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and "name" in item for item in items)
