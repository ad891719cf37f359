"""The operator reaches a resource's Kafka by the names the resource's pods use, from its own namespace."""

from __future__ import annotations

import pytest
from pygoka_operator.kafka_target import KafkaTarget, qualified, resource_kafka


@pytest.mark.parametrize(("address", "expected"), [
    ("kafka:9092", "kafka.apps.svc:9092"),
    ("kafka", "kafka.apps.svc"),
    ("SASL_SSL://kafka:9093", "SASL_SSL://kafka.apps.svc:9093"),
    ("kafka.streaming:9092", "kafka.streaming:9092"),
    ("kafka.streaming.svc.cluster.local:9092", "kafka.streaming.svc.cluster.local:9092"),
    ("10.89.0.1:9092", "10.89.0.1:9092"),
    ("[fd00::1]:9092", "[fd00::1]:9092"),
    ("[fd00::1]", "[fd00::1]"),
    ("localhost:9092", "localhost:9092"),
])
def test_a_bare_host_name_is_the_service_of_the_resource_namespace(address: str, expected: str) -> None:
    assert qualified(address, "apps") == expected


def test_pods_keep_the_brokers_as_written_and_the_operator_gets_them_qualified() -> None:
    target = KafkaTarget("kafka-0:9092, kafka-1.brokers:9092", "apps", {"security.protocol": "SSL"})
    assert target.brokers == "kafka-0:9092, kafka-1.brokers:9092"
    assert target.operator_brokers == "kafka-0.apps.svc:9092,kafka-1.brokers:9092"
    config = target.admin_config()
    assert config["bootstrap.servers"] == "kafka-0.apps.svc:9092,kafka-1.brokers:9092"
    assert config["security.protocol"] == "SSL"


def test_the_spec_wins_over_the_default_and_no_brokers_at_all_is_refused() -> None:
    spec = {"kafka": {"bootstrapServers": "mine:9092"}}
    assert resource_kafka(None, "apps", spec, "default:9092") == KafkaTarget("mine:9092", "apps", {})
    assert resource_kafka(None, "apps", {}, "default:9092").brokers == "default:9092"
    with pytest.raises(LookupError, match=r"spec\.kafka\.bootstrapServers"):
        resource_kafka(None, "apps", {"kafka": {}}, "")
