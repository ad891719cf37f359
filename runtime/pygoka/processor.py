"""The processor: one instance of a processor group, consuming its share of the group's partitions."""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
from typing import Any

from pygoka.checkpoint import CheckpointStats
from pygoka.dead_letter import DEAD_LETTER, dead_letter_topic
from pygoka.errors import NotRunningError, PygokaError, TransactionExpiredError
from pygoka.graph import GroupGraph
from pygoka.kafka.config import admin_config
from pygoka.options import ProcessorOptions, default_state_dir
from pygoka.partition import PartitionRun
from pygoka.partitioner import partition_for
from pygoka.runner import GroupRunner
from pygoka.storage.base import StorageBuilder
from pygoka.storage.rocksdb import RocksDBStorageBuilder
from pygoka.table import PartitionTable
from pygoka.topic_manager import ensure_topics
from pygoka.topic_plan import graph_topics

log = logging.getLogger("pygoka.processor")


class Processor:
    """Processor runs a group graph against Kafka; options are the fields of ProcessorOptions.

    run() blocks until stop() (or SIGTERM/SIGINT when run on the main thread) and raises
    ProcessingError when processing fails. It may be called again after it returned.
    """

    def __init__(self, brokers: str | None, graph: GroupGraph, **options: Any) -> None:
        self.graph = graph
        self.options = ProcessorOptions(**options)
        if brokers is None and self.options.tester is None:
            raise ValueError("brokers may only be None for a processor built with tester=")
        self.brokers = brokers or ""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._runner: GroupRunner | None = None
        self._storage: StorageBuilder | None = None
        #: error is what the last run() raised (None while running or after a clean stop); failures counts them.
        self.error: BaseException | None = None
        self.failures = 0
        #: restarts counts the times run() started over with new clients (a transaction the broker aborted).
        self.restarts = 0
        if self.options.tester is not None:
            self.options.tester.register_processor(self)

    def run(self) -> None:
        """run processes until stopped; it raises ProcessingError or TopicError on failure.

        Built with tester=, the tester runs it: called by the test, run waits until it stopped (either order).
        """
        tester = self.options.tester
        if tester is not None and not tester.runs(self):
            tester.run_until_stopped(self)
            return
        with self._lock:
            if self._runner is not None:
                raise PygokaError(f"processor of group '{self.graph.group}' is already running")
            self._stop.clear()
            self.error = None
            partitions = self._setup_topics()
            runner = self._new_runner(partitions)
        restore = self._install_signal_handlers()
        try:
            while True:
                try:
                    runner.execute()
                    break
                except TransactionExpiredError as exc:
                    if self._stop.is_set():
                        raise
                    # Whether the broker committed or aborted is not known here: new clients start from what
                    # the group committed, and tables recover from the table topic, right either way.
                    log.warning("group %s: %s; starting over with a new consumer and producer", self.graph.group,
                                exc)
                    self.restarts += 1
                    with self._lock:
                        runner = self._new_runner(partitions)
        except BaseException as exc:
            self.error = exc
            self.failures += 1
            raise
        finally:
            restore()
            with self._lock:
                self._runner = None

    def _new_runner(self, partitions: int) -> GroupRunner:
        self._runner = GroupRunner(self.brokers, self.graph, self.options, self._storage_builder(), partitions,
                                   self._stop)
        return self._runner

    def stop(self) -> None:
        """stop makes run() commit what was processed and return."""
        self._stop.set()

    def running(self) -> bool:
        """running tells whether run() is in progress."""
        return self._runner is not None

    def recovered(self) -> bool:
        """recovered is true once every assigned partition (and every lookup table) caught up."""
        runner = self._runner
        return (
            runner is not None
            and runner.assignment.recovered()
            and all(view.recovered() for view in runner.lookup_views.values())
        )

    def idle(self) -> bool:
        """idle is true when recovered and only waiting for messages (the tester's quiescence check)."""
        runner = self._runner
        return (
            runner is not None
            and not self._stop.is_set()
            and not runner.failed
            and self.recovered()
            and runner.reader.idle()
            and all(view.idle() for view in list(runner.lookup_views.values()))
        )

    def get(self, key: str) -> Any:
        """get is the group table value of key, from an active or standby partition of this instance."""
        runner = self._require_runner()
        if runner.table_codec is None:
            raise PygokaError(f"group '{self.graph.group}' has no group table (no Persist edge)")
        number = partition_for(key.encode("utf-8"), runner.partition_count)
        table = runner.assignment.tables.get(number)
        if table is None:
            raise PygokaError(f"partition {number} of '{runner.table_topic}' (key {key!r}) is not held here")
        raw = table.get(key.encode("utf-8"))
        return None if raw is None else runner.table_codec.decode(raw)

    def visit_all(self, name: str, meta: Any = None, timeout: float | None = None) -> int:
        """visit_all calls visitor name for every key of the active partitions; returns the keys visited."""
        runner = self._require_runner()
        self.graph.visitor(name)
        return runner.visits.submit(name, meta).result(timeout)

    def active_partitions(self) -> list[int]:
        """active_partitions are the partition numbers this instance processes now."""
        runner = self._runner
        return sorted(runner.assignment.runs) if runner is not None else []

    def partition_runs(self) -> list[PartitionRun]:
        """partition_runs are the active partitions with their offsets and states, for monitoring."""
        runner = self._runner
        # A copy: a rebalance on the runner's thread may change runs while a monitor reads them.
        runs = dict(runner.assignment.runs) if runner is not None else {}
        return [runs[n] for n in sorted(runs)]

    def table_partitions(self) -> list[PartitionTable]:
        """table_partitions are the open group table partitions (active and standby)."""
        runner = self._runner
        tables = dict(runner.assignment.tables) if runner is not None else {}
        return [tables[n] for n in sorted(tables)]

    def rebalances(self) -> int:
        """rebalances counts the current run's partition assignments and revocations (0 when not running)."""
        runner = self._runner
        return runner.assignment.rebalances if runner is not None else 0

    def unassigned_seconds(self) -> float:
        """unassigned_seconds is how long the current run was in its group without partitions (0 when not running).

        Waiting for the first assignment counts, and every stretch from giving all partitions up in a
        rebalance to getting some again: the time a rebalance stopped this instance.
        """
        runner = self._runner
        return runner.assignment.unassigned_seconds if runner is not None else 0.0

    def recovery_seconds(self) -> float:
        """recovery_seconds sums, over the current run's assigned partitions, how long each waited for its tables."""
        runner = self._runner
        return runner.assignment.recovery_seconds if runner is not None else 0.0

    def checkpoint_stats(self) -> CheckpointStats | None:
        """checkpoint_stats are the current run's checkpoint durations (a copy), None when not running."""
        runner = self._runner
        if runner is None:
            return None
        stats = runner.checkpoint_stats
        return dataclasses.replace(stats, counts=list(stats.counts))

    def end_offsets(self) -> dict[tuple[str, int], int]:
        """end_offsets are the last seen high watermarks of the active input partitions (for lag)."""
        runner = self._runner
        return runner.cached_end_offsets() if runner is not None else {}

    def _require_runner(self) -> GroupRunner:
        runner = self._runner
        if runner is None:
            raise NotRunningError(f"processor of group '{self.graph.group}' is not running")
        return runner

    def _storage_builder(self) -> StorageBuilder:
        if self._storage is None:
            builder = self.options.storage_builder
            if builder is None:
                state_dir = self.options.state_dir or default_state_dir(self.graph.group)
                builder = RocksDBStorageBuilder(state_dir)
            self._storage = builder
        return self._storage

    def _setup_topics(self) -> int:
        options = self.options
        manager = options.transport.topic_manager(admin_config(self.brokers, options.consumer_config))
        # Outputs need not be co-partitioned, only exist: a transactional producer cannot have the broker create
        # them on first use, and a count of the group's is what its readers expect.
        dead_letter = None
        if DEAD_LETTER in (options.on_decode_error, options.on_callback_error):
            dead_letter = dead_letter_topic(self.graph.group, options.dead_letter_topic)
        plan = graph_topics(self.graph, dead_letter=dead_letter, table_config=options.table_config)
        try:
            return ensure_topics(manager, plan, partitions=options.partitions,
                                 default_partitions=options.default_partitions,
                                 replication_factor=options.replication_factor)
        finally:
            manager.close()

    def _install_signal_handlers(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def handle(signum: int, frame: Any) -> None:
            log.info("group %s: signal %d received, stopping", self.graph.group, signum)
            self.stop()

        for sig in previous:
            signal.signal(sig, handle)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore
