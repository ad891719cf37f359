"""The transport: builders for every Kafka client pygoka uses, swappable by tests (the tester)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, Producer

from pygoka.kafka.config import Config

if TYPE_CHECKING:
    from pygoka.topic_manager import TopicManager

#: ConsumerBuilder creates a consumer with confluent_kafka.Consumer's interface.
ConsumerBuilder = Callable[[Config], Any]
#: ProducerBuilder creates a producer with confluent_kafka.Producer's interface.
ProducerBuilder = Callable[[Config], Any]
#: TopicManagerBuilder creates the topic manager from an admin configuration.
TopicManagerBuilder = Callable[[Config], "TopicManager"]


def _kafka_topic_manager(config: Config) -> TopicManager:
    from pygoka.topic_manager import KafkaTopicManager

    return KafkaTopicManager(config)


@dataclass(frozen=True)
class Transport:
    """Transport bundles the builders of consumers, producers and the topic manager."""

    consumer: ConsumerBuilder = Consumer
    producer: ProducerBuilder = Producer
    topic_manager: TopicManagerBuilder = _kafka_topic_manager


#: KAFKA is the transport of confluent-kafka clients talking to real brokers.
KAFKA = Transport()
