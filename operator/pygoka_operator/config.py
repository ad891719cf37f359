"""The operator's own settings, from environment variables the Helm chart sets."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pygoka

#: RUNTIME_IMAGE is the runtime image of this version (docker/runtime.Dockerfile): the chart's appVersion tag.
RUNTIME_IMAGE = f"ghcr.io/pygoka/pygoka-runtime:{pygoka.__version__}"


@dataclass(frozen=True)
class OperatorConfig:
    """OperatorConfig holds the defaults a resource's spec may leave out."""

    #: brokers are the default Kafka bootstrap servers (PYGOKA_OPERATOR_BROKERS).
    brokers: str = ""
    #: runtime_image runs Views without spec.image (PYGOKA_OPERATOR_RUNTIME_IMAGE).
    runtime_image: str = RUNTIME_IMAGE
    #: interval is the seconds between level-based reconciliations (PYGOKA_OPERATOR_INTERVAL).
    interval: float = 30.0
    #: kafka_timeout bounds each AdminClient call (PYGOKA_OPERATOR_KAFKA_TIMEOUT).
    kafka_timeout: float = 15.0
    #: image_pull_secrets are given to every pod the operator makes (PYGOKA_OPERATOR_IMAGE_PULL_SECRETS, names
    #: separated by commas; each must exist in the resource's namespace).
    image_pull_secrets: tuple[str, ...] = ()
    #: learn_graph learns each group's topology from its image with a Job before anything is created
    #: (PYGOKA_OPERATOR_LEARN_GRAPH; off, the default: the spec's topic fields are taken as they are; the chart: on).
    learn_graph: bool = False
    #: metrics_port serves the operator's metrics (PYGOKA_OPERATOR_METRICS_PORT; 0, the default: none; the chart: 9090).
    metrics_port: int = 0

    @classmethod
    def from_env(cls) -> OperatorConfig:
        """from_env reads PYGOKA_OPERATOR_* variables."""
        default = cls()
        secrets = os.environ.get("PYGOKA_OPERATOR_IMAGE_PULL_SECRETS", "")
        return cls(
            brokers=os.environ.get("PYGOKA_OPERATOR_BROKERS", default.brokers),
            runtime_image=os.environ.get("PYGOKA_OPERATOR_RUNTIME_IMAGE", default.runtime_image),
            interval=float(os.environ.get("PYGOKA_OPERATOR_INTERVAL", default.interval)),
            kafka_timeout=float(os.environ.get("PYGOKA_OPERATOR_KAFKA_TIMEOUT", default.kafka_timeout)),
            image_pull_secrets=tuple(name.strip() for name in secrets.split(",") if name.strip()),
            learn_graph=os.environ.get("PYGOKA_OPERATOR_LEARN_GRAPH", "").strip().lower() in ("1", "true", "yes", "on"),
            metrics_port=int(os.environ.get("PYGOKA_OPERATOR_METRICS_PORT", default.metrics_port)),
        )
