"""A group's topics on brokers with Kafka's stock settings (auto.create.topics.enable=true, num.partitions=1).

The suite's broker runs with those settings (scripts/kafka.sh's default): looking a missing topic up by name
from a client allowing auto-creation would create it with one partition and break co-partitioning. Also: topics
existing already, two instances starting at once, and a broker refusing to create topics.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient
from helpers import ROOT, Names, Start, count, wait_until
from kafka_broker import started_broker
from pygoka import Emitter, Input, Persist, Processor, View, codec, define_group
from pygoka.errors import MissingTopicError, NotCopartitionedError, TopicAccessError
from pygoka.graph import Loop, group_table, loop_stream
from pygoka.kafka.config import admin_config
from pygoka.topic_manager import KafkaTopicManager, ensure_topics
from pygoka.topic_plan import group_topics

pytestmark = pytest.mark.kafka


def partition_counts(brokers: str) -> dict[str, int]:
    """partition_counts are the partition counts of all topics, from cluster-wide metadata (creates nothing)."""
    metadata = AdminClient({"bootstrap.servers": brokers}).list_topics(timeout=30)
    return {name: len(topic.partitions) for name, topic in metadata.topics.items() if topic.error is None}


def emit(brokers: str, topic: str, keys: list[str]) -> None:
    with Emitter(brokers, topic, codec.String()) as emitter:
        futures = [emitter.emit(key, "click") for key in keys]
    for future in futures:
        future.result(30)


def test_the_suite_broker_auto_creates_topics_looked_up_by_name(brokers: str, names: Names) -> None:
    """The broker under test has stock settings: a metadata request naming a topic creates it (one partition)."""
    topic = names("auto")
    AdminClient({"bootstrap.servers": brokers}).list_topics(topic, timeout=30)
    wait_until(lambda: partition_counts(brokers).get(topic) == 1, message=f"{topic} auto-created")


def test_describing_missing_topics_creates_none(brokers: str, names: Names) -> None:
    missing = [names("missing-a"), names("missing-b")]
    manager = KafkaTopicManager(admin_config(brokers))
    assert manager.describe(missing) == {}
    assert manager.partitions(missing[0]) is None
    with pytest.raises(MissingTopicError, match=f"emitter topic '{missing[0]}' does not exist"):
        Emitter(brokers, missing[0], codec.String())
    with pytest.raises(MissingTopicError, match=f"table topic '{missing[1]}' does not exist"):
        View(brokers, missing[1], codec.String()).run()
    assert not set(missing) & set(partition_counts(brokers))


def test_a_new_group_gets_its_topics_with_the_input_count(brokers: str, names: Names, state_dir: Path,
                                                          start: Start) -> None:
    """The reported bug: a new group with a 4-partition input failed with '<group>-table has 1 partitions'."""
    clicks, group = names("clicks"), names("new-group")
    KafkaTopicManager(admin_config(brokers)).ensure_stream(clicks, 4)
    graph = define_group(group, Input(clicks, codec.String(), count), Loop(codec.String(), lambda ctx, msg: None),
                         Persist(codec.Int64()))
    proc = Processor(brokers, graph, state_dir=state_dir)
    running = start(proc)
    wait_until(proc.recovered, message="processor recovered")
    counts = partition_counts(brokers)
    assert (counts[group_table(group)], counts[loop_stream(group)]) == (4, 4)
    keys = [f"user-{n}" for n in range(20)]
    emit(brokers, clicks, keys)
    wait_until(lambda: all(proc.get(key) == 1 for key in keys), message="every key counted once")
    running.stop()


def test_a_group_starts_on_topics_that_exist_already(brokers: str, names: Names, state_dir: Path,
                                                     start: Start) -> None:
    clicks, group = names("clicks"), names("existing")
    manager = KafkaTopicManager(admin_config(brokers))
    manager.ensure_stream(clicks, 3)
    manager.ensure_table(group_table(group), 3)
    graph = define_group(group, Input(clicks, codec.String(), count), Persist(codec.Int64()))
    emit(brokers, clicks, ["a", "b", "a"])
    proc = Processor(brokers, graph, state_dir=state_dir)
    running = start(proc)
    wait_until(proc.recovered, message="processor recovered")
    wait_until(lambda: (proc.get("a"), proc.get("b")) == (2, 1), message="counts of the existing input")
    running.stop()
    assert partition_counts(brokers)[group_table(group)] == 3


def test_two_instances_starting_at_once_agree_on_the_topics(brokers: str, names: Names, tmp_path: Path,
                                                            start: Start) -> None:
    """Both instances create the same missing topics at the same moment; one's creation wins, both run."""
    clicks, group = names("clicks"), names("twins")
    KafkaTopicManager(admin_config(brokers)).ensure_stream(clicks, 4)
    plan = group_topics(group, inputs=[clicks], loop=True, persist=True)
    barrier = threading.Barrier(4)
    results: list[int | BaseException] = []

    def setup() -> None:
        manager = KafkaTopicManager(admin_config(brokers))
        barrier.wait()
        try:
            results.append(ensure_topics(manager, plan, default_partitions=2))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=setup) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [4, 4, 4, 4]

    # Two processors of a new group, started together on a new input.
    clicks, group = names("clicks"), names("twins")
    KafkaTopicManager(admin_config(brokers)).ensure_stream(clicks, 4)
    graph = define_group(group, Input(clicks, codec.String(), count), Persist(codec.Int64()))
    procs = [Processor(brokers, graph, state_dir=tmp_path / f"state-{n}") for n in range(2)]
    runs = [start(proc) for proc in procs]
    wait_until(lambda: all(proc.recovered() for proc in procs) and not any(r.error for r in runs),
               message="both instances running")
    assert partition_counts(brokers)[group_table(group)] == 4
    keys = [f"user-{n}" for n in range(40)]
    emit(brokers, clicks, keys)

    for run in runs:
        assert run.error is None
    view = View(brokers, group_table(group), codec.Int64(), state_dir=tmp_path / "view")
    viewing = start(view)
    wait_until(lambda: view.recovered() and all(view.get(key) == 1 for key in keys), timeout=60,
               message="every key counted once by one of the instances")
    viewing.stop()
    for run in runs:
        run.stop()


def test_an_existing_table_with_another_count_is_refused_before_anything_is_created(
        brokers: str, names: Names, state_dir: Path) -> None:
    clicks, group = names("clicks"), names("mismatch")
    manager = KafkaTopicManager(admin_config(brokers))
    manager.ensure_stream(clicks, 4)
    manager.ensure_table(group_table(group), 2)
    graph = define_group(group, Input(clicks, codec.String(), count), Loop(codec.String(), lambda ctx, msg: None),
                         Persist(codec.Int64()))
    with pytest.raises(NotCopartitionedError, match=f"topic '{group_table(group)}' has 2 partitions, expected 4"):
        Processor(brokers, graph, state_dir=state_dir).run()
    assert loop_stream(group) not in partition_counts(brokers)


# -- a broker refusing topic creation ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def refusing_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """refusing_broker is a broker whose create.topic.policy.class.name refuses topics named refused-*."""
    work = tmp_path_factory.mktemp("policy")
    javac = shutil.which("javac")
    assert javac, "javac (a JDK) is needed to build the test's topic policy"
    libs = Path.home() / ".cache" / "pygoka" / "kafka-4.4.0" / "libs"
    subprocess.run(["bash", str(ROOT / "scripts" / "kafka.sh"), "install"], check=True, timeout=600)
    subprocess.run([javac, "-cp", f"{libs}/*", "-d", str(work / "classes"),
                    str(ROOT / "tests" / "kafka_policy" / "RefusePrefixPolicy.java")], check=True, timeout=120)
    properties = work / "policy.properties"
    properties.write_text("create.topic.policy.class.name=RefusePrefixPolicy\npygoka.test.refused.prefix=refused-\n")
    with started_broker(work / "run", {"PYGOKA_KAFKA_EXTRA_PROPERTIES": str(properties),
                                       "PYGOKA_KAFKA_CLASSPATH": str(work / "classes")}) as (address, _kafka):
        yield address


def test_a_refused_creation_names_the_topic_and_the_setting(refusing_broker: str, names: Names,
                                                            state_dir: Path) -> None:
    clicks, group = names("clicks"), names("refused")
    KafkaTopicManager(admin_config(refusing_broker)).ensure_stream(clicks, 2)
    graph = define_group(group, Input(clicks, codec.String(), count), Persist(codec.Int64()))
    with pytest.raises(TopicAccessError) as raised:
        Processor(refusing_broker, graph, state_dir=state_dir).run()
    error = raised.value
    assert error.topic == group_table(group)
    assert error.kafka_error.code() == KafkaError.POLICY_VIOLATION
    assert str(error).startswith(f"cannot create topic '{group_table(group)}': POLICY_VIOLATION")
    assert "create.topic.policy.class.name" in str(error)
    assert "not created here" in str(error)
    assert error.__cause__ is not None
    with pytest.raises(TopicAccessError, match=f"cannot create topic '{names('refused-out')}'"):
        Emitter(refusing_broker, names("refused-out"), codec.String(), partitions=2)
