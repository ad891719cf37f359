"""The operator's own Prometheus metrics, served by prometheus_client's HTTP server on their own port.

Labels: kind is ProcessorGroup or View, namespace and name the resource's; group, where present, is the
processor group (the label name the pods' pygoka_* metrics use for it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pygoka
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, start_http_server

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

BUILD_INFO = Gauge("pygoka_operator_build_info", "Version of the operator (the value is always 1).", ["version"],
                   registry=REGISTRY)
BUILD_INFO.labels(pygoka.__version__).set(1)
RECONCILES = Counter("pygoka_operator_reconciles", "Reconciliations by outcome: ok, blocked (the spec or the world "
                     "keeps children from being applied, see the resource's conditions) or error (an exception).",
                     ["kind", "result"], registry=REGISTRY)
ERRORS = Counter("pygoka_operator_reconcile_errors", "Reconciliations that raised, by exception type.",
                 ["kind", "error"], registry=REGISTRY)
DURATION = Histogram("pygoka_operator_reconcile_duration_seconds", "Duration of one reconciliation.", ["kind"],
                     buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=REGISTRY)
REPLICAS = Gauge("pygoka_operator_replicas", "Pods of a resource: desired (spec.replicas) and ready.",
                 ["kind", "namespace", "name", "state"], registry=REGISTRY)
LAG = Gauge("pygoka_operator_group_lag", "Consumer lag of a processor group as the autoscaler measured it.",
            ["namespace", "name", "group"], registry=REGISTRY)
DESIRED = Gauge("pygoka_operator_autoscaling_desired_replicas", "Replicas the autoscaler wants.",
                ["namespace", "name"], registry=REGISTRY)
SCALINGS = Counter("pygoka_operator_autoscaling_scalings", "Scaling steps the autoscaler made, by direction.",
                   ["namespace", "name", "direction"], registry=REGISTRY)


class Outcome:
    """Outcome is what a reconciliation reports to reconcile(): ok unless marked blocked (or it raises)."""

    def __init__(self) -> None:
        self.result = "ok"

    def blocked(self, reason: str | None) -> None:
        """blocked marks the reconciliation as blocked when reason (why children were not applied) is set."""
        if reason is not None:
            self.result = "blocked"


@contextmanager
def reconcile(kind: str) -> Iterator[Outcome]:
    """reconcile counts and times one reconciliation of kind; an exception counts as error and is raised on."""
    outcome = Outcome()
    started = time.monotonic()
    try:
        yield outcome
    except Exception as exc:
        outcome.result = "error"
        ERRORS.labels(kind, type(exc).__name__).inc()
        raise
    finally:
        RECONCILES.labels(kind, outcome.result).inc()
        DURATION.labels(kind).observe(time.monotonic() - started)


def replicas(kind: str, namespace: str, name: str, desired: int, ready: int) -> None:
    """replicas sets the desired and ready pods of a resource."""
    REPLICAS.labels(kind, namespace, name, "desired").set(desired)
    REPLICAS.labels(kind, namespace, name, "ready").set(ready)


def forget(kind: str, namespace: str, name: str) -> None:
    """forget drops the series of a deleted resource, so it does not linger as stale gauges."""
    for state in ("desired", "ready"):
        _remove(REPLICAS, kind, namespace, name, state)
    if kind == "ProcessorGroup":
        _remove(DESIRED, namespace, name)
        for labels in [s.labels for m in LAG.collect() for s in m.samples
                       if (s.labels["namespace"], s.labels["name"]) == (namespace, name)]:
            _remove(LAG, labels["namespace"], labels["name"], labels["group"])


def _remove(metric: Gauge, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        pass  # never set for this resource


def serve(port: int) -> None:
    """serve starts prometheus_client's HTTP server (Prometheus text or OpenMetrics, as the scraper asks)."""
    start_http_server(port, registry=REGISTRY)
