"""Making partitions fetchable without waiting for librdkafka's fetchers to notice."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import OFFSET_END, KafkaError, KafkaException, TopicPartition

log = logging.getLogger("pygoka.kafka")

#: WAKE_WAIT is how long (s) wake waits for the leaders' answers. Sending the request is what wakes their threads,
#: and an answer that takes longer is queued behind a fetch response on the same connection (or a consumer's long
#: poll, up to fetch.wait.max.ms): waiting for it held the table reader up to 0.23 s before its first record.
WAKE_WAIT = 0.02


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
    2 ms later. The answers are not needed: wake returns after WAKE_WAIT without them. If the request fails, or a
    leader is still unknown then, the partitions are fetched all the same, only later.
    """
    try:
        consumer.offsets_for_times([TopicPartition(tp.topic, tp.partition, OFFSET_END) for tp in partitions],
                                   timeout=WAKE_WAIT)
    except KafkaException as exc:
        if exc.args[0].code() == KafkaError._TIMED_OUT:
            return
        log.info("%s %s, whose fetching may start up to a second late: asking their leaders for their end "
                 "offsets failed: %s", what, ", ".join(f"{tp.topic}/{tp.partition}" for tp in partitions),
                 exc.args[0].str())
