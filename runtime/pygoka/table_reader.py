"""The table reader keeps partition tables in step with their table topics in a background thread.

It serves recovery (catch up to the end, then stop), joins and hot standby (follow the topic), and
views (follow every partition). A partition is caught up once the reader's position reaches the
topic's high watermark as it was when the partition was added.

The reader reads committed records only, but its target is the high watermark, not the last stable
offset: a transaction still open on a table partition (an exactly-once writer that crashed) holds
recovery back until it is committed or aborted, so a processor never starts on a table that lacks
updates its committed input offsets already count.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from pygoka.errors import ClientFailedError
from pygoka.kafka.config import Config
from pygoka.kafka.fetchers import assign
from pygoka.kafka.take import take
from pygoka.kafka.transport import ConsumerBuilder
from pygoka.recovery_progress import RecoveryProgress
from pygoka.table import PartitionTable

log = logging.getLogger("pygoka.table_reader")

#: CaughtUp is called (in the reader's thread) once a partition reached its target offset.
CaughtUp = Callable[[PartitionTable], None]

#: STALL_SECONDS is how long a catching-up partition may stay at an open transaction before the reader says so.
#: Twice the default transaction.timeout.ms: by then the broker has aborted a crashed writer's transaction.
STALL_SECONDS = 120.0


@dataclass
class _Entry:
    table: PartitionTable
    follow: bool
    on_caught_up: CaughtUp | None
    target: int | None = None
    caught_up: bool = False
    assigned: bool = False
    records: int = 0
    #: start is the offset reading began at: the one stored locally (or the topic's start).
    start: int | None = None
    #: position is the reader's last position short of the target, held since position_since (monotonic).
    position: int = -1
    position_since: float = 0.0
    stall_reported: bool = False


@dataclass
class _Command:
    kind: str
    key: tuple[str, int]
    entry: _Entry | None = None
    done: threading.Event = field(default_factory=threading.Event)


class TableReader:
    """TableReader reads table topics into partition tables with one assign-mode consumer."""

    def __init__(self, name: str, consumer_builder: ConsumerBuilder, config: Config, *,
                 batch_size: int = 10_000, on_error: Callable[[BaseException], None] | None = None) -> None:
        self.name = name
        self._builder = consumer_builder
        self._config = config
        self._batch_size = batch_size
        self._on_error = on_error
        self._entries: dict[tuple[str, int], _Entry] = {}
        self._commands: queue.Queue[_Command] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Any = None
        # Asks for high watermarks: a read_committed consumer's answer is the last stable offset.
        self._watermarks: Any = None
        self.error: BaseException | None = None
        self._progress = RecoveryProgress(f"table reader {name}")
        self._records_read = 0

    def start(self) -> None:
        """start creates the consumer and the reader thread."""
        self._stop.clear()
        self.error = None
        self._consumer = self._builder(self._config)
        self._watermarks = self._builder({**self._config, "isolation.level": "read_uncommitted"})
        self._thread = threading.Thread(target=self._run, name=f"pygoka-reader-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """stop ends the thread and closes the consumer; tables stay open."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def add(self, table: PartitionTable, *, follow: bool, on_caught_up: CaughtUp | None = None) -> None:
        """add starts reading table's partition at its stored offset + 1; follow keeps reading after."""
        # Not waited for: the reader applies commands in order, so a later remove still wins.
        self._send(_Command("add", (table.topic, table.partition), _Entry(table, follow, on_caught_up)), wait=False)

    def remove_many(self, partitions: list[tuple[str, int]]) -> None:
        """remove_many stops reading partitions; when it returns the reader no longer writes to any of them."""
        if not partitions:
            return
        commands = [_Command("remove", key) for key in partitions]
        for command in commands[:-1]:
            self._send(command, wait=False)
        self._send(commands[-1], wait=True)

    def idle(self) -> bool:
        """idle is true when no command is pending and every partition is assigned (the tester's quiescence check)."""
        return self._commands.empty() and all(entry.assigned for entry in list(self._entries.values()))

    def _send(self, command: _Command, *, wait: bool) -> None:
        if self._thread is None or not self._thread.is_alive():
            # Not running: apply at once so callers see the same state either way.
            self._apply(command)
            return
        self._commands.put(command)
        while wait and not command.done.wait(0.5):
            if self._thread is None or not self._thread.is_alive():
                self._apply(command)
                return

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._drain_commands()
                self._catch_up_targets()
                if not any(entry.assigned for entry in self._entries.values()):
                    self._wait_for_command(0.1)
                    continue
                messages = take(self._consumer, self._batch_size, 0.1)
                if messages:
                    self._store(messages)
                self._check_caught_up()
                self._report_progress()
        except BaseException as exc:
            self.error = exc
            log.exception("table reader %s failed", self.name)
            if self._on_error is not None:
                self._on_error(exc)
        finally:
            self._drain_commands()
            self._consumer.close()
            self._watermarks.close()

    def _wait_for_command(self, timeout: float) -> None:
        try:
            command = self._commands.get(timeout=timeout)
        except queue.Empty:
            return
        self._apply(command)

    def _drain_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            self._apply(command)

    def _apply(self, command: _Command) -> None:
        try:
            if command.kind == "add":
                assert command.entry is not None
                self._remove(command.key)
                self._entries[command.key] = command.entry
            else:
                self._remove(command.key)
        finally:
            command.done.set()

    def _remove(self, key: tuple[str, int]) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None and entry.assigned and self._consumer is not None:
            self._consumer.incremental_unassign([TopicPartition(key[0], key[1])])

    def _catch_up_targets(self) -> None:
        """Fetch each new partition's high watermark and start reading it from the stored offset."""
        started: list[TopicPartition] = []
        for key, entry in list(self._entries.items()):
            if entry.target is not None:
                continue
            try:
                low, high = self._watermarks.get_watermark_offsets(TopicPartition(*key), timeout=5.0)
            except KafkaException as exc:
                if _fatal(exc.args[0]):
                    raise
                log.warning("table reader %s: no watermarks for %s/%d yet: %s", self.name, *key, exc)
                continue
            entry.target = high
            entry.table.high_watermark = high
            # Past the end, follow from the end as Goka does: an out-of-range offset would make the
            # consumer reset to the beginning and re-apply the whole topic over the local state.
            start = min(max(entry.table.next_offset(), low), high)
            entry.start = start
            if start >= high:
                self._mark_caught_up(key, entry)
                if not entry.follow:
                    continue
            started.append(TopicPartition(key[0], key[1], start))
            entry.assigned = True
        if started:
            # Together: assigning asks their leaders for end offsets, one round trip for all.
            assign(self._consumer, started)

    def _store(self, messages: list[Any]) -> None:
        # A batch holds runs of one partition's records (librdkafka hands over a fetch response's records
        # together): looking the partition's updates up once per run, not per record, halves this loop's
        # cost, the reader's largest after librdkafka's own.
        updates: dict[tuple[str, int], list[tuple[bytes, bytes | None]]] = {}
        lasts: dict[tuple[str, int], Any] = {}
        run: list[tuple[bytes, bytes | None]] = []
        run_key: tuple[str, int] = ("", -1)
        last: Any = None
        for message in messages:
            if message.error() is not None:
                self._skip(message)
                continue
            key = message.key()
            if key is None:
                continue
            partition = message.partition()
            if partition != run_key[1] or message.topic() != run_key[0]:
                if last is not None:
                    lasts[run_key] = last
                run_key = (message.topic(), partition)
                run = updates.setdefault(run_key, [])
            run.append((key, message.value()))
            last = message
        if last is not None:
            lasts[run_key] = last
        for tp, partition_updates in updates.items():
            entry = self._entries.get(tp)
            if entry is None:
                continue
            entry.table.apply(partition_updates, lasts[tp].offset())
            entry.records += len(partition_updates)
            self._records_read += len(partition_updates)

    def _skip(self, message: Any) -> None:
        """_skip raises a message's fatal error and logs a transient one, which librdkafka recovers from."""
        error = message.error()
        if _fatal(error):
            raise ClientFailedError(f"table reader failed: {error.str()}", topic=message.topic(),
                                    partition=message.partition(), kafka_error=error)
        log.warning("table reader %s: %s", self.name, error.str())

    def _check_caught_up(self) -> None:
        pending = [(key, entry) for key, entry in self._entries.items()
                   if entry.assigned and not entry.caught_up and entry.target is not None]
        if not pending:
            return
        positions = self._consumer.position([TopicPartition(*key) for key, _ in pending])
        now = time.monotonic()
        for (key, entry), position in zip(pending, positions, strict=True):
            if position.offset >= 0 and entry.target is not None and position.offset >= entry.target:
                self._mark_caught_up(key, entry)
            elif position.offset != entry.position:
                entry.position, entry.position_since, entry.stall_reported = position.offset, now, False
            elif not entry.stall_reported and now - entry.position_since > STALL_SECONDS:
                entry.stall_reported = True
                self._report_stall(key, entry)

    def _report_stall(self, key: tuple[str, int], entry: _Entry) -> None:
        """_report_stall says which open transaction holds a partition's catching up back, and how to end it.

        Recovery rightly waits for an open transaction, but one the broker never ends (a restarted broker that
        dropped its commit markers, KAFKA-20734) holds it back forever without a word otherwise.
        """
        topic, partition = key
        try:
            # The reader's consumer is read_committed: its high watermark is the last stable offset.
            _, stable = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5.0)
        except KafkaException as exc:
            log.warning("table reader %s: %s/%d has stayed at offset %d for %.0f s (its last stable offset is "
                        "unknown: %s)", self.name, topic, partition, entry.position, STALL_SECONDS, exc)
            return
        if entry.target is None or stable >= entry.target:
            return
        log.error("table reader %s: %s/%d has stayed at offset %d for %.0f s, held back by a transaction open "
                  "since offset %d (the high watermark was %d when reading began); if its writer never ends it "
                  "(a broker restart can drop a commit's markers, KAFKA-20734), abort it with kafka-transactions.sh "
                  "--bootstrap-server <brokers> abort --topic %s --partition %d --start-offset %d (find-hanging "
                  "lists the others, such as the group's __consumer_offsets partition; docs/guarantees.md)",
                  self.name, topic, partition, entry.position, STALL_SECONDS, stable, entry.target, topic,
                  partition, stable)

    def _report_progress(self) -> None:
        pending = [entry for entry in self._entries.values() if not entry.caught_up and entry.target is not None]
        self._progress.update(len(pending), self._records_read,
                              sum(max(entry.target - entry.table.next_offset(), 0) for entry in pending
                                  if entry.target is not None))

    def _mark_caught_up(self, key: tuple[str, int], entry: _Entry) -> None:
        entry.caught_up = True
        # What a restart cost: a partition resumed from its local state reads only what it missed.
        log.info("table reader %s: %s/%d caught up at offset %s after reading %d records from offset %s",
                 self.name, key[0], key[1], entry.target, entry.records, entry.start)
        if not entry.follow:
            self._remove(key)
        if entry.on_caught_up is not None:
            entry.on_caught_up(entry.table)


def _fatal(error: KafkaError) -> bool:
    """_fatal tells errors that end a client from the transient ones librdkafka recovers from itself."""
    return bool(error.fatal())
