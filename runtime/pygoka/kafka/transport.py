"""The transport: builders for every Kafka client pygoka uses, swappable by tests (the tester)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, Producer

from pygoka.kafka.config import Config
from pygoka.logs import LIBRDKAFKA_LOGGER

if TYPE_CHECKING:
    from pygoka.topic_manager import TopicManager

#: ConsumerBuilder creates a consumer with confluent_kafka.Consumer's interface.
ConsumerBuilder = Callable[[Config], Any]
#: ProducerBuilder creates a producer with confluent_kafka.Producer's interface.
ProducerBuilder = Callable[[Config], Any]
#: TopicManagerBuilder creates the topic manager from an admin configuration.
TopicManagerBuilder = Callable[[Config], "TopicManager"]


def _logging(config: Config) -> Config:
    """_logging sends librdkafka's log lines to Python logging (pygoka.librdkafka) unless config has a logger."""
    return {"logger": LIBRDKAFKA_LOGGER, **config}


def kafka_consumer(config: Config) -> Any:
    """kafka_consumer is a confluent_kafka.Consumer logging through Python logging."""
    return Consumer(_logging(config))


def kafka_producer(config: Config) -> Any:
    """kafka_producer is a confluent_kafka.Producer logging through Python logging."""
    return Producer(_logging(config))


def _kafka_topic_manager(config: Config) -> TopicManager:
    from pygoka.topic_manager import KafkaTopicManager

    # An admin client hands librdkafka's lines over only when polled; still better than raw lines on stderr.
    return KafkaTopicManager(_logging(config))


@dataclass(frozen=True)
class Transport:
    """Transport bundles the builders of consumers, producers and the topic manager."""

    consumer: ConsumerBuilder = kafka_consumer
    producer: ProducerBuilder = kafka_producer
    topic_manager: TopicManagerBuilder = _kafka_topic_manager


#: KAFKA is the transport of confluent-kafka clients talking to real brokers.
KAFKA = Transport()
