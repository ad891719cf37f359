"""A view keeps a local copy of every partition of a table and serves reads from it."""

from __future__ import annotations

import heapq
import logging
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pygoka.codec import Codec
from pygoka.errors import MissingTopicError, NotRunningError, PygokaError
from pygoka.kafka.config import admin_config, reader_config
from pygoka.kafka.transport import KAFKA, Transport
from pygoka.partitioner import partition_for
from pygoka.storage.base import StorageBuilder
from pygoka.storage.rocksdb import RocksDBStorageBuilder
from pygoka.table import PartitionTable
from pygoka.table_reader import TableReader

if TYPE_CHECKING:
    from pygoka.tester import Tester

log = logging.getLogger("pygoka.view")


class View:
    """View follows a table topic into local storage; reads are eventually consistent.

    With auto_reconnect (the default) a failed reader is restarted after reconnect_backoff seconds and
    the view keeps serving its last values meanwhile (B27); without it run() raises the failure.
    """

    def __init__(self, brokers: str | None, table: str, codec: Codec, *, state_dir: str | Path | None = None,
                 storage_builder: StorageBuilder | None = None, consumer_config: dict[str, Any] | None = None,
                 auto_reconnect: bool = True, reconnect_backoff: float = 1.0,
                 transport: Transport = KAFKA, tester: Tester | None = None) -> None:
        if tester is not None:
            transport, storage_builder = tester.transport, storage_builder or tester.storage_builder()
        elif brokers is None:
            raise ValueError("brokers may only be None for a view built with tester=")
        self.brokers = brokers or ""
        self.table = table
        self.codec = codec
        self.auto_reconnect = auto_reconnect
        self.reconnect_backoff = reconnect_backoff
        self.transport = transport
        self.error: BaseException | None = None
        self._consumer_config = dict(consumer_config or {})
        self._state_dir = Path(state_dir) if state_dir is not None else None
        self._storage_builder = storage_builder
        self._tables: list[PartitionTable] = []
        self._caught_up: set[int] = set()
        self._stop = threading.Event()
        self._started = threading.Event()
        self._recovered = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._temp_dir: Path | None = None
        self._reader: TableReader | None = None
        self._tester = tester
        if tester is not None:
            tester.register_view(self)

    def run(self) -> None:
        """run follows the table until stop() is called; it raises on a failure it cannot recover from.

        Built with tester=, the tester runs it: called by the test, run waits until it stopped (either order).
        """
        if self._tester is not None and not self._tester.runs(self):
            self._tester.run_until_stopped(self)
            return
        with self._lock:
            if self._started.is_set():
                raise PygokaError(f"view of '{self.table}' is already running")
            self._stop.clear()
            self.error = None
            self._recovered.clear()
            self._caught_up = set()
        try:
            # Started first: its clients connect to the brokers while the partitions' stores open, and a
            # client asked for offsets right after its creation waited up to 0.7 s for its first connection.
            reader = self._start_reader()
            self._open()
            self._follow(reader)
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self._close()

    def start(self) -> None:
        """start runs the view in a background thread; check error, or wait_recovered()."""
        self._thread = threading.Thread(target=self._run_in_background, name=f"pygoka-view-{self.table}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """stop ends run(); reads fail afterwards."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
            self._thread = None

    def recovered(self) -> bool:
        """recovered is true once every partition caught up with the end of the table as of start (B26)."""
        return self._recovered.is_set()

    def wait_recovered(self, timeout: float | None = None) -> bool:
        """wait_recovered blocks until recovered(), a failure or timeout; it tells whether recovered."""
        if self._recovered.wait(timeout):
            return True
        if self.error is not None:
            raise self.error
        return False

    def idle(self) -> bool:
        """idle is true when recovered and only waiting for table updates (the tester's quiescence check)."""
        reader = self._reader
        return (self.recovered() and not self._stop.is_set() and reader is not None and reader.error is None
                and reader.idle())

    def thread_ended(self) -> bool:
        """thread_ended tells whether the thread start() began has ended without stop() being called."""
        thread = self._thread
        return thread is not None and not thread.is_alive()

    def partitions(self) -> list[PartitionTable]:
        """partitions are the view's partition tables, for monitoring."""
        return list(self._tables)

    def get(self, key: str) -> Any:
        """get is the value of key, None if the table has none; an error before the view started."""
        raw = self._table_of(key).get(key.encode("utf-8"))
        return None if raw is None else self.codec.decode(raw)

    def has(self, key: str) -> bool:
        """has tells whether the table has a value for key."""
        return self._table_of(key).has(key.encode("utf-8"))

    def iterate(self, start: str | None = None, end: str | None = None) -> Iterator[tuple[str, Any]]:
        """iterate yields (key, value) of all partitions in key order, from start to end (exclusive)."""
        tables = self._require_started()
        low = start.encode("utf-8") if start is not None else None
        high = end.encode("utf-8") if end is not None else None
        for key, raw in heapq.merge(*(table.iterate(low, high) for table in tables)):
            yield key.decode("utf-8", "replace"), self.codec.decode(raw)

    def _require_started(self) -> list[PartitionTable]:
        tables = self._tables
        if not self._started.is_set() or not tables:
            raise NotRunningError(f"view of '{self.table}' has not been started")
        return tables

    def _table_of(self, key: str) -> PartitionTable:
        tables = self._require_started()
        return tables[partition_for(key.encode("utf-8"), len(tables))]

    def _run_in_background(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # noqa: BLE001 - kept in self.error for the owner to see
            log.error("view of %s stopped: %s", self.table, exc)

    def _open(self) -> None:
        manager = self.transport.topic_manager(admin_config(self.brokers, self._consumer_config))
        try:
            found = manager.describe([self.table]).get(self.table)
        finally:
            manager.close()
        if found is None:
            raise MissingTopicError(f"table topic '{self.table}' does not exist", topic=self.table)
        count = found.partitions
        builder = self._storage_builder
        if builder is None:
            directory = self._state_dir
            if directory is None:
                self._temp_dir = Path(tempfile.mkdtemp(prefix=f"pygoka-view-{self.table}-"))
                directory = self._temp_dir
            builder = RocksDBStorageBuilder(directory)
        self._tables = [PartitionTable(self.table, number, builder(self.table, number)) for number in range(count)]
        self._started.set()

    def _start_reader(self) -> TableReader:
        config = reader_config(self.brokers, f"view-{self.table}", self._consumer_config)
        reader = TableReader(f"view-{self.table}", self.transport.consumer, config)
        self._reader = reader
        reader.start()
        return reader

    def _follow(self, reader: TableReader) -> None:
        while True:
            for table in self._tables:
                reader.add(table, follow=True, on_caught_up=self._on_caught_up)
            while not self._stop.wait(0.1):
                if reader.error is not None:
                    break
            reader.stop()
            if reader.error is None:
                return
            if not self.auto_reconnect:
                raise reader.error
            log.warning("view of %s lost its reader (%s); reconnecting", self.table, reader.error)
            if self._stop.wait(self.reconnect_backoff):
                return
            reader = self._start_reader()

    def _on_caught_up(self, table: PartitionTable) -> None:
        table.caught_up()
        self._caught_up.add(table.partition)
        if len(self._caught_up) == len(self._tables):
            self._recovered.set()

    def _close(self) -> None:
        self._started.clear()
        if self._reader is not None:
            self._reader.stop()  # already stopped unless opening the stores failed
        tables, self._tables = self._tables, []
        for table in tables:
            table.close()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
