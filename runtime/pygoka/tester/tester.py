"""The Tester: processors, views and emitters on an in-memory Kafka, for unit tests.

Processors built with `tester=tt` run their ordinary code (Processor.run in a thread of their own);
only the transport (consumers, producers, topic manager) and the storage are swapped for in-memory
ones. `consume()` returns once the whole system is quiescent: no consumer has unread records in its
assigned, unpaused partitions, every processor and view waits for input with nothing pending, and
every delivery report was served.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pygoka.codec import Codec
from pygoka.graph import GroupGraph
from pygoka.kafka.config import Config
from pygoka.kafka.transport import Transport
from pygoka.processor import Processor
from pygoka.storage.base import StorageBuilder
from pygoka.storage.memory import MemoryStorageBuilder
from pygoka.tester.broker import Broker, RecordHeaders
from pygoka.tester.consumer import MemoryConsumer
from pygoka.tester.producer import MemoryProducer
from pygoka.tester.topic_manager import MemoryTopicManager
from pygoka.tester.tracker import QueueTracker
from pygoka.topic_manager import TopicManager
from pygoka.view import View

#: Runnable is what the tester runs in a thread: a processor or a view.
Runnable = Processor | View


@dataclass
class _Task:
    """_Task is a registered processor or view and the thread running it."""

    target: Runnable
    thread: threading.Thread | None = None
    running: bool = False
    stopped: bool = False
    error: BaseException | None = None
    reported: bool = False

    def name(self) -> str:
        if isinstance(self.target, Processor):
            return f"processor of group '{self.target.graph.group}'"
        return f"view of '{self.target.table}'"


class Tester:
    """Tester is an in-memory Kafka that runs processors, views and emitters built with tester=self.

    Topics created on the fly (by consume, set_table_value or produce) get `partitions` partitions, as
    do a processor's topics unless it sets partitions=. Keys are placed with Kafka's FNV-1a hash.
    `timeout` bounds every wait for quiescence; exceeding it raises TimeoutError naming what is busy.
    """

    #: __test__ keeps pytest from collecting the class as a test case.
    __test__ = False

    def __init__(self, partitions: int = 1, *, timeout: float = 30.0) -> None:
        self.partitions = partitions
        self.timeout = timeout
        self._broker = Broker(partitions)
        #: transport builds in-memory clients; processors, views and emitters built with the tester use it.
        self.transport = Transport(consumer=self._new_consumer, producer=self._new_producer,
                                   topic_manager=self._new_topic_manager)
        self._codecs: dict[str, Codec] = {}
        self._tasks: list[_Task] = []
        self._starting = threading.Lock()
        self._closed = False

    # -- the transport -----------------------------------------------------------------------------

    def _new_consumer(self, config: Config) -> MemoryConsumer:
        return MemoryConsumer(self._broker, config)

    def _new_producer(self, config: Config) -> MemoryProducer:
        return MemoryProducer(self._broker, config)

    def _new_topic_manager(self, config: Config) -> TopicManager:
        return MemoryTopicManager(self._broker)

    def storage_builder(self) -> StorageBuilder:
        """storage_builder is a fresh in-memory storage for one processor or view."""
        return MemoryStorageBuilder()

    # -- registration (called by Processor, View and Emitter) -----------------------------------

    def register_processor(self, processor: Processor) -> None:
        """register_processor gives processor the in-memory transport and storage; the tester runs it."""
        self._require_open()
        options = processor.options
        options.transport = self.transport
        if options.storage_builder is None:
            options.storage_builder = self.storage_builder()
        if options.partitions is None:
            options.default_partitions = self.partitions
        self._learn(processor.graph)
        self._tasks.append(_Task(processor))

    def register_view(self, view: View) -> None:
        """register_view lets the tester run view and decode its table's values."""
        self._require_open()
        self._codecs.setdefault(view.table, view.codec)
        self._tasks.append(_Task(view))

    def register_emitter(self, topic: str, codec: Codec) -> None:
        """register_emitter lets the tester decode what an emitter sends to topic."""
        self._require_open()
        self._codecs.setdefault(topic, codec)

    def _learn(self, graph: GroupGraph) -> None:
        edges = [(edge.topic, edge.codec) for edge in graph.inputs]
        edges += [(edge.topic, edge.codec) for edge in graph.outputs]
        edges += [(edge.table, edge.codec) for edge in graph.joins]
        edges += [(edge.table, edge.codec) for edge in graph.lookups]
        if graph.loop is not None:
            edges.append((graph.loop_topic(), graph.loop.codec))
        if graph.persist is not None:
            edges.append((graph.table_topic(), graph.persist.codec))
        for topic, codec in edges:
            self._codecs.setdefault(topic, codec)

    # -- running ---------------------------------------------------------------------------------

    def new_processor(self, graph: GroupGraph, **options: Any) -> Processor:
        """new_processor builds a processor with this tester, starts it and waits until it is idle."""
        processor = Processor(None, graph, tester=self, **options)
        self.start(processor)
        return processor

    def new_view(self, table: str, codec: Codec | None = None, **options: Any) -> View:
        """new_view builds a view of table (codec defaults to the table's known codec) and starts it."""
        view = View(None, table, codec or self._codec(table), tester=self, **options)
        self.start(view)
        return view

    def start(self, target: Runnable | None = None) -> None:
        """start runs target (default: every registered processor and view not started yet) and waits until idle.

        Processors start before views, and a processor after those whose tables it joins or looks up.
        """
        # One caller at a time: a test's own run() and a tester call may both start the same processor.
        with self._starting:
            if target is not None:
                task = self._task(target)
                if not task.running:
                    # Pending again, so that it starts in its turn among the others.
                    task.thread, task.stopped = None, False
            pending = [task for task in self._tasks if task.thread is None and not task.stopped]
            processors = [task for task in pending if isinstance(task.target, Processor)]
            while processors:
                wave = _ready(processors)
                for task in wave:
                    self._start_task(task)
                processors = [task for task in processors if task not in wave]
                self._wait_quiet(None)
            for task in pending:
                if isinstance(task.target, View):
                    self._start_task(task)
            self._wait_quiet(None)

    def runs(self, target: Runnable) -> bool:
        """runs tells whether the caller is the tester's own thread running target."""
        return threading.current_thread() is self._task(target).thread

    def run_until_stopped(self, target: Runnable) -> None:
        """run_until_stopped is target.run() called by a test itself, as Goka's tests do `go proc.Run(ctx)`.

        The tester runs target (it stays the one thread consuming) unless it does already, and this returns
        once target stopped, raising what its run raised; the next tester call raises it too, so a failure is the
        test's even when its thread's outcome is not looked at.
        """
        task = self._task(target)
        if not task.running:
            self.start(target)
        thread = task.thread
        if thread is not None:
            thread.join()
        with self._broker.lock:
            error = task.error
        if error is not None:
            raise error

    def stop(self, target: Runnable) -> None:
        """stop stops target and waits for its run() to return; it stays stopped until start(target)."""
        task = self._task(target)
        task.stopped = True
        self._stop_task(task)

    def wait_idle(self, timeout: float | None = None) -> None:
        """wait_idle starts what is registered and waits for quiescence; it raises a processor's or view's error."""
        if any(task.thread is None and not task.stopped for task in self._tasks):
            self.start()
        self._wait_quiet(timeout)

    def _wait_quiet(self, timeout: float | None) -> None:
        broker = self._broker
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with broker.lock:
            while True:
                self._raise_errors()
                reason = self._busy_reason()
                if reason is None:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"tester not idle after {self.timeout if timeout is None else timeout}s: "
                                       f"{reason}")
                broker.settled.wait(remaining)

    def close(self, *, raise_errors: bool = True) -> None:
        """close stops every processor and view; it raises an error none of the tester's calls raised yet."""
        if self._closed:
            return
        self._closed = True
        for task in sorted(self._tasks, key=lambda t: isinstance(t.target, View)):
            self._stop_task(task)
        if raise_errors:
            with self._broker.lock:
                self._raise_errors()

    def __enter__(self) -> Tester:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(raise_errors=exc is None)

    def _start_task(self, task: _Task) -> None:
        self._require_open()
        thread = threading.Thread(target=self._run, args=(task,), daemon=True,
                                  name=f"pygoka-tester-{task.name()}")
        with self._broker.lock:
            task.thread, task.running, task.stopped, task.error = thread, True, False, None
        thread.start()

    def _run(self, task: _Task) -> None:
        error: BaseException | None = None
        try:
            task.target.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the test by the next tester call
            error = exc
        finally:
            with self._broker.lock:
                task.running = False
                task.error, task.reported = error, False
                self._broker.notify()

    def _stop_task(self, task: _Task) -> None:
        thread = task.thread
        # run() clears the stop flag when it starts, so stop again until the thread is gone.
        while thread is not None and thread.is_alive():
            task.target.stop()
            thread.join(0.5)

    def _task(self, target: Runnable) -> _Task:
        for task in self._tasks:
            if task.target is target:
                return task
        raise ValueError(f"{target!r} was not built with this tester (pass tester=)")

    def _raise_errors(self) -> None:
        for task in self._tasks:
            if task.error is not None and not task.reported:
                task.reported = True
                raise task.error

    def _busy_reason(self) -> str | None:
        """_busy_reason says what still has work to do, None when quiescent (broker lock held)."""
        for task in self._tasks:
            if task.running and not task.target.idle():
                return f"{task.name()} is starting, recovering or reading a table"
        for consumer in self._broker.consumers:
            reason = consumer.busy_reason()
            if reason is not None:
                return reason
        for producer in self._broker.producers:
            if producer.undelivered():
                return "a producer has delivery reports not served yet"
        return None

    def _require_open(self) -> None:
        if self._closed:
            raise RuntimeError("the tester is closed")

    # -- messages and tables ----------------------------------------------------------------------

    def consume(self, topic: str, key: str | bytes, value: Any, headers: Mapping[str, bytes | str] | None = None,
                timestamp: datetime.datetime | None = None, *, codec: Codec | None = None) -> None:
        """consume produces a message to topic and returns once it and all it caused were processed.

        The value is encoded with codec, or the codec the topic is known with; None is a tombstone.
        """
        self._require_open()
        self.start()
        raw = self._encode(topic, value, codec)
        header_list: RecordHeaders | None = None if not headers else [
            (name, data.encode("utf-8") if isinstance(data, str) else bytes(data)) for name, data in headers.items()
        ]
        millis = None if timestamp is None else int(timestamp.timestamp() * 1000)
        with self._broker.lock:
            self._broker.append(topic, _key(key), raw, headers=header_list, timestamp_ms=millis)
        self.wait_idle()

    def table_value(self, table: str, key: str | bytes, codec: Codec | None = None) -> Any:
        """table_value is the newest value of key in the table topic, decoded; None if unset or deleted."""
        with self._broker.lock:
            message = self._broker.latest(table, _key(key))
        raw = None if message is None else message.value()
        if raw is None:
            return None
        codec = codec or self._codecs.get(table)
        return raw if codec is None else codec.decode(raw)

    def set_table_value(self, table: str, key: str | bytes, value: Any, codec: Codec | None = None) -> None:
        """set_table_value writes key's value to the table topic; the processors and views reading it see it.

        A running processor owning the table (Persist) is restarted around the write, so that it
        recovers the value as a processor starting on Kafka would.
        """
        raw = self._encode(table, value, codec)
        self._rewrite_tables([table], lambda: self._append_table(table, _key(key), raw))

    def clear_values(self) -> None:
        """clear_values deletes every value of every table, as tombstones the processors and views apply."""
        with self._broker.lock:
            tables = [name for name, topic in self._broker.topics.items() if topic.compacted]

        def delete_all() -> None:
            for table in tables:
                for key in list(self._broker.live_keys(table)):
                    self._append_table(table, key, None)

        self._rewrite_tables(tables, delete_all)

    def create_topic(self, topic: str, partitions: int | None = None, *, table: bool = False) -> None:
        """create_topic creates topic (compacted if table) with partitions, default the tester's count."""
        with self._broker.lock:
            self._broker.ensure_topic(topic, partitions, compacted=table, check=True)

    def queue_tracker(self, topic: str, codec: Codec | None = None) -> QueueTracker:
        """queue_tracker follows the records produced to topic from now on, decoded with its codec."""
        return QueueTracker(self._broker, topic, codec or self._codecs.get(topic))

    def _rewrite_tables(self, tables: list[str], write: Callable[[], None]) -> None:
        owners = [task for task in self._tasks if task.running and isinstance(task.target, Processor)
                  and task.target.graph.persist is not None and task.target.graph.table_topic() in tables]
        if owners:
            self._wait_quiet(None)
        for task in owners:
            self._stop_task(task)
        with self._broker.lock:
            write()
        for task in owners:
            self._start_task(task)
        if any(task.running for task in self._tasks):
            self._wait_quiet(None)

    def _append_table(self, table: str, key: bytes, raw: bytes | None) -> None:
        """_append_table writes one update to a table topic, created compacted if missing (lock held)."""
        self._broker.ensure_topic(table, compacted=True)
        self._broker.append(table, key, raw)

    def _codec(self, topic: str) -> Codec:
        codec = self._codecs.get(topic)
        if codec is None:
            raise ValueError(f"no codec is known for topic '{topic}': pass codec=")
        return codec

    def _encode(self, topic: str, value: Any, codec: Codec | None) -> bytes | None:
        if value is None:
            return None
        codec = codec or self._codecs.get(topic)
        if codec is not None:
            return codec.encode(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise ValueError(f"no codec is known for topic '{topic}': pass codec= or a bytes value")


def _key(key: str | bytes) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def _ready(tasks: list[_Task]) -> list[_Task]:
    """_ready are the processors whose joined and looked-up tables no other pending processor persists."""
    provided = {task.target.graph.table_topic() for task in tasks
                if isinstance(task.target, Processor) and task.target.graph.persist is not None}
    ready = []
    for task in tasks:
        assert isinstance(task.target, Processor)
        graph = task.target.graph
        needed = {edge.table for edge in graph.joins} | {edge.table for edge in graph.lookups}
        needed.discard(graph.table_topic())
        if not needed & provided:
            ready.append(task)
    # A cycle of lookups cannot be ordered; start them together.
    return ready or tasks
