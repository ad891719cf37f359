"""resume and assign: partitions are made fetchable, then their leaders asked for end offsets, which wakes
librdkafka's fetchers."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import OFFSET_END, KafkaError, KafkaException, TopicPartition
from pygoka.kafka.fetchers import WAKE_WAIT, assign, resume


class Recorder:
    """Recorder is a consumer that records its calls; fail makes offsets_for_times raise."""

    def __init__(self, fail: KafkaError | None = None) -> None:
        self.fail = fail
        self.calls: list[tuple[str, list[tuple[str, int, int]], float | None]] = []

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("resume", _plain(partitions), None))

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("incremental_assign", _plain(partitions), None))

    def offsets_for_times(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.calls.append(("offsets_for_times", _plain(partitions), timeout))
        if self.fail is not None:
            raise KafkaException(self.fail)
        return partitions


def _plain(partitions: list[TopicPartition]) -> list[tuple[str, int, int]]:
    return [(tp.topic, tp.partition, tp.offset) for tp in partitions]


def test_resume_resumes_then_asks_the_leaders_for_the_partitions_end_offsets() -> None:
    consumer = Recorder()
    resume(consumer, [TopicPartition("clicks", 3), TopicPartition("profiles", 3)])
    assert [call[0] for call in consumer.calls] == ["resume", "offsets_for_times"]
    assert [(topic, number) for topic, number, _ in consumer.calls[0][1]] == [("clicks", 3), ("profiles", 3)]
    assert consumer.calls[1][1] == [("clicks", 3, OFFSET_END), ("profiles", 3, OFFSET_END)]
    assert consumer.calls[1][2] == WAKE_WAIT


def test_a_failed_end_offset_request_leaves_the_partitions_resumed_and_says_why(
        caplog: pytest.LogCaptureFixture) -> None:
    consumer = Recorder(fail=KafkaError(KafkaError._TRANSPORT, "leader connection refused"))
    with caplog.at_level(logging.INFO, logger="pygoka.kafka"):
        resume(consumer, [TopicPartition("clicks", 1)])
    assert consumer.calls[0] == ("resume", [("clicks", 1, TopicPartition("clicks", 1).offset)], None)
    assert "leader connection refused" in caplog.text
    assert "resumed clicks/1, whose fetching may start up to a second late" in caplog.text


def test_assign_adds_the_partitions_at_their_offsets_then_asks_their_leaders_for_end_offsets() -> None:
    consumer = Recorder()
    assign(consumer, [TopicPartition("profiles", 0, 17), TopicPartition("profiles", 1, 0)])
    assert consumer.calls == [
        ("incremental_assign", [("profiles", 0, 17), ("profiles", 1, 0)], None),
        ("offsets_for_times", [("profiles", 0, OFFSET_END), ("profiles", 1, OFFSET_END)], WAKE_WAIT),
    ]


def test_a_failed_end_offset_request_leaves_the_partitions_assigned_and_says_why(
        caplog: pytest.LogCaptureFixture) -> None:
    consumer = Recorder(fail=KafkaError(KafkaError._TRANSPORT, "leader connection refused"))
    with caplog.at_level(logging.INFO, logger="pygoka.kafka"):
        assign(consumer, [TopicPartition("profiles", 2, 5)])
    assert consumer.calls[0] == ("incremental_assign", [("profiles", 2, 5)], None)
    assert "assigned profiles/2, whose fetching may start up to a second late" in caplog.text


def test_answers_later_than_the_wait_are_not_waited_for_and_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    consumer = Recorder(fail=KafkaError(KafkaError._TIMED_OUT, "Local: Timed out"))
    with caplog.at_level(logging.DEBUG, logger="pygoka.kafka"):
        resume(consumer, [TopicPartition("clicks", 1)])
    assert [call[0] for call in consumer.calls] == ["resume", "offsets_for_times"]
    assert caplog.text == ""
