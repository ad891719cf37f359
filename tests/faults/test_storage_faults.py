"""Local storage faults: a partition's RocksDB store deleted or damaged while the processor was stopped.

The table topic is the source of truth (docs/storage.md). A store that is missing or cannot be
opened is rebuilt from it; a store whose damage only shows when a block is read (a checksum mismatch)
makes reads fail with a StorageError naming the path, topic and partition, never a wrong or partial
answer, and is rebuilt when it is opened again.

To tell a rebuilt partition from one that survived, every partition's store gets a local-only
"marker" value while the processor is stopped: no table record has it, so it is gone exactly from the
stores that were rebuilt (or rolled back) from the table topic, and still there in the others.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, Names, Start, count, key_on, wait_until
from pygoka import (
    Emitter,
    Input,
    Persist,
    ProcessingError,
    Processor,
    StorageError,
    codec,
    define_group,
    group_table,
)
from pygoka.graph import GroupGraph
from pygoka.kafka.config import admin_config
from pygoka.partitioner import partition_for
from pygoka.storage.rocksdb import RocksDBStorageBuilder
from pygoka.topic_manager import KafkaTopicManager
from rocksdict import AccessType, Options, Rdict

PARTITIONS = 4
#: DAMAGED is the partition whose store the tests damage.
DAMAGED = 1
INT64 = codec.Int64()
MARKER_VALUE = 1000
_META = "pygoka-meta"
_OFFSET_KEY = b"table-offset"


# -- helpers ----------------------------------------------------------------------------------------


#: KEYS are three keys on every partition.
KEYS = [key_on(p, PARTITIONS, "user-", i) for p in range(PARTITIONS) for i in range(3)]
MARKERS = {p: key_on(p, PARTITIONS, "marker-") for p in range(PARTITIONS)}


class Counting:
    """Counting is a counting group over a fresh input topic, the truth of what was emitted, and its state."""

    def __init__(self, brokers: str, names: Names, state_dir: Path) -> None:
        self.brokers = brokers
        self.clicks = names("clicks")
        self.graph: GroupGraph = define_group(names("storage"), Input(self.clicks, codec.String(), count),
                                              Persist(INT64))
        self.table = group_table(self.graph.group)
        self.state_dir = state_dir
        self.truth: Counter[str] = Counter()
        topics = KafkaTopicManager(admin_config(brokers))
        try:
            topics.ensure_stream(self.clicks, PARTITIONS)
        finally:
            topics.close()

    def processor(self, **options: Any) -> Processor:
        return Processor(self.brokers, self.graph, state_dir=self.state_dir, commit_interval=0.2, **options)

    def store_path(self, partition: int) -> Path:
        return RocksDBStorageBuilder(self.state_dir).path(self.table, partition)

    def feed(self, rounds: int) -> None:
        """feed emits, `rounds` times, one to three clicks per key (counts differ by key) and waits for Kafka."""
        records = [key for _ in range(rounds) for i, key in enumerate(KEYS) for _ in range(i % 3 + 1)]
        with Emitter(self.brokers, self.clicks, codec.String()) as emitter:
            futures = [emitter.emit(key, "click") for key in records]
        for future in futures:
            future.result(30)
        self.truth.update(records)

    def counted(self, processor: Processor) -> bool:
        """counted tells whether processor holds the true count of every key."""
        return processor.recovered() and all(processor.get(k) == self.truth[k] for k in KEYS)

    def mark_stores(self) -> None:
        """mark_stores writes a local-only marker value into every partition's store (the processor is stopped)."""
        builder = RocksDBStorageBuilder(self.state_dir)
        for partition, key in MARKERS.items():
            storage = builder(self.table, partition)
            try:
                storage.write([(key.encode(), INT64.encode(MARKER_VALUE))], None)
            finally:
                storage.close()

    def markers(self, processor: Processor) -> dict[int, Any]:
        return {partition: processor.get(key) for partition, key in MARKERS.items()}


def first_run(counting: Counting, start: Start) -> None:
    """first_run counts two rounds of clicks, stops cleanly and marks every partition's store."""
    processor = counting.processor()
    running = start(processor)
    wait_until(processor.recovered, timeout=60, message="first run recovered")
    counting.feed(2)
    wait_until(lambda: counting.counted(processor), timeout=60, message="counts of the first run")
    running.stop()
    counting.mark_stores()


def storage_error_in(error: BaseException | None) -> StorageError | None:
    """storage_error_in is the StorageError error was raised for, following its causes."""
    while error is not None:
        if isinstance(error, StorageError):
            return error
        error = error.__cause__ or error.__context__
    return None


def data_files(path: Path) -> list[Path]:
    """data_files are the SST files of a store's table data (not of its offset), read without opening it for writing."""
    db = Rdict(str(path), Options(raw_mode=True), column_families={_META: Options(raw_mode=True)},
               access_type=AccessType.read_only())
    try:
        files = [path / str(f["name"]).lstrip("/") for f in db.live_files()
                 if (f["start_key"], f["end_key"]) != (_OFFSET_KEY, _OFFSET_KEY)]
    finally:
        db.close()
    assert files, f"no table data SST files in {path}"
    return files


def corrupt_first_block(sst: Path) -> None:
    """corrupt_first_block flips bytes of the first data block, keeping the footer: the file still opens."""
    data = bytearray(sst.read_bytes())
    for i in range(8, 24):
        data[i] ^= 0xFF
    sst.write_bytes(bytes(data))


def manifest(path: Path) -> Path:
    (found,) = path.glob("MANIFEST-*")
    return found


def ssts(path: Path) -> list[Path]:
    found = sorted(path.glob("*.sst"))
    assert found, f"no SST files in {path} to damage"
    return found


def overwrite(file: Path) -> None:
    file.write_bytes(random.Random(file.name).randbytes(file.stat().st_size))


def truncate_half(file: Path) -> None:
    os.truncate(file, file.stat().st_size // 2)


def garbage_current(path: Path) -> None:
    (path / "CURRENT").write_bytes(b"\x00\x17not a manifest name")


def truncate_manifest(path: Path) -> None:
    truncate_half(manifest(path))


def overwrite_manifest(path: Path) -> None:
    overwrite(manifest(path))


def delete_manifest(path: Path) -> None:
    manifest(path).unlink()


def truncate_ssts(path: Path) -> None:
    for sst in ssts(path):
        truncate_half(sst)


def overwrite_ssts(path: Path) -> None:
    for sst in ssts(path):
        overwrite(sst)


def delete_ssts(path: Path) -> None:
    for sst in ssts(path):
        sst.unlink()


#: DAMAGES maps a name to what it does to a store's directory, and whether opening the store then fails
#: (logged, and the store rebuilt empty); None: either that or it opens as an older consistent state.
DAMAGES: dict[str, tuple[Callable[[Path], None], bool | None]] = {
    "directory-deleted": (shutil.rmtree, False),
    "garbage-in-CURRENT": (garbage_current, True),
    "MANIFEST-truncated": (truncate_manifest, None),
    "MANIFEST-garbage": (overwrite_manifest, True),
    "MANIFEST-deleted": (delete_manifest, True),
    "SSTs-truncated": (truncate_ssts, True),
    "SSTs-overwritten": (overwrite_ssts, True),
    "SSTs-deleted": (delete_ssts, True),
}


# -- a damaged store is rebuilt from the table topic ------------------------------------------------------


@pytest.mark.kafka
@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_partition_store_is_rebuilt_from_the_table_topic(
        damage: str, brokers: str, names: Names, state_dir: Path, start: Start,
        caplog: pytest.LogCaptureFixture) -> None:
    counting = Counting(brokers, names, state_dir)
    first_run(counting, start)
    damaged = counting.store_path(DAMAGED)
    harm, fails_to_open = DAMAGES[damage]
    harm(damaged)

    processor = counting.processor()
    with caplog.at_level(logging.WARNING, logger="pygoka.storage"):
        running = start(processor)
        wait_until(processor.recovered, timeout=60, message="restart recovered")
    # What the damaged partition held came back from the table topic...
    assert all(processor.get(k) == counting.truth[k] for k in KEYS)
    counting.feed(1)
    # ...and counting goes on from it, on every partition.
    wait_until(lambda: counting.counted(processor), timeout=60, message="counts after the restart")
    # Only the damaged store lost its local-only marker: it alone was rebuilt from the topic.
    assert counting.markers(processor) == {p: None if p == DAMAGED else MARKER_VALUE for p in range(PARTITIONS)}
    running.stop()
    rebuilt = [r.getMessage() for r in caplog.records if "rebuilding it from the table topic" in r.getMessage()]
    if fails_to_open:
        assert len(rebuilt) == 1 and f"{damaged} cannot be opened" in rebuilt[0], rebuilt
    elif fails_to_open is False:
        assert rebuilt == []


@pytest.mark.kafka
def test_stale_lock_files_of_a_killed_process_do_not_block_or_rebuild_the_store(
        brokers: str, names: Names, state_dir: Path, start: Start, caplog: pytest.LogCaptureFixture) -> None:
    counting = Counting(brokers, names, state_dir)
    first_run(counting, start)
    # A process opens the partition's store (taking pygoka's flock and RocksDB's LOCK) and is SIGKILLed.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from pygoka.storage.rocksdb import RocksDBStorageBuilder\n"
         "storage = RocksDBStorageBuilder(sys.argv[1])(sys.argv[2], int(sys.argv[3]))\n"
         "print('open', flush=True)\n"
         "time.sleep(600)\n", str(state_dir), counting.table, str(DAMAGED)],
        stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"open\n"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    damaged = counting.store_path(DAMAGED)
    assert (damaged / "LOCK").exists() and damaged.with_name(f"{DAMAGED}.lock").exists()

    processor = counting.processor()
    with caplog.at_level(logging.WARNING, logger="pygoka.storage"):
        running = start(processor)
        wait_until(processor.recovered, timeout=60, message="restart recovered")
        counting.feed(1)
        wait_until(lambda: counting.counted(processor), timeout=60, message="counts after the restart")
    # Nothing was rebuilt: every store kept its local-only marker.
    assert counting.markers(processor) == dict.fromkeys(range(PARTITIONS), MARKER_VALUE)
    running.stop()
    assert "rebuilding" not in caplog.text


# -- damage that only shows when a block is read ----------------------------------------------------------


@pytest.mark.kafka
# A damaged store is no fault of the message: it stops the processor even where bad messages are dead-lettered.
@pytest.mark.parametrize("on_callback_error", ["fail", "dead_letter"])
def test_damage_found_at_read_time_stops_the_processor_and_the_next_start_rebuilds(
        brokers: str, names: Names, state_dir: Path, start: Start, caplog: pytest.LogCaptureFixture,
        on_callback_error: str) -> None:
    counting = Counting(brokers, names, state_dir)
    first_run(counting, start)
    damaged = counting.store_path(DAMAGED)
    for sst in data_files(damaged):
        corrupt_first_block(sst)
    on_damaged = [k for k in KEYS if partition_for(k.encode(), PARTITIONS) == DAMAGED]
    elsewhere = [k for k in KEYS if k not in on_damaged]

    # The store opens (the damage is inside a data block), so the processor starts and recovers...
    processor = counting.processor(on_callback_error=on_callback_error)
    running = start(processor)
    wait_until(processor.recovered, timeout=60, message="restart recovered")
    assert all(processor.get(k) == counting.truth[k] for k in elsewhere)
    # ...but a read of the damaged block is an error naming the store, never a wrong or missing value.
    with pytest.raises(StorageError) as read_error:
        processor.get(on_damaged[0])
    for name in (str(damaged), f"topic '{counting.table}'", f"partition {DAMAGED}", "damaged"):
        assert name in str(read_error.value)

    # A callback reading the damaged block stops the processor with that error.
    counting.feed(1)
    running.join(60)
    assert isinstance(running.error, ProcessingError), f"run() ended with {running.error!r}"
    error = storage_error_in(running.error)
    assert error is not None, f"{running.error!r} was not caused by a StorageError"
    for name in (str(damaged), f"topic '{counting.table}'", f"partition {DAMAGED}"):
        assert name in str(running.error)

    # The next start deletes the store that was found damaged and rebuilds it from the table topic; the
    # message that failed was not committed, so it is counted now.
    restarted = counting.processor()
    with caplog.at_level(logging.WARNING, logger="pygoka.storage"):
        running = start(restarted)
        wait_until(lambda: counting.counted(restarted), timeout=60, message="counts after the rebuild")
    assert counting.markers(restarted) == {p: None if p == DAMAGED else MARKER_VALUE for p in range(PARTITIONS)}
    running.stop()
    assert f"{damaged} was found damaged" in caplog.text


# -- the store itself, without Kafka -----------------------------------------------------------------------


@pytest.fixture
def big_store(tmp_path: Path) -> Iterator[tuple[RocksDBStorageBuilder, dict[bytes, bytes]]]:
    """big_store is a closed store of partition 0 of topic 't' with 20,000 keys (many data blocks), offset 19,999."""
    builder = RocksDBStorageBuilder(tmp_path / "state")
    data = {f"k{i:05}".encode(): f"value-{i}".encode() * 3 for i in range(20_000)}
    storage = builder("t", 0)
    storage.write(data.items(), 19_999)
    storage.close()
    yield builder, data


def test_damaged_block_fails_reads_and_iteration_instead_of_answering_partially(
        big_store: tuple[RocksDBStorageBuilder, dict[bytes, bytes]], caplog: pytest.LogCaptureFixture) -> None:
    builder, data = big_store
    path = builder.path("t", 0)
    (sst,) = data_files(path)
    # Damage a block in the middle of the data: keys before it read fine, keys in it do not.
    raw = bytearray(sst.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + 64] = bytes(64)
    sst.write_bytes(bytes(raw))

    storage = builder("t", 0)
    try:
        assert storage.offset() == 19_999
        assert storage.get(b"k00000") == data[b"k00000"]
        failed = []
        for key, value in data.items():
            try:
                assert storage.get(key) == value
            except StorageError as exc:
                failed.append((key, str(exc)))
        assert 0 < len(failed) < len(data)
        assert all(f"{path} (topic 't', partition 0) is damaged" in message for _, message in failed)
        # Iteration reaches the damaged block and fails: it must not end there as if the table ended.
        seen: list[bytes] = []
        with pytest.raises(StorageError, match="is damaged"):
            for key, _ in storage.iterate():
                seen.append(key)
        assert 0 < len(seen) < len(data)
    finally:
        storage.close()

    # The store was marked: opening it again rebuilds it, empty and without an offset, for recovery to fill.
    with caplog.at_level(logging.WARNING, logger="pygoka.storage"):
        rebuilt = builder("t", 0)
    try:
        assert (rebuilt.offset(), list(rebuilt.iterate())) == (None, [])
    finally:
        rebuilt.close()
    assert f"{path} was found damaged" in caplog.text
    # Once rebuilt, it stays: the next open does not delete it again.
    rebuilt = builder("t", 0)
    try:
        rebuilt.write([(b"k", b"v")], 5)
    finally:
        rebuilt.close()
    again = builder("t", 0)
    try:
        assert (again.offset(), again.get(b"k")) == (5, b"v")
    finally:
        again.close()


@pytest.mark.parametrize("reopened", [0, 2])
def test_truncated_manifest_never_leaves_an_offset_newer_than_the_data(tmp_path: Path, reopened: int) -> None:
    """A MANIFEST cut at any byte opens as an older consistent state, empty, or not at all (then rebuilt).

    The offset and the data are in two column families, flushed separately: a MANIFEST that kept the
    offset's flush but lost the data's would claim updates the store does not hold, and recovery would
    skip them for good.
    """
    builder = RocksDBStorageBuilder(tmp_path / "state")
    path = builder.path("t", 0)
    # Batch b writes keys b-0..b-999 with offset b: a store with offset b must hold batches 0..b.
    batches = 1 + reopened
    for batch in range(batches):
        storage = builder("t", 0)
        try:
            storage.write([(f"{batch}-{i}".encode(), b"v" * 20) for i in range(1000)], batch)
        finally:
            storage.close()
    intact = tmp_path / "intact"
    shutil.copytree(path, intact)
    size = manifest(intact).stat().st_size
    outcomes: Counter[str] = Counter()
    logging.getLogger("pygoka.storage").setLevel(logging.ERROR)  # one rebuild warning per cut is noise here
    try:
        for cut in range(size + 1):
            shutil.rmtree(path)
            shutil.copytree(intact, path)
            os.truncate(manifest(path), cut)
            storage = builder("t", 0)
            try:
                offset = storage.offset()
                keys = {key for key, _ in storage.iterate()}
            finally:
                storage.close()
            held = -1 if offset is None else offset
            claimed = {f"{b}-{i}".encode() for b in range(held + 1) for i in range(1000)}
            assert claimed <= keys, f"cut at {cut} of {size}: offset {offset}, but only {len(keys)} keys"
            outcomes[f"offset {offset}"] += 1
    finally:
        logging.getLogger("pygoka.storage").setLevel(logging.NOTSET)
    # The sweep did reach states with and without the offset.
    assert outcomes[f"offset {batches - 1}"] and outcomes["offset None"], outcomes
