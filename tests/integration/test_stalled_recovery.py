"""A table partition held back by a transaction nobody ends: the reader says which one and how to abort it.

A broker restart can drop a commit's markers (KAFKA-20734, docs/guarantees.md), leaving such a transaction
open for good; here a writer that neither commits nor aborts stands in for it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from confluent_kafka import Producer
from helpers import Kafka, Names, Start, wait_until
from pygoka import View, codec, group_table
from pygoka import table_reader as table_reader_module
from pygoka.kafka.config import admin_config
from pygoka.topic_manager import KafkaTopicManager

pytestmark = pytest.mark.kafka
pytest_plugins = ["kafka_broker"]


@pytest.mark.timeout(120)
def test_a_partition_held_back_by_an_open_transaction_is_reported(own_broker: tuple[str, Kafka], names: Names,
                                                                  tmp_path: Path, start: Start,
                                                                  caplog: pytest.LogCaptureFixture,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    brokers, _ = own_broker
    table = group_table(names("stalled"))
    manager = KafkaTopicManager(admin_config(brokers))
    try:
        manager.ensure_table(table, 2)
    finally:
        manager.close()
    writer = Producer({"bootstrap.servers": brokers, "transactional.id": names("writer"),
                       "transaction.timeout.ms": 600_000})
    writer.init_transactions(30)
    writer.begin_transaction()
    writer.produce(table, key=b"committed", value=b"1", partition=1)
    writer.commit_transaction(30)
    writer.begin_transaction()
    writer.produce(table, key=b"open", value=b"2", partition=1)
    writer.flush(30)
    monkeypatch.setattr(table_reader_module, "STALL_SECONDS", 2.0)
    caplog.set_level(logging.INFO, logger="pygoka")

    view = View(brokers, table, codec.Int64(), state_dir=tmp_path / "view")
    start(view)
    # Offset 0 is the committed record, 1 its commit marker: the open transaction starts at 2.
    advice = f"abort --topic {table} --partition 1 --start-offset 2"
    wait_until(lambda: advice in caplog.text, 60, message="the reader to name the open transaction")
    assert not view.recovered()
    assert not [record for record in caplog.records if f"{table}/0 " in record.getMessage()
                and "held back" in record.getMessage()], "partition 0 has no open transaction"

    writer.abort_transaction(30)
    wait_until(view.recovered, 60, message="recovery once the transaction is aborted")
    assert view.get("committed") == 1 and view.get("open") is None
