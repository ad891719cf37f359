"""Backends of the single-instance behaviour tests: a real Kafka or pygoka's Tester (in-memory Kafka).

Tests taking the `backend` fixture run twice, on "kafka" (the broker of the `brokers` fixture) and on
"tester" (a pygoka.tester.Tester). Enable the fixture with `pytest_plugins = ["backends"]`.
A backend builds processors, views, emitters, topic managers and plain consumers with its transport,
so a test's code and assertions are the same on both. On the tester, processors and views get the
tester's in-memory storage; the test's `start` fixture runs them exactly as on Kafka, and waits with
conftest.wait_until (the tester's own quiescence waiting is not needed for that).

Tests on both: test_context.py, test_delivery.py, test_partitions.py's B19 and test_reconnect.py's
run()-again test. Kafka-only tests (a
`backend` test parametrised indirectly with ["kafka"], or a test taking `brokers`), because the tester
does not simulate what they need:
- test_delivery.py test_b7_failed_produce_stops_the_processor_without_committing: failed deliveries
  (a broker rejecting a record by max.message.bytes, a client limit on message size);
- the other tests of test_partitions.py, test_reconnect.py and test_static_membership.py: several
  instances in separate processes, broker outages, session timeouts (on_lost), compaction and Kafka
  topic configurations.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pygoka import Emitter, GroupGraph, Processor, View
from pygoka.codec import Codec
from pygoka.kafka.transport import KAFKA, Transport
from pygoka.tester import Tester
from pygoka.topic_manager import TopicManager

#: BACKENDS are the names of the backends, the parameters of the `backend` fixture.
BACKENDS = ["kafka", "tester"]
#: TESTER_PARTITIONS is the count of topics the tester creates on the fly (as the tests' PARTITIONS).
TESTER_PARTITIONS = 2


class Backend:
    """Backend builds pygoka objects and plain clients on one transport: Kafka's or a tester's."""

    def __init__(self, name: str, brokers: str, transport: Transport, tester: Tester | None = None) -> None:
        self.name = name
        self.brokers = brokers
        self.transport = transport
        self.tester = tester

    def processor(self, graph: GroupGraph, **options: Any) -> Processor:
        """processor is a Processor of graph on this backend; options are Processor options."""
        if self.tester is not None:
            # A test may wrap the tester's transport (e.g. to inject failures); it must stay the tester's.
            options = {"transport": self.transport, **options}
            options.setdefault("storage_builder", self.tester.storage_builder())
        return Processor(self.brokers, graph, **options)

    def view(self, table: str, table_codec: Codec, **options: Any) -> View:
        """view is a View of table on this backend."""
        if self.tester is not None:
            options.setdefault("storage_builder", self.tester.storage_builder())
        return View(self.brokers, table, table_codec, transport=self.transport, **options)

    def emitter(self, topic: str, value_codec: Codec, **options: Any) -> Emitter:
        """emitter is an Emitter to topic on this backend."""
        return Emitter(self.brokers, topic, value_codec, transport=self.transport, **options)

    def topic_manager(self) -> TopicManager:
        """topic_manager creates and inspects topics; close it after use."""
        return self.transport.topic_manager({"bootstrap.servers": self.brokers})

    def consumer(self, config: dict[str, Any]) -> Any:
        """consumer is a plain consumer (confluent_kafka.Consumer's interface) with config; close it after use."""
        return self.transport.consumer({"bootstrap.servers": self.brokers, **config})

    def __repr__(self) -> str:
        return f"Backend({self.name})"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """backend is the Kafka of the `brokers` fixture, or a fresh Tester closed after the test."""
    if request.param == "kafka":
        yield Backend("kafka", request.getfixturevalue("brokers"), KAFKA)
        return
    tester = Tester(partitions=TESTER_PARTITIONS)
    try:
        # The brokers string only fills bootstrap.servers, which in-memory clients ignore.
        yield Backend("tester", "tester", tester.transport, tester)
    finally:
        tester.close()
