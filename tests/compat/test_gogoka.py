"""Byte compatibility with a real Go Goka program (section "Compatibility with Go Goka").

The program in tests/compat/gogoka uses lovoo/goka and IBM/sarama from the Go module proxy; it is built
once per session (tests/compat/gobuild.py). Topics are created here, from Python, so neither side
creates a topic with settings the other did not expect.
"""

from __future__ import annotations

import json
import random
import subprocess
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from compat.gobuild import build
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from helpers import Names, Start, wait_until
from pygoka import Context, Emitter, Input, Persist, Processor, PygokaError, View, codec, define_group, group_table
from pygoka.kafka.config import admin_config
from pygoka.partitioner import partition_for
from pygoka.topic_manager import KafkaTopicManager

PARTITION_COUNTS = (1, 3, 8, 10, 20, 32)
GO_TIMEOUT = 180.0
#: CONSUMER_CONFIG makes the single pygoka processor of a test leave its group quickly.
CONSUMER_CONFIG = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}

#: TEXTS are String codec values (and keys) beyond ASCII: umlauts, CJK, emoji, RTL text and a NUL.
TEXTS = {
    "grüße": "Grüße aus Köln \u2013 ½ €",
    "東京": "こんにちは世界",
    "emoji-🚀": "🚀🌍 launch ✓",
    "שלום": "مرحبا بالعالم",
    "plain": "tab\tnewline\nnul\x00end",
}

Record = tuple[int, bytes | None, bytes | None]


@pytest.fixture(scope="session")
def gogoka() -> Path:
    """gogoka is the built Go Goka program; building it is part of the test run (CI starts empty)."""
    return build()


def run_go(binary: Path, *args: str, stdin: Any = None, timeout: float = GO_TIMEOUT) -> Any:
    """run_go runs a gogoka subcommand with JSON on stdin and returns its JSON output; it fails on errors."""
    try:
        result = subprocess.run([str(binary), *args], input=json.dumps(stdin), capture_output=True, text=True,
                                timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"gogoka {' '.join(args)} did not finish within {timeout}s; stderr:\n{exc.stderr!r}")
    if result.returncode != 0:
        pytest.fail(f"gogoka {' '.join(args)} exited {result.returncode}; stderr:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout)


def create_topics(brokers: str, *, streams: Iterable[str] = (), tables: Iterable[str] = (),
                  partitions: int) -> None:
    """create_topics creates streams (delete policy) and tables (compacted) with partitions each."""
    manager = KafkaTopicManager(admin_config(brokers))
    try:
        for topic in streams:
            manager.ensure_stream(topic, partitions)
        for topic in tables:
            manager.ensure_table(topic, partitions)
    finally:
        manager.close()


def read_topic(brokers: str, topic: str, partitions: int, timeout: float = 60.0) -> list[Record]:
    """read_topic returns (partition, key, value) of every record in topic, up to its current end."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": f"compat-reader-{topic}",
                         "enable.auto.commit": False, "enable.partition.eof": False})
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}
        pending = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in pending])
        records: list[Record] = []

        def drained() -> bool:
            for message in consumer.consume(500, timeout=0.2):
                if message.error() is not None:
                    pytest.fail(f"reading {topic}: {message.error()}")
                partition, offset = message.partition(), message.offset()
                assert partition is not None and offset is not None
                records.append((partition, message.key(), message.value()))
                if offset + 1 >= ends[partition]:
                    pending.discard(partition)
            return not pending

        wait_until(drained, timeout, interval=0, message=f"reading {topic} to its end {ends}")
        return records
    finally:
        consumer.close()


def latest_by_key(records: list[Record]) -> dict[bytes, tuple[int, bytes | None]]:
    """latest_by_key maps each key to the partition and value of its last record (what a view sees)."""
    latest: dict[bytes, tuple[int, bytes | None]] = {}
    for partition, key, value in records:
        assert key is not None, "a record without key"
        latest[key] = (partition, value)
    return latest


def go_partitions(binary: Path, keys: list[bytes], counts: Iterable[int]) -> dict[int, list[int]]:
    """go_partitions is Sarama's NewHashPartitioner placement of keys for each partition count."""
    counts = list(counts)
    placed = run_go(binary, "partition", "-n", ",".join(map(str, counts)), stdin=[k.hex() for k in keys])
    return {n: placed[str(n)] for n in counts}


def assert_placed_like_go(binary: Path, records: list[Record], partitions: int) -> None:
    """assert_placed_like_go checks every record of a raw topic sits where Go and pygoka place its key."""
    keys = sorted({key for _, key, _ in records if key is not None})
    go = dict(zip(keys, go_partitions(binary, keys, [partitions])[partitions], strict=True))
    misplaced = [(key, partition, go[key], partition_for(key, partitions))
                 for partition, key, _ in records if key is not None
                 and not partition == go[key] == partition_for(key, partitions)]
    assert not misplaced, f"(key, actual, go, pygoka) of misplaced records: {misplaced[:10]}"


def clicks(seed: int, users: int = 12, total: int = 60) -> list[str]:
    """clicks is a shuffled click stream: every user clicks at least once, some many times."""
    rng = random.Random(seed)
    keys = [f"user-{i}" for i in range(users)] + [f"user-{rng.randrange(users)}" for _ in range(total - users)]
    rng.shuffle(keys)
    return keys


def click_counter(group: str, topic: str) -> Any:
    """click_counter is pygoka's version of Goka's click-count example: Input(String) -> Persist(Int64)."""

    def count(ctx: Context, _message: Any) -> None:
        ctx.set_value((ctx.value() or 0) + 1)

    return define_group(group, Input(topic, codec.String(), count), Persist(codec.Int64()))


def run_pygoka_counter(brokers: str, group: str, topic: str, expected: Counter[str], state_dir: Path,
                       start: Start) -> None:
    """run_pygoka_counter counts topic with pygoka until every key has its expected count, then stops."""
    processor = Processor(brokers, click_counter(group, topic), state_dir=state_dir,
                          consumer_config=CONSUMER_CONFIG)
    running = start(processor)

    def counted() -> bool:
        if running.error is not None:
            raise running.error
        try:
            return all(processor.get(key) == n for key, n in expected.items())
        except PygokaError:  # not running yet, or the partitions are not assigned yet
            return False

    wait_until(counted, 90, interval=0.1, message=f"pygoka counts of {topic} to reach {dict(expected)}")
    running.stop()


def test_partition_placement_matches_sarama_and_librdkafka(brokers: str, names: Names,
                                                           gogoka: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    keys = list(dict.fromkeys(
        # Raw bytes (all 256 values, so the hash sign and high bytes vary) and UTF-8 text keys.
        rng.randbytes(rng.randint(1, 24)) if i % 2 else "".join(
            chr(rng.choice((rng.randint(0x20, 0x7E), rng.randint(0xA0, 0x2FFF), rng.randint(0x1F300, 0x1F64F))))
            for _ in range(rng.randint(1, 12))).encode("utf-8")
        for i in range(1000)))
    assert len(keys) > 990
    go = go_partitions(gogoka, keys, PARTITION_COUNTS)

    for count in PARTITION_COUNTS:
        ours = [partition_for(key, count) for key in keys]
        assert ours == go[count], f"seed {seed}: pygoka and Sarama disagree for {count} partitions"
        topic = names(f"placement-{count}")
        with Emitter(brokers, topic, codec.Bytes(), partitions=count) as emitter:
            futures = [emitter.emit(key, key) for key in keys]
            emitter.flush(30)
            delivered = [future.result(30).partition for future in futures]
        assert delivered == ours, f"seed {seed}: librdkafka fnv1a placed keys elsewhere ({count} partitions)"

        stored = {key: partition for partition, key, _ in read_topic(brokers, topic, count)}
        assert stored == dict(zip(keys, ours, strict=True)), f"seed {seed}: read-back placement ({count})"
        if count > 1:
            assert len(set(ours)) > 1, "keys must spread over partitions for the check to mean anything"


def test_go_emitter_feeds_pygoka_processor(brokers: str, names: Names, gogoka: Path,
                                          state_dir: Path, start: Start) -> None:
    topic, group = names("go-clicks"), names("py-counter")
    create_topics(brokers, streams=[topic], tables=[group_table(group)], partitions=8)
    stream = clicks(seed=2)
    assert run_go(gogoka, "emit", "-brokers", brokers, "-topic", topic,
                  stdin=[[key, "click"] for key in stream]) == {"emitted": len(stream)}

    raw = read_topic(brokers, topic, 8)
    assert sorted(key for _, key, _ in raw if key is not None) == sorted(key.encode() for key in stream)
    assert {value for _, _, value in raw} == {b"click"}
    assert_placed_like_go(gogoka, raw, 8)

    expected = Counter(stream)
    run_pygoka_counter(brokers, group, topic, expected, state_dir, start)
    table = latest_by_key(read_topic(brokers, group_table(group), 8))
    assert {key.decode(): value for key, (_, value) in table.items()} == {
        key: str(n).encode("ascii") for key, n in expected.items()}


def test_go_view_reads_pygoka_group_table(brokers: str, names: Names, gogoka: Path,
                                          state_dir: Path, tmp_path: Path, start: Start) -> None:
    topic, group = names("py-clicks"), names("py-counter")
    create_topics(brokers, streams=[topic], tables=[group_table(group)], partitions=10)
    stream = clicks(seed=3)
    with Emitter(brokers, topic, codec.String()) as emitter:
        for key in stream:
            emitter.emit(key, "click")
    expected = Counter(stream)
    run_pygoka_counter(brokers, group, topic, expected, state_dir, start)

    raw = read_topic(brokers, group_table(group), 10)
    assert_placed_like_go(gogoka, raw, 10)
    assert {key.decode(): value for key, (_, value) in latest_by_key(raw).items()} == {
        key: str(n).encode("ascii") for key, n in expected.items()}, "Int64 values must be ASCII decimal"

    keys = [*expected, "never-clicked"]
    seen = run_go(gogoka, "view", "-brokers", brokers, "-table", group_table(group), "-codec", "int64",
                  "-state", str(tmp_path / "go-view"), stdin=keys)
    assert seen == {"values": {**expected, "never-clicked": None}}


def test_pygoka_view_reads_go_processor_table(brokers: str, names: Names, gogoka: Path,
                                              state_dir: Path, tmp_path: Path) -> None:
    topic, group = names("py-clicks"), names("go-counter")
    create_topics(brokers, streams=[topic], tables=[group_table(group)], partitions=8)
    stream = clicks(seed=4)
    with Emitter(brokers, topic, codec.String()) as emitter:
        for key in stream:
            emitter.emit(key, "click")
    expected = Counter(stream)

    result = run_go(gogoka, "count", "-brokers", brokers, "-group", group, "-input", topic,
                    "-until", str(len(stream)), "-state", str(tmp_path / "go-processor"))
    assert result == {"processed": len(stream), "counts": dict(expected)}

    raw = read_topic(brokers, group_table(group), 8)
    assert_placed_like_go(gogoka, raw, 8)
    assert {key.decode(): value for key, (_, value) in latest_by_key(raw).items()} == {
        key: str(n).encode("ascii") for key, n in expected.items()}, "Go's Int64 bytes are ASCII decimal"

    view = View(brokers, group_table(group), codec.Int64(), state_dir=state_dir)
    view.start()
    try:
        assert view.wait_recovered(60), "pygoka view did not recover the Go group table"
        assert {key: view.get(key) for key in expected} == dict(expected)
        assert view.get("never-clicked") is None
    finally:
        view.stop()


def test_string_values_round_trip_both_ways(brokers: str, names: Names, gogoka: Path,
                                            state_dir: Path, tmp_path: Path) -> None:
    py_table, go_table = names("py-texts"), names("go-texts")
    create_topics(brokers, tables=[py_table, go_table], partitions=4)
    utf8 = {key.encode("utf-8"): value.encode("utf-8") for key, value in TEXTS.items()}

    # pygoka -> Go: pygoka's String bytes, read back by goka's codec.String.
    with Emitter(brokers, py_table, codec.String()) as emitter:
        for key, value in TEXTS.items():
            emitter.emit_sync(key, value)
    raw = read_topic(brokers, py_table, 4)
    assert {key: value for key, (_, value) in latest_by_key(raw).items()} == utf8
    assert_placed_like_go(gogoka, raw, 4)
    seen = run_go(gogoka, "view", "-brokers", brokers, "-table", py_table, "-codec", "string",
                  "-state", str(tmp_path / "go-view"), stdin=list(TEXTS))
    assert seen == {"values": TEXTS}

    # Go -> pygoka: goka's codec.String bytes, read back by pygoka's String codec.
    assert run_go(gogoka, "emit", "-brokers", brokers, "-topic", go_table,
                  stdin=[[key, value] for key, value in TEXTS.items()]) == {"emitted": len(TEXTS)}
    raw = read_topic(brokers, go_table, 4)
    assert {key: value for key, (_, value) in latest_by_key(raw).items()} == utf8
    assert_placed_like_go(gogoka, raw, 4)
    view = View(brokers, go_table, codec.String(), state_dir=state_dir)
    view.start()
    try:
        assert view.wait_recovered(60), "pygoka view did not recover the Go-written table"
        assert {key: view.get(key) for key in TEXTS} == TEXTS
    finally:
        view.stop()
