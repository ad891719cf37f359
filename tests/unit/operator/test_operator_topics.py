"""Operator topic planning: which topics a ProcessorGroup needs and how co-partitioning breaks are reported."""

from __future__ import annotations

from confluent_kafka import KafkaError
from pygoka.errors import TopicAccessError
from pygoka.kafka.admin import access_error
from pygoka.kafka.config import admin_config
from pygoka.topic_plan import TopicInfo, check_topics
from pygoka_operator.model import processor_spec
from pygoka_operator.topics import (
    condition,
    consumed_topics,
    kafka_problem,
    plan_topics,
    spec_partitions,
    status_topics,
)


def spec(**extra: object) -> dict[str, object]:
    return processor_spec({"image": "i", "graph": "m:g", "partitions": 6, **extra})


def test_plan_lists_inputs_loop_joins_and_compacted_table() -> None:
    plan = plan_topics("pg", spec(group="clicks", inputs=["a", "b", "a"], joins=["users-table"], loop=True))
    assert [(t.name, t.config["cleanup.policy"], t.role, t.creatable, t.owned) for t in plan] == [
        ("a", "delete", "input", True, False),
        ("b", "delete", "input", True, False),
        ("clicks-loop", "delete", "loop", True, True),
        ("users-table", "compact", "join", False, False),
        ("clicks-table", "compact", "table", True, True),
    ]
    assert consumed_topics("pg", spec(group="clicks", inputs=["a"], joins=["users-table"], loop=True)) == [
        "a", "clicks-loop"]


def test_plan_uses_the_name_when_group_is_empty_and_skips_the_table_without_persist() -> None:
    assert [t.name for t in plan_topics("pg", spec(inputs=["x"]))] == ["x", "pg-table"]
    assert [t.name for t in plan_topics("pg", spec(inputs=["x"], persist=False))] == ["x"]


def test_all_present_and_co_partitioned_is_ready() -> None:
    plan = plan_topics("pg", spec(inputs=["x"]))
    check = check_topics(plan, {"x": TopicInfo(6, "delete"), "pg-table": TopicInfo(6, "compact")}, 6)
    assert check.ready
    assert condition(check) == ("True", "TopicsReady", "all topics exist and are co-partitioned")


def test_missing_topics_are_listed() -> None:
    plan = plan_topics("pg", spec(inputs=["x"], joins=["other-table"]))
    check = check_topics(plan, {"x": TopicInfo(6)}, 6)
    assert [t.name for t in check.missing] == ["other-table", "pg-table"]
    assert condition(check) == ("False", "TopicsMissing", "topics missing: other-table, pg-table")


def test_partition_mismatch_names_topic_and_counts() -> None:
    plan = plan_topics("pg", spec(inputs=["x"]))
    check = check_topics(plan, {"x": TopicInfo(3, "delete"), "pg-table": TopicInfo(6, "compact")}, 6)
    assert not check.ready
    status, reason, message = condition(check)
    assert (status, reason) == ("False", "PartitionCountMismatch")
    assert "topic 'x' has 3 partitions, expected 6" in message


def test_table_must_be_compacted() -> None:
    plan = plan_topics("pg", spec())
    check = check_topics(plan, {"pg-table": TopicInfo(6, "delete")}, 6)
    assert condition(check)[1] == "TableNotCompacted"


def test_status_topics_report_existing_topics() -> None:
    plan = plan_topics("pg", spec(inputs=["x"]))
    assert status_topics(plan, {"pg-table": TopicInfo(6, "compact")}) == [
        {"name": "pg-table", "partitions": 6, "cleanupPolicy": "compact"}]


def test_admin_config_keeps_only_connection_settings() -> None:
    config = admin_config("k:9092", {"sasl.username": "u", "security.protocol": "SASL_SSL", "fetch.max.bytes": "1",
                                     "ssl.ca.location": "/ca", "enable.ssl.certificate.verification": "false",
                                     "socket.keepalive.enable": "true", "transactional.id": "t"})
    assert config == {"bootstrap.servers": "k:9092", "allow.auto.create.topics": False, "sasl.username": "u",
                      "security.protocol": "SASL_SSL", "ssl.ca.location": "/ca",
                      "enable.ssl.certificate.verification": "false", "socket.keepalive.enable": "true"}


def test_kafka_problem_maps_error_types_to_reasons() -> None:
    def error(code: int, text: str, action: str = "describe") -> TopicAccessError:
        return access_error(action, "clicks", KafkaError(code, text))

    down = error(KafkaError._TRANSPORT, "Local: Broker transport failure")
    assert kafka_problem("k:9092", down) == (
        "KafkaUnreachable",
        "Kafka unreachable at k:9092: cannot describe topic 'clicks': _TRANSPORT: Local: Broker transport failure")
    denied = error(KafkaError.TOPIC_AUTHORIZATION_FAILED, "not authorized", "create")
    reason, message = kafka_problem("k:9092", denied)
    assert reason == "KafkaAuthorizationFailed"
    assert "the principal needs the Create ACL on topic 'clicks' or on the cluster" in message
    wrong = error(KafkaError._AUTHENTICATION, "SASL authentication error: Authentication failed")
    assert kafka_problem("k:9092", wrong)[0] == "KafkaAuthenticationFailed"
    # A failed handshake only shows as a time-out of the request; the client's last error names it.
    hidden = access_error("describe", "clicks", KafkaError(KafkaError._TIMED_OUT, "Failed while waiting"),
                          KafkaError(KafkaError._SSL, "SSL handshake failed: certificate verify failed"))
    assert kafka_problem("k:9092", hidden) == ("KafkaAuthenticationFailed", (
        "Kafka error at k:9092: cannot describe topic 'clicks': _TIMED_OUT: Failed while waiting (the client's last "
        "error: _SSL: SSL handshake failed: certificate verify failed) (check the certificate authority, "
        "sasl.username and sasl.password)"))
    other = error(KafkaError.POLICY_VIOLATION, "no", "create")
    assert kafka_problem("k:9092", other)[0] == "KafkaError"


def test_redact_hides_secret_values_in_messages() -> None:
    from pygoka_operator.kube import redact

    settings = {"sasl.username": "bob", "sasl.password": "hunter2-long", "security.protocol": "SASL_SSL",
                "client.id": "app"}
    message = 'Invalid value "hunter2-long" for sasl.password; user bob over SASL_SSL as app'
    assert redact(message, settings) == 'Invalid value "***" for sasl.password; user *** over *** as app'
    assert redact("nothing to hide", {}) == "nothing to hide"


def test_the_table_is_planned_with_spec_table_config() -> None:
    plan = plan_topics("pg", spec(inputs=["x"], tableConfig={"segment.ms": "60000"}))
    (table,) = [t for t in plan if t.role == "table"]
    assert table.config == {"segment.ms": "60000", "cleanup.policy": "compact"}


def test_the_partition_count_is_the_spec_s_else_the_existing_topics_else_the_default() -> None:
    plan = plan_topics("pg", spec(inputs=["x", "y"]))
    assert spec_partitions(spec(inputs=["x"]), plan, {"y": TopicInfo(3)}) == 6
    unset = {key: value for key, value in spec(inputs=["x", "y"]).items() if key != "partitions"}
    assert spec_partitions(unset, plan, {"y": TopicInfo(3), "pg-table": TopicInfo(5)}) == 3
    assert spec_partitions(unset, plan, {}) == 10  # ProcessorOptions.default_partitions
    assert spec_partitions({**unset, "defaultPartitions": 4}, plan, {}) == 4
