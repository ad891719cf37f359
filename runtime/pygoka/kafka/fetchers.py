"""Making partitions fetchable without waiting for librdkafka's fetchers to notice."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import OFFSET_END, KafkaException, TopicPartition

log = logging.getLogger("pygoka.kafka")

#: WAKE_TIMEOUT is how long (s) wake waits for the leaders' answers that wake their fetchers.
WAKE_TIMEOUT = 1.0


def resume(consumer: Any, partitions: list[TopicPartition]) -> None:
    """resume resumes fetching partitions, and has their leaders' fetchers take them up at once (see wake)."""
    consumer.resume(partitions)
    wake(consumer, partitions, "resumed")


def assign(consumer: Any, partitions: list[TopicPartition]) -> None:
    """assign adds partitions to consumer's assignment (incrementally), fetched at once (see wake)."""
    consumer.incremental_assign(partitions)
    wake(consumer, partitions, "assigned")


def wake(consumer: Any, partitions: list[TopicPartition], what: str) -> None:
    """wake has the broker threads that lead partitions, just resumed or assigned, start fetching them now.

    librdkafka adds such a partition to its leader's fetch list only when that broker's thread next wakes,
    which an idle one does once a second: a partition resumed after its table recovered waited 0.25-0.86 s for
    its first message, depending on when in that second it was resumed, and a table partition assigned to the
    table reader up to 0.8 s (confluent-kafka-go#630 shows the same). Asking those leaders for the partitions'
    end offsets (one ListOffsets request per leader) wakes their threads now: the first message then came
    2 ms later. If the request fails the partitions are fetched all the same, only later.
    """
    try:
        consumer.offsets_for_times([TopicPartition(tp.topic, tp.partition, OFFSET_END) for tp in partitions],
                                   timeout=WAKE_TIMEOUT)
    except KafkaException as exc:
        log.info("%s %s, whose fetching may start up to a second late: asking their leaders for their end "
                 "offsets failed: %s", what, ", ".join(f"{tp.topic}/{tp.partition}" for tp in partitions),
                 exc.args[0].str())
