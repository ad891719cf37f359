"""Operator topic planning: which topics a ProcessorGroup needs and how co-partitioning breaks are reported."""

from __future__ import annotations

from pygoka_operator.model import processor_spec
from pygoka_operator.topics import (
    ObservedTopic,
    admin_config,
    check_topics,
    partition_count,
    plan_topics,
    status_topics,
)


def spec(**extra: object) -> dict[str, object]:
    return processor_spec({"image": "i", "graph": "m:g", "partitions": 6, **extra})


def test_plan_lists_inputs_joins_loop_and_compacted_table() -> None:
    plan = plan_topics("pg", spec(group="clicks", inputs=["a", "b", "a"], joins=["users-table"], loop=True), 6)
    assert [(t.name, t.partitions, t.cleanup_policy, t.role, t.create, t.owned) for t in plan] == [
        ("a", 6, "delete", "input", True, False),
        ("b", 6, "delete", "input", True, False),
        ("users-table", 6, "compact", "join", False, False),
        ("clicks-loop", 6, "delete", "loop", True, True),
        ("clicks-table", 6, "compact", "table", True, True),
    ]


def test_plan_uses_the_name_when_group_is_empty_and_skips_the_table_without_persist() -> None:
    assert [t.name for t in plan_topics("pg", spec(inputs=["x"]), 6)] == ["x", "pg-table"]
    assert [t.name for t in plan_topics("pg", spec(inputs=["x"], persist=False), 6)] == ["x"]


def test_all_present_and_co_partitioned_is_ready() -> None:
    plan = plan_topics("pg", spec(inputs=["x"]), 6)
    check = check_topics(plan, {"x": ObservedTopic(6, "delete"), "pg-table": ObservedTopic(6, "compact")})
    assert check.ready
    assert check.condition() == ("True", "TopicsReady", "all topics exist and are co-partitioned")


def test_missing_topics_are_listed() -> None:
    plan = plan_topics("pg", spec(inputs=["x"], joins=["other-table"]), 6)
    check = check_topics(plan, {"x": ObservedTopic(6)})
    assert [t.name for t in check.missing] == ["other-table", "pg-table"]
    assert check.condition() == ("False", "TopicsMissing", "topics missing: other-table, pg-table")


def test_partition_mismatch_names_topic_and_counts() -> None:
    plan = plan_topics("pg", spec(inputs=["x"]), 6)
    check = check_topics(plan, {"x": ObservedTopic(3, "delete"), "pg-table": ObservedTopic(6, "compact")})
    assert not check.ready
    status, reason, message = check.condition()
    assert (status, reason) == ("False", "PartitionCountMismatch")
    assert "topic 'x' has 3 partitions, expected 6" in message


def test_table_must_be_compacted() -> None:
    plan = plan_topics("pg", spec(), 6)
    check = check_topics(plan, {"pg-table": ObservedTopic(6, "delete")})
    assert check.condition()[1] == "TableNotCompacted"


def test_status_topics_report_existing_topics() -> None:
    plan = plan_topics("pg", spec(inputs=["x"]), 6)
    assert status_topics(plan, {"pg-table": ObservedTopic(6, "compact")}) == [
        {"name": "pg-table", "partitions": 6, "cleanupPolicy": "compact"}]


def test_admin_config_keeps_only_connection_settings() -> None:
    config = admin_config("k:9092", {"sasl.username": "u", "security.protocol": "SASL_SSL", "fetch.max.bytes": "1"})
    assert config == {"bootstrap.servers": "k:9092", "sasl.username": "u", "security.protocol": "SASL_SSL"}


def test_kafka_problem_tells_unreachable_from_other_errors() -> None:
    from confluent_kafka import KafkaError, KafkaException
    from pygoka_operator.topics import kafka_problem

    down = KafkaException(KafkaError(KafkaError._TRANSPORT, "Failed to get metadata: Local: Broker transport failure"))
    assert kafka_problem("k:9092", down) == (
        "KafkaUnreachable", "Kafka unreachable at k:9092: Failed to get metadata: Local: Broker transport failure")
    denied = KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "not authorized"))
    assert kafka_problem("k:9092", denied) == ("KafkaError", "Kafka error at k:9092: KafkaException: not authorized")
    assert kafka_problem("k:9092", RuntimeError("boom")) == ("KafkaError", "Kafka error at k:9092: RuntimeError: boom")


def test_redact_hides_secret_values_in_messages() -> None:
    from pygoka_operator.kube import redact

    settings = {"sasl.username": "bob", "sasl.password": "hunter2-long", "security.protocol": "SASL_SSL",
                "client.id": "app"}
    message = 'Invalid value "hunter2-long" for sasl.password; user bob over SASL_SSL as app'
    assert redact(message, settings) == 'Invalid value "***" for sasl.password; user *** over *** as app'
    assert redact("nothing to hide", {}) == "nothing to hide"


def test_the_table_is_planned_with_spec_table_config() -> None:
    plan = plan_topics("pg", spec(inputs=["x"], tableConfig={"segment.ms": "60000"}), 6)
    (table,) = [t for t in plan if t.role == "table"]
    assert table.config == {"segment.ms": "60000"}


def test_the_partition_count_is_the_spec_s_else_the_existing_topics_else_the_default() -> None:
    unsized = plan_topics("pg", spec(inputs=["x", "y"]), 0)
    assert partition_count(spec(inputs=["x"]), unsized, {"y": ObservedTopic(3)}) == 6
    unset = {key: value for key, value in spec(inputs=["x", "y"]).items() if key != "partitions"}
    assert partition_count(unset, unsized, {"y": ObservedTopic(3), "pg-table": ObservedTopic(5)}) == 3
    assert partition_count(unset, unsized, {}) == 10  # ProcessorOptions.default_partitions
    assert partition_count({**unset, "defaultPartitions": 4}, unsized, {}) == 4
