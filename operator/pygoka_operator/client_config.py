"""The librdkafka settings of spec.options, checked by librdkafka itself before any pod gets them.

The CRD's schema can only say they are strings; a misspelt key or a value librdkafka cannot parse would only
show as a crash-looping pod. Building a client (no broker is contacted: there is no bootstrap.servers) is how
librdkafka checks them, in a millisecond.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException

#: CLIENTS are the spec.options keys holding librdkafka settings, with the client kind that checks them.
CLIENTS = {"consumerConfig": "consumer", "producerConfig": "producer"}


def _build(kind: str, config: dict[str, str]) -> None:
    from confluent_kafka import Consumer, Producer

    # log_level 0: librdkafka's warnings about the missing bootstrap.servers are no news.
    settings: dict[str, Any] = {**config, "log_level": 0}
    if kind == "consumer":
        Consumer({"group.id": "pygoka-operator-check", **settings}).close()
    else:
        Producer(settings).flush(0)


def client_config_problems(options: Mapping[str, Any]) -> list[str]:
    """client_config_problems are messages naming each spec.options client setting map librdkafka refuses."""
    problems = []
    for key, kind in CLIENTS.items():
        config = options.get(key)
        if not config:
            continue
        try:
            _build(kind, {str(k): str(v) for k, v in dict(config).items()})
        except KafkaException as exc:  # librdkafka's KafkaError names the setting
            error = exc.args[0]
            problems.append(f"spec.options.{key}: {error.str() if isinstance(error, KafkaError) else error}")
        except ValueError as exc:  # confluent-kafka's own refusals (e.g. a setting of the wrong type)
            problems.append(f"spec.options.{key}: {exc}")
    return problems
