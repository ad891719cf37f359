"""Client configurations for the consumers and producers pygoka creates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pygoka.partitioner import LIBRDKAFKA_PARTITIONER

#: CONSUMER_PROTOCOL is the group.protocol of Kafka 4's consumer groups (KIP-848): incremental, broker-assigned.
CONSUMER_PROTOCOL = "consumer"
#: Config is a librdkafka configuration dictionary.
Config = dict[str, Any]

#: NO_AUTO_CREATE keeps a client's metadata requests from creating topics on a broker with Kafka's stock
#: auto.create.topics.enable=true (librdkafka's producers and admin clients allow it by default): a topic made
#: so has num.partitions partitions and breaks co-partitioning. pygoka creates every topic it needs itself.
NO_AUTO_CREATE: Config = {"allow.auto.create.topics": False}
#: CONNECTION_PREFIXES are the librdkafka settings that say how to reach and authenticate to the brokers
#: (TLS, SASL, sockets, addresses, retries, logging): what an admin client takes of a client's or Secret's settings.
CONNECTION_PREFIXES = ("security.", "sasl.", "ssl.", "ssl_", "enable.ssl.", "enable.sasl.", "client.", "socket.",
                       "broker.", "reconnect.", "retry.", "connections.", "metadata.", "topic.metadata.",
                       "api.version", "https.", "debug", "log_level", "log.connection.close", "resolve.")


def producer_config(brokers: str, overrides: Mapping[str, Any] | None = None) -> Config:
    """producer_config is an idempotent producer placing keys with Goka's FNV-1a partitioner."""
    config: Config = {
        "bootstrap.servers": brokers,
        "partitioner": LIBRDKAFKA_PARTITIONER,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "queue.buffering.max.messages": 1_000_000,
        **NO_AUTO_CREATE,
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
        **NO_AUTO_CREATE,
        # A member learns that its group rebalances from a heartbeat's answer: with librdkafka's 3 s, every
        # instance that joins or leaves stops the others' processing for up to 3 s longer.
        "heartbeat.interval.ms": 500,
    }
    if (overrides or {}).get("group.protocol") == CONSUMER_PROTOCOL:
        # Kafka 4's protocol has the broker assign and time sessions: the classic protocol's settings are
        # refused. Its range assignor keeps co-partitioning: one member gets a number's partitions of all topics.
        for classic in ("partition.assignment.strategy", "heartbeat.interval.ms"):
            del config[classic]
        config["group.remote.assignor"] = "range"
    config.update(overrides or {})
    return config


def incremental(config: Mapping[str, Any]) -> bool:
    """incremental tells whether a group consumer's configuration rebalances incrementally (KIP-848)."""
    return config.get("group.protocol") == CONSUMER_PROTOCOL


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
        **NO_AUTO_CREATE,
    }
    config.update(overrides or {})
    return config


def connection_settings(settings: Mapping[str, Any]) -> Config:
    """connection_settings are the CONNECTION_PREFIXES entries of settings."""
    return {key: value for key, value in settings.items() if key.startswith(CONNECTION_PREFIXES)}


def admin_config(brokers: str, overrides: Mapping[str, Any] | None = None) -> Config:
    """admin_config is an admin client's configuration: brokers and the connection settings of overrides.

    Consumer- and producer-only settings are left out: librdkafka warns about or refuses them on an admin client.
    """
    return {"bootstrap.servers": brokers, **NO_AUTO_CREATE, **connection_settings(overrides or {})}
