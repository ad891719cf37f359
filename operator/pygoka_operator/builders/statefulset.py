"""The StatefulSet of a ProcessorGroup: `pygoka run <graph>` with RocksDB on a volume claim per pod."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pygoka.options import OPTIONS

from pygoka_operator.builders.access import pods_service_account
from pygoka_operator.builders.labels import labels, selector_labels
from pygoka_operator.builders.pod import base_env, env_var, pod_template, statefulset
from pygoka_operator.model import Owner, child_name, group_of


def options_env(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """options_env passes each ProcessorOptions field the spec sets (spec.options, or spec's topic fields) as the
    PYGOKA_* variable `pygoka run` reads it from, formatted as it parses it; unset fields keep the runtime default."""
    options = spec.get("options") or {}
    env = []
    for option in OPTIONS:
        source = options if option.place == "options" else spec if option.place == "topics" else {}
        value = source.get(option.key)
        if value is not None:
            env.append(env_var(option.env, option.format(value)))
    return env


def processor_statefulset(owner: Owner, spec: dict[str, Any], brokers: str, pull_secrets: Sequence[str] = (),
                          expected: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """processor_statefulset is the StatefulSet of a resolved ProcessorGroup spec; brokers already resolved.

    expected are the topology fields each pod checks its code against before it starts (PYGOKA_EXPECTED_TOPOLOGY).
    """
    group = group_of(owner.name, spec)
    name = child_name("ProcessorGroup", owner.name)
    own_labels = labels(owner.name, "processor", group)
    secret = (spec.get("kafka") or {}).get("secretRef", {}).get("name")
    env = [*base_env(brokers, int(spec["httpPort"]), secret), *options_env(spec)]
    if expected:
        env.append(env_var("PYGOKA_EXPECTED_TOPOLOGY", json.dumps(dict(expected), sort_keys=True)))
    template = pod_template(labels=own_labels, image=str(spec["image"]), command=["pygoka", "run", str(spec["graph"])],
                            env=env, http_port=int(spec["httpPort"]), spec=spec, pull_secrets=pull_secrets,
                            service_account=pods_service_account(spec, name))
    return statefulset(owner=owner, name=name, labels=own_labels, selector=selector_labels(owner.name, "processor"),
                       service=name, replicas=int(spec["replicas"]), template=template,
                       storage=spec.get("storage") or {})
