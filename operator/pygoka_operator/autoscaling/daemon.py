"""The autoscaler: a kopf daemon per ProcessorGroup measuring lag every spec.autoscaling.intervalSeconds.

A daemon rather than a kopf timer because a timer's interval is fixed when the handler is registered, while
each group chooses its own interval in its spec (the daemon's body is a live view of the object, so a changed
interval or policy applies from the next measurement). The lag is always written to status.lag (the printer
column); with autoscaling.enabled the decision is applied to spec.replicas, which the reconcile handlers roll
onto the StatefulSet like any other scale change.

The daemon is async and runs each measurement on a small executor of its own: a sync kopf daemon would hold
one of kopf's handler threads for the object's whole life, and a few groups would starve every other handler.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import kopf
from pygoka.kafka.config import Config
from pygoka.lag import group_lag
from pygoka.lag_reader import LagReader

from pygoka_operator import GROUP, VERSION, kube, metrics
from pygoka_operator.autoscaling.decision import Decision, Sample, decide, policy_from_spec
from pygoka_operator.config import OperatorConfig
from pygoka_operator.kafka_target import resource_kafka
from pygoka_operator.learning import planned
from pygoka_operator.model import group_of, processor_spec
from pygoka_operator.topics import consumed_topics

log = logging.getLogger(__name__)
SETTINGS = OperatorConfig.from_env()
#: WAIT_FOR_PLAN is the seconds before asking again for a group whose topology or partition count is not known yet.
WAIT_FOR_PLAN = 5.0
_readers: dict[tuple[tuple[str, str], ...], LagReader] = {}
_readers_lock = threading.Lock()
# Blocking AdminClient calls (each bounded by kafka_timeout) run here, never on kopf's handler threads.
_executor = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="autoscaler")


@dataclass
class State:
    """State is one group's recommendation history and last scaling time (in memory: a restart starts over)."""

    history: tuple[Sample, ...] = ()
    last_scaled: float | None = None
    last: Decision | None = field(default=None, repr=False)


def reader_for(config: Config) -> LagReader:
    """reader_for shares one AdminClient per Kafka configuration among the groups."""
    key = tuple(sorted(config.items()))
    with _readers_lock:
        if key not in _readers:
            _readers[key] = LagReader(config, timeout=SETTINGS.kafka_timeout)
        return _readers[key]


def forget_reader(config: Config) -> None:
    """forget_reader drops a failing reader: a new client next round, and no reconnect noise in between."""
    with _readers_lock:
        _readers.pop(tuple(sorted(config.items())), None)


def kafka_config(namespace: str, spec: dict[str, Any]) -> Config:
    """kafka_config is the AdminClient configuration of a group (brokers and its Secret's connection settings)."""
    return resource_kafka(kube.api(), namespace, spec, SETTINGS.brokers).admin_config()


def timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def patch_group(namespace: str, name: str, body: dict[str, Any], status: bool) -> None:
    """patch_group merge-patches the ProcessorGroup or its status subresource."""
    dyn = kube.api()
    resource = dyn.resources.get(api_version=f"{GROUP}/{VERSION}", kind="ProcessorGroup")
    target = resource.subresources["status"] if status else resource
    dyn.patch(target, body=body, name=name, namespace=namespace, content_type="application/merge-patch+json")


def measure(name: str, namespace: str, raw_spec: dict[str, Any], raw_status: dict[str, Any],
            state: State) -> tuple[float, Decision | None]:
    """measure does one round (lag, status, maybe a scaling step): the seconds until the next, what it scaled."""
    spec = planned(name, processor_spec(raw_spec), raw_status, SETTINGS.learn_graph)
    if spec is None:
        return WAIT_FOR_PLAN, None  # the graph is not learnt or no topic seen yet: nothing to measure
    auto = spec.get("autoscaling") or {}
    policy = policy_from_spec(spec)
    config: Config = {}
    try:
        config = kafka_config(namespace, spec)
        offsets = reader_for(config).offsets(group_of(name, spec), consumed_topics(name, spec))
    except Exception as exc:  # noqa: BLE001 - Kafka or Secret trouble: retried next round, never fatal
        forget_reader(config)
        log.warning("lag of %s/%s unavailable: %s", namespace, name,
                    kube.redact(f"{type(exc).__name__}: {exc}", config))
        return policy.interval, None
    lag = group_lag(offsets)
    metrics.LAG.labels(namespace, name, group_of(name, spec)).set(lag)
    status: dict[str, Any] = {"lag": lag}
    if not auto.get("enabled"):
        state.history, state.last = (), None
        patch_group(namespace, name, {"status": status}, status=True)
        return policy.interval, None
    current = int(spec["replicas"])
    now = time.monotonic()
    decision = decide(now=now, current=current, lag=lag, policy=policy, history=state.history,
                      last_scaled=state.last_scaled)
    state.history = decision.history
    status["desiredReplicas"] = decision.desired
    metrics.DESIRED.labels(namespace, name).set(decision.desired)
    if decision.scale:
        metrics.SCALINGS.labels(namespace, name, "up" if decision.replicas > current else "down").inc()
        patch_group(namespace, name, {"spec": {"replicas": decision.replicas}}, status=False)
        state.last_scaled = now
        status["lastScaling"] = {"time": timestamp(), "from": current, "to": decision.replicas,
                                 "reason": f"{decision.reason}: {decision.message}"}
        log.info("%s/%s: %s", namespace, name, decision.message)
    elif state.last is None or (state.last.reason, state.last.desired) != (decision.reason, decision.desired):
        log.info("%s/%s: %s (%s)", namespace, name, decision.reason, decision.message)
    state.last = decision
    patch_group(namespace, name, {"status": status}, status=True)
    return policy.interval, decision if decision.scale else None


@kopf.daemon(GROUP, VERSION, "processorgroups", id="autoscaler", cancellation_timeout=10.0)
async def autoscaler(body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any) -> None:
    """autoscaler measures and scales one ProcessorGroup until it is deleted or the operator stops."""
    state = State()
    loop = asyncio.get_running_loop()
    while not stopped:
        meta = body["metadata"]
        # The body is a live view: read the current spec each round, as a plain copy for the worker thread.
        args = (str(meta["name"]), str(meta["namespace"]), dict(body.get("spec") or {}), dict(body.get("status") or {}),
                state)
        try:
            interval, scaled = await loop.run_in_executor(_executor, measure, *args)
            if scaled is not None:
                kopf.event(body, type="Normal", reason=scaled.reason, message=scaled.message)
        except Exception:  # an API hiccup must not end the group's autoscaling
            log.exception("autoscaler round failed")
            interval = 5.0
        await stopped.wait(interval)


__all__ = ["State", "autoscaler", "kafka_config", "measure"]
