"""The group runner: one run of a processor, from joining the group to leaving it.

Everything here happens on the thread that called Processor.run(), except the table reader's
recovery work and deferred commits completed by user threads, which reach it through queues.
Checkpoints are checkpoint.py's, reactions to partition assignments rebalance.py's.
"""

from __future__ import annotations

import bisect
import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from pygoka.checkpoint import checkpointer_for
from pygoka.codec import Codec, codec_name, exact_type
from pygoka.context import Context, ContextHost, Done, Failure
from pygoka.dead_letter import DEAD_LETTER, dead_letter_headers, dead_letter_topic
from pygoka.errors import CallbackError, CodecError, ProcessingError, PygokaError, StorageError
from pygoka.graph import GroupGraph
from pygoka.kafka.config import group_consumer_config, reader_config
from pygoka.options import NilHandling, ProcessorOptions
from pygoka.partition import PartitionRun
from pygoka.rebalance import Rebalancing
from pygoka.storage.base import StorageBuilder
from pygoka.table import PartitionState, PartitionTable
from pygoka.table_reader import TableReader
from pygoka.view import View
from pygoka.visit import Visits

log = logging.getLogger("pygoka.processor")
# Marks a null message that NilHandling.IGNORE skips (None is a valid decoded value).
_IGNORED = object()

#: Upper bounds (seconds) of the checkpoint duration histogram exported by pygoka.web at /metrics.
CHECKPOINT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GroupRunner(Rebalancing, ContextHost):
    """GroupRunner consumes the group's topics, runs callbacks and checkpoints their effects."""

    def __init__(self, brokers: str, graph: GroupGraph, options: ProcessorOptions,
                 storage: StorageBuilder, partitions: int, stop: threading.Event) -> None:
        self.brokers = brokers
        self.graph = graph
        self.options = options
        self.storage = storage
        self.partition_count = partitions
        self.stop_event = stop
        self.group = graph.group
        self.table_topic = graph.table_topic()
        self.loop_topic = graph.loop_topic() if graph.loop else None
        self.table_codec = graph.persist.codec if graph.persist else None
        self.table_exact_type = exact_type(self.table_codec) if self.table_codec is not None else None
        self.output_codecs = graph.output_codecs()
        if graph.loop is not None:
            self.output_codecs[graph.loop_topic()] = graph.loop.codec
        self.join_codecs = {join.table: join.codec for join in graph.joins}
        self.lookup_views: dict[str, View] = {}
        self.callbacks = graph.callbacks()
        self.consumed = graph.consumed_topics()
        self.nil = options.nil()
        self.dead_letter_topic = dead_letter_topic(graph.group, options.dead_letter_topic)
        self.runs: dict[int, PartitionRun] = {}
        self.tables: dict[int, PartitionTable] = {}
        self.join_tables: dict[tuple[str, int], PartitionTable] = {}
        self.assigned_once = False
        self.visits = Visits()
        self._events: queue.Queue[tuple[PartitionRun, PartitionTable]] = queue.Queue()
        self._async_failure: BaseException | None = None
        self._delivery_failure: tuple[KafkaError, str, int] | None = None
        self.fatal_error: KafkaError | None = None
        self._failed = False
        self._uncommitted = 0
        # Set by done() of a deferred commit (from any thread) or a failed commit: the next checkpoint
        # has offsets to commit even if no message arrives meanwhile.
        self._commit_pending = False
        self._last_checkpoint = time.monotonic()
        self.commit_seconds = 0.0
        # Checkpoint durations per bucket of CHECKPOINT_BUCKETS (the last counts those above them all).
        self.checkpoint_counts = [0] * (len(CHECKPOINT_BUCKETS) + 1)
        self.checkpoint_seconds_sum = 0.0
        self._end_offsets: dict[tuple[str, int], int] = {}
        self._end_offsets_due = 0.0
        self.consumer: Any = None
        #: watermarks is a client of its own for the table topics' end offsets (see Checkpointer._store_tables):
        #: on the group consumer's connection such a request waits behind a fetch's long poll.
        self.watermarks: Any = None
        self.producer: Any = None
        self.checkpointer = checkpointer_for(self, options)
        self.reader = TableReader(
            graph.group, options.transport.consumer,
            reader_config(brokers, graph.group, options.consumer_config), on_error=self._fail_async,
        )

    # -- lifecycle -------------------------------------------------------------------------------

    def execute(self) -> None:
        """execute runs until the stop event is set, raising ProcessingError on failure."""
        exactly_once = self.options.exactly_once
        checkpoint_interval = self.options.checkpoint_interval
        try:
            self._start()
            while not self.stop_event.is_set():
                self._handle_events()
                messages = self.consumer.consume(num_messages=self.options.batch_size, timeout=0.1)
                if messages:
                    self._process_batch(messages)
                self.checkpointer.serve(self.producer.poll, 0)
                self._raise_async_failure()
                if self.visits.pending():
                    self._uncommitted += self.visits.step(self)
                if time.monotonic() >= self._end_offsets_due:
                    self._refresh_end_offsets()
                if (self._uncommitted or self._commit_pending) and (
                    self._uncommitted >= self.options.max_uncommitted
                    or time.monotonic() - self._last_checkpoint >= checkpoint_interval
                    # Exactly-once effects are invisible until committed: commit as soon as the input runs dry.
                    or (exactly_once and not messages)
                ):
                    self.checkpoint()
            self.checkpoint()
        except BaseException:
            self._failed = True
            raise
        finally:
            self._shutdown()

    def _start(self) -> None:
        options = self.options
        self.new_producer()
        self.checkpointer.start()
        self.reader.start()
        if self.table_codec is not None:
            self.watermarks = options.transport.consumer(
                {**reader_config(self.brokers, self.group, options.consumer_config),
                 "isolation.level": "read_uncommitted"})
        for lookup in self.graph.lookups:
            view = View(self.brokers, lookup.table, lookup.codec, storage_builder=self.storage,
                        consumer_config=options.consumer_config, transport=options.transport)
            view.start()
            self.lookup_views[lookup.table] = view
        if self.table_codec is not None and (options.hot_standby or options.recover_ahead):
            for number in range(self.partition_count):
                table = self._group_table(number)
                table.state = PartitionState.RECOVERING
                self.reader.add(table, follow=options.hot_standby, on_caught_up=self._standby_caught_up)
        self._wait(lambda: all(view.recovered() for view in self.lookup_views.values()))
        if options.recover_ahead:
            self._wait(lambda: all(t.state is not PartitionState.RECOVERING for t in self.tables.values()))
        consumer_conf = group_consumer_config(self.brokers, self.group, options.consumer_config)
        if options.group_instance_id:
            consumer_conf["group.instance.id"] = options.group_instance_id
        consumer_conf.setdefault("error_cb", self._on_client_error)
        self.consumer = options.transport.consumer(consumer_conf)
        self.consumer.subscribe(self.consumed, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)

    def _wait(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self._raise_async_failure()
            for view in self.lookup_views.values():
                if view.error is not None:
                    raise ProcessingError(f"lookup table '{view.table}' failed: {view.error}", group=self.group)
            if self.stop_event.wait(0.05):
                return

    def _shutdown(self) -> None:
        late: PygokaError | None = None
        try:
            if self.consumer is not None:
                try:
                    self.consumer.close()
                except (KafkaException, RuntimeError) as exc:
                    log.warning("group %s: closing the consumer failed: %s", self.group, exc)
                except PygokaError as exc:
                    # The final revoke's commit failed: raised once everything is closed.
                    late = exc
            self.reader.stop()
            if self.watermarks is not None:
                self.watermarks.close()
                self.watermarks = None
            for view in self.lookup_views.values():
                view.stop()
            if self.producer is not None:
                self.checkpointer.close(self._failed)
                try:
                    self.checkpointer.serve(self.producer.flush, 10)
                except ProcessingError as exc:
                    log.warning("group %s: flushing the producer at shutdown failed: %s", self.group, exc)
                self._close_producer(self.producer)
        finally:
            for table in list(self.tables.values()) + list(self.join_tables.values()):
                table.close()
            self.tables.clear()
            self.join_tables.clear()
            self.visits.abort("stopped with the processor")
        if late is not None:
            if not self._failed:
                raise late
            log.error("group %s: while stopping after a failure: %s", self.group, late)

    # -- processing ------------------------------------------------------------------------------

    def _process_batch(self, messages: list[Any]) -> None:
        # This loop runs once per message, so the per-message work is inlined and what it reads of self
        # is bound to locals once per batch (the hot path of every processor, see bench/clickcount.py).
        runs = self.runs
        callbacks = self.callbacks
        nil = self.nil
        count = 0
        for message in messages:
            if message.error() is not None:
                self._consumer_error(message.error())
                continue
            topic = message.topic()
            number = message.partition()
            run = runs.get(number)
            if run is None:
                continue  # fetched before its partition was revoked: its next owner processes it
            if run.recovering:
                # Fetched before the partition was paused for recovery: processed once it recovered. Resuming
                # fetches after the last message returned, so nothing is read twice; seeking back instead
                # would race librdkafka's own positioning of a partition it has just assigned.
                run.held.append(message)
                continue
            offset = message.offset()
            # Which step failed decides what on_decode_error/on_callback_error apply to (see _reject).
            step = "decode"
            codec = None
            try:
                codec, callback = callbacks[topic]
                value = message.value()
                if value is None:
                    if nil is NilHandling.IGNORE:
                        decoded = _IGNORED
                    else:
                        decoded = None if nil is NilHandling.PROCESS else _decode(codec, b"")
                else:
                    try:
                        decoded = codec.decode(value)
                    except CodecError:
                        raise
                    except Exception as exc:
                        raise _decode_error(codec, value, exc) from exc
                if decoded is not _IGNORED:
                    key_bytes = message.key() or b""
                    try:
                        key = key_bytes.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise CodecError(f"message key {key_bytes[:40]!r} is not UTF-8") from exc
                    context = Context(self, run, message, key, key_bytes)
                    step = "callback"
                    callback(context, decoded)
                    step = "finish"
                    context.finish()
            except Exception as exc:  # noqa: BLE001 - stops the processor (B12) unless dead-lettered
                self._reject(message, exc, step, codec)
            # PartitionRun.processed_offset, inlined.
            if topic not in run.first_offsets:
                run.first_offsets[topic] = offset
                log.info("group %s: partition %d: processing %s from offset %d", self.group, number, topic, offset)
            run.next_offsets[topic] = offset + 1
            run.processed += 1
            count += 1
        self._uncommitted += count

    def _reject(self, message: Any, exc: BaseException, step: str, codec: Codec | None) -> None:
        """_reject stops at message, or (configured dead_letter) sends it to the dead-letter topic."""
        mode = self.options.on_decode_error if step == "decode" else self.options.on_callback_error
        cause = exc.error if isinstance(exc, Failure) else exc
        # A failure inside finish() may have applied part of the effects: only stopping keeps them consistent.
        # A damaged local store is no fault of the message: dead-lettering would drop every message of it.
        if mode != DEAD_LETTER or step == "finish" or isinstance(cause, StorageError):
            self._fail_at(message, exc)
            return
        run = self.runs.get(message.partition())
        if run is not None:
            # A deferral the failed callback made would otherwise hold the partition's commits forever.
            run.forget(message.topic(), message.offset())
        headers = dead_letter_headers(message, _describe(cause), codec)
        log.warning("group %s: %s/%d@%d sent to dead-letter topic %s: %s", self.group, message.topic(),
                    message.partition(), message.offset(), self.dead_letter_topic, _describe(cause))
        # Same producer as every effect: checkpoint() waits for its acknowledgement before committing,
        # and a failed delivery stops the processor (B7).
        self.produce(self.dead_letter_topic, message.key(), message.value(), None, headers)

    def _fail_at(self, message: Any, exc: BaseException) -> None:
        """_fail_at commits what was processed before message, then stops with an error naming it."""
        cause = exc.error if isinstance(exc, Failure) else exc
        error = ProcessingError(_describe(cause), group=self.group, topic=message.topic(),
                                partition=message.partition(), offset=message.offset())
        self.checkpointer.fail()
        self._failed = True
        raise error from (cause if isinstance(cause, BaseException) else exc)

    def produce(self, topic: str, key: bytes, value: bytes | None, partition: int | None,
                headers: list[tuple[str, bytes]] | None) -> None:
        number = -1 if partition is None else partition
        while True:
            try:
                # Positional arguments, and no headers keyword without headers: a third cheaper per record.
                if headers is None:
                    self.producer.produce(topic, value, key, number)
                else:
                    self.producer.produce(topic, value, key, number, headers=headers)
                return
            except BufferError:
                self.producer.poll(0.1)

    def lookup(self, table: str, key: str) -> Any:
        view = self.lookup_views.get(table)
        if view is None:
            raise PygokaError(f"table '{table}' is not declared as Lookup of group '{self.group}'")
        return view.get(key)

    def defer(self, run: PartitionRun, topic: str, offset: int) -> Done:
        if self.options.exactly_once:
            # A deferred message's effects would be committed before the message: not exactly once.
            raise CallbackError("defer_commit is not available with guarantee 'exactly_once'")
        run.defer(topic, offset)
        released = threading.Event()

        def done(error: BaseException | str | None = None) -> None:
            if released.is_set():
                return
            released.set()
            if error is not None:
                self._fail_async(ProcessingError(f"deferred commit failed: {_describe(error)}", group=self.group,
                                                 topic=topic, partition=run.partition, offset=offset))
                return
            run.release(topic, offset)
            self._commit_pending = True

        return done

    # -- checkpoints -----------------------------------------------------------------------------

    def checkpoint(self) -> None:
        """checkpoint makes what was processed durable, as the processor's guarantee says (checkpoint.py)."""
        started = time.monotonic()
        self._commit_pending = False
        if not self.checkpointer.checkpoint():
            self._commit_pending = True
        self._uncommitted = 0
        self._last_checkpoint = time.monotonic()
        self.commit_seconds = self._last_checkpoint - started
        self.checkpoint_counts[bisect.bisect_left(CHECKPOINT_BUCKETS, self.commit_seconds)] += 1
        self.checkpoint_seconds_sum += self.commit_seconds

    def take_delivery_failure(self) -> tuple[KafkaError, str, int] | None:
        failure, self._delivery_failure = self._delivery_failure, None
        return failure

    def rewound(self, reason: str) -> None:
        self.visits.abort(f"interrupted by an aborted transaction ({reason})")

    def cached_end_offsets(self) -> dict[tuple[str, int], int]:
        """cached_end_offsets are the high watermarks of the active input partitions, for monitors' lag.

        Any thread may call it: it returns what the runner's thread last read (at most a second ago).
        """
        return self._end_offsets

    def _refresh_end_offsets(self) -> None:
        """Read the active input partitions' high watermarks from librdkafka's fetch state.

        cached=True makes no request: fetch responses (long polls, also when idle) keep the values fresh;
        partitions paused for recovery or not fetched yet are left out. This runs on the runner's thread
        because the consumer's methods block while another thread is inside consume().
        """
        self._end_offsets_due = time.monotonic() + 1.0
        result: dict[tuple[str, int], int] = {}
        for number in self.runs:
            for topic in self.consumed:
                try:
                    _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, number), cached=True)
                except KafkaException:
                    continue
                if high >= 0:
                    result[(topic, number)] = high
        self._end_offsets = result  # rebound, never mutated: readers on other threads see a whole dict

    def _on_delivery(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            if error.code() in (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT):
                return  # dropped by an aborted transaction, whose abort is handled already
            if self._delivery_failure is None:
                self._delivery_failure = (error, message.topic(), message.partition())
            return
        if message.topic() == self.table_topic:
            table = self.tables.get(message.partition())
            if table is not None:
                table.acknowledged(message.offset())

    def new_producer(self) -> None:
        """new_producer creates the producer, or replaces it with a fresh client of the same configuration."""
        config = self.checkpointer.producer_config(self.brokers)
        config["on_delivery"] = self._on_delivery
        config.setdefault("error_cb", self._on_producer_error)
        old, self.producer = self.producer, self.options.transport.producer(config)
        if old is not None:
            self._close_producer(old)

    def _close_producer(self, producer: Any) -> None:
        """Drop a producer's undelivered records and close it: no retry of it may fence its successor."""
        try:
            # close() warns when it cannot abort a transaction of a failed (e.g. fenced) producer, whose failure
            # was reported already: log it with the rest.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                producer.purge()
                producer.close()
            for warning in caught:
                log.info("group %s: closing a producer: %s", self.group, warning.message)
        except (KafkaException, RuntimeError) as exc:
            log.warning("group %s: closing a producer failed: %s", self.group, exc)

    def _on_producer_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self.checkpointer.connection_lost()
        self._on_client_error(error)

    def _on_client_error(self, error: KafkaError) -> None:
        if error.fatal():
            self.fatal_error = self.fatal_error or error
            self._fail_async(ProcessingError(f"fatal Kafka client error: {error.str()}", group=self.group))
        else:
            log.info("group %s: %s", self.group, error.str())

    def _consumer_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise ProcessingError(f"fatal consumer error: {error.str()}", group=self.group)
        log.warning("group %s: consumer error: %s", self.group, error.str())

    def _fail_async(self, error: BaseException) -> None:
        if self._async_failure is None:
            self._async_failure = error

    def _raise_async_failure(self) -> None:
        if self._async_failure is not None:
            error = self._async_failure
            if isinstance(error, ProcessingError):
                raise error
            raise ProcessingError(_describe(error), group=self.group) from error


def _decode(codec: Codec, data: bytes) -> Any:
    try:
        return codec.decode(data)
    except CodecError:
        raise
    except Exception as exc:
        raise _decode_error(codec, data, exc) from exc


def _decode_error(codec: Codec, data: bytes, exc: Exception) -> CodecError:
    return CodecError(f"codec {codec_name(codec)} cannot decode {bytes(data)[:40]!r}: {exc}")


def _describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    return f"{type(error).__name__}: {error}"
