"""Client configurations for the consumers and producers pygoka creates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pygoka.partitioner import LIBRDKAFKA_PARTITIONER

#: Config is a librdkafka configuration dictionary.
Config = dict[str, Any]


def producer_config(brokers: str, overrides: Mapping[str, Any] | None = None) -> Config:
    """producer_config is an idempotent producer placing keys with Goka's FNV-1a partitioner."""
    config: Config = {
        "bootstrap.servers": brokers,
        "partitioner": LIBRDKAFKA_PARTITIONER,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "queue.buffering.max.messages": 1_000_000,
    }
    config.update(overrides or {})
    return config


def transactional_producer_config(brokers: str, transactional_id: str, max_outage: float,
                                  overrides: Mapping[str, Any] | None = None) -> Config:
    """transactional_producer_config is producer_config with a transactional id, for exactly-once processing.

    A record not delivered within the transaction timeout fails the transaction, which is then aborted
    and processed again (librdkafka requires message.timeout.ms <= transaction.timeout.ms).
    """
    config = producer_config(brokers)
    config["transactional.id"] = transactional_id
    config["transaction.timeout.ms"] = 60_000
    config.update(overrides or {})
    config.setdefault("message.timeout.ms", min(int(max_outage * 1000), int(config["transaction.timeout.ms"])))
    return config


def group_consumer_config(brokers: str, group: str, overrides: Mapping[str, Any] | None = None) -> Config:
    """group_consumer_config joins the consumer group of a processor group.

    The range assignor gives every member the same partition numbers of every subscribed topic when
    their partition counts match, which is what co-partitioning needs (B23).
    """
    config: Config = {
        "bootstrap.servers": brokers,
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "range",
        # Records of aborted transactions (an exactly-once writer that failed) are never processed.
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
        "fetch.queue.backoff.ms": 10,
    }
    config.update(overrides or {})
    return config


def reader_config(brokers: str, name: str, overrides: Mapping[str, Any] | None = None) -> Config:
    """reader_config is a consumer that is assigned table partitions directly and never commits."""
    config: Config = {
        "bootstrap.servers": brokers,
        # librdkafka insists on a group id even for consumers that never join a group.
        "group.id": f"pygoka-reader-{name}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # A table written by an exactly-once processor holds aborted updates that must never be applied.
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 100,
        # librdkafka backs off a full second once its fetch queue is full, which halves recovery speed.
        "fetch.queue.backoff.ms": 10,
    }
    config.update(overrides or {})
    return config


def admin_config(brokers: str, overrides: Mapping[str, Any] | None = None) -> Config:
    """admin_config is the configuration of the topic manager's admin client."""
    config: Config = {"bootstrap.servers": brokers}
    # Admin clients reject consumer- and producer-only properties; keep the connection settings.
    for key, value in (overrides or {}).items():
        if key.startswith(("security.", "sasl.", "ssl.", "client.", "socket.")):
            config[key] = value
    return config
