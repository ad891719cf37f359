"""The group runner: one run of a processor, from joining the group to leaving it.

Everything here happens on the thread that called Processor.run(), except the table reader's
recovery work and deferred commits completed by user threads, which reach it through queues.
Checkpoints are checkpoint.py's; the partitions held and their tables are rebalance.py's Assignment.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from pygoka.checkpoint import CheckpointStats, checkpointer_for, producer_failed
from pygoka.codec import Codec, decode, decode_error, exact_type
from pygoka.context import Context, ContextHost, Done, Failure
from pygoka.dead_letter import DEAD_LETTER, dead_letter_headers, dead_letter_topic
from pygoka.errors import (
    CallbackError,
    CallbackFailedError,
    ClientFailedError,
    CodecError,
    DecodeFailedError,
    ProcessingError,
    PygokaError,
    StorageError,
)
from pygoka.graph import GroupGraph
from pygoka.kafka.config import group_consumer_config, incremental, reader_config
from pygoka.kafka.fetchers import resume
from pygoka.options import NilHandling, ProcessorOptions
from pygoka.partition import PartitionRun
from pygoka.rebalance import Assignment
from pygoka.storage.base import StorageBuilder
from pygoka.table_reader import TableReader
from pygoka.view import View
from pygoka.visit import Visits

log = logging.getLogger("pygoka.processor")
#: DRY_COMMIT_SPACING is the least time (s) between two exactly-once checkpoints made because the input ran dry.
DRY_COMMIT_SPACING = 0.02
# How long a static member leaving its group for good waits for its revoke, and then for the LeaveGroup to go.
LEAVE_SECONDS = 10.0
LEAVE_SEND_SECONDS = 0.2
# How long the runner waits for messages: a partition's recovery is noticed only between two waits, so while one
# recovers the wait is short (its input is paused: nothing may be fetched to end the wait sooner).
POLL_SECONDS = 0.1
RECOVERING_POLL_SECONDS = 0.01
# Marks a null message that NilHandling.IGNORE skips (None is a valid decoded value).
_IGNORED = object()

class GroupRunner(ContextHost):
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
        self.visits = Visits()
        self._async_failure: BaseException | None = None
        self._delivery_failure: tuple[KafkaError, str, int] | None = None
        self.fatal_error: KafkaError | None = None
        self._failed = False
        self._uncommitted = 0
        # Set by done() of a deferred commit (from any thread) or a failed commit: the next checkpoint
        # has offsets to commit even if no message arrives meanwhile.
        self._commit_pending = False
        self._last_checkpoint = time.monotonic()
        self.checkpoint_stats = CheckpointStats()
        self._end_offsets: dict[tuple[str, int], int] = {}
        self._end_offsets_due = 0.0
        self.consumer: Any = None
        #: incremental tells whether the group rebalances incrementally (group.protocol=consumer, KIP-848).
        self.incremental = False
        #: watermarks is a client of its own for the table topics' end offsets (see Checkpointer._store_tables):
        #: on the group consumer's connection such a request waits behind a fetch's long poll.
        self.watermarks: Any = None
        self.producer: Any = None
        self.checkpointer = checkpointer_for(self, options)
        self.reader = TableReader(
            graph.group, options.transport.consumer,
            reader_config(brokers, graph.group, options.consumer_config), on_error=self._fail_async,
        )
        #: assignment holds the active partitions and the open tables.
        self.assignment = Assignment(graph, storage, self.reader, hot_standby=options.hot_standby)

    @property
    def runs(self) -> dict[int, PartitionRun]:
        """runs are the active partitions by number (the assignment's)."""
        return self.assignment.runs

    @property
    def failed(self) -> bool:
        """failed tells whether this run stopped, or is stopping, because of an error."""
        return self._failed

    # -- lifecycle -------------------------------------------------------------------------------

    def execute(self) -> None:
        """execute runs until the stop event is set, raising ProcessingError on failure."""
        exactly_once = self.options.exactly_once
        checkpoint_interval = self.options.checkpoint_interval
        batch_size = self.options.batch_size
        try:
            self._start()
            wait = RECOVERING_POLL_SECONDS
            while not self.stop_event.is_set():
                self._handle_events()
                messages = self.assignment.take(self.consumer, batch_size, wait)
                # Checked only when nothing came: once per batch it cost the 1-process count 7%.
                wait = POLL_SECONDS if messages or self.assignment.recovered() else RECOVERING_POLL_SECONDS
                if messages:
                    self._process_batch(messages)
                self.checkpointer.serve(self.producer.poll, 0)
                self._raise_async_failure()
                if self.visits.pending():
                    self._uncommitted += self.visits.step(self)
                if time.monotonic() >= self._end_offsets_due:
                    self._refresh_end_offsets()
                since = time.monotonic() - self._last_checkpoint
                if (self._uncommitted or self._commit_pending) and (
                    self._uncommitted >= self.options.max_uncommitted
                    or since >= checkpoint_interval
                    # Exactly-once effects are invisible until committed: commit as soon as the input runs dry
                    # (nothing more was ready), at most every DRY_COMMIT_SPACING so a trickle is no storm of
                    # transactions.
                    or (exactly_once and len(messages) < batch_size and since >= DRY_COMMIT_SPACING)
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
            self.assignment.read_ahead(self.partition_count, follow=options.hot_standby)
        self._wait(lambda: all(view.recovered() for view in self.lookup_views.values()))
        if options.recover_ahead:
            self._wait(self.assignment.tables_recovered)
        consumer_conf = group_consumer_config(self.brokers, self.group, options.consumer_config)
        self.incremental = incremental(consumer_conf)
        if options.group_instance_id:
            consumer_conf["group.instance.id"] = options.group_instance_id
        consumer_conf.setdefault("error_cb", self._on_client_error)
        self.consumer = options.transport.consumer(consumer_conf)
        self.consumer.subscribe(self.consumed, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)
        self.assignment.subscribed()

    def _wait(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self._raise_async_failure()
            self._handle_events()
            for view in self.lookup_views.values():
                if view.error is not None:
                    raise ProcessingError(f"lookup table '{view.table}' failed: {view.error}",
                                          group=self.group) from view.error
            if self.stop_event.wait(0.05):
                return

    def _shutdown(self) -> None:
        late: PygokaError | None = None
        try:
            if self.consumer is not None:
                try:
                    try:
                        if self._leaves_for_good():
                            self._leave_group()
                    finally:
                        # Also when the revoke's commit, served while leaving, failed.
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
            self.assignment.close()
            self.visits.abort("stopped with the processor")
        if late is not None:
            if not self._failed:
                raise late
            log.error("group %s: while stopping after a failure: %s", self.group, late)

    def _leave_group(self) -> None:
        """_leave_group has a static member leave its group, which its close() never does (KIP-345).

        librdkafka sends the LeaveGroup once the revoke that unsubscribe() starts is done, unless close() began
        first: the revoke (a final commit) is served here, and the request sent, before the consumer closes.
        """
        log.info("group %s: leaving the group for good", self.group)
        self.consumer.unsubscribe()
        deadline = time.monotonic() + LEAVE_SECONDS
        while self.runs and time.monotonic() < deadline:
            self.consumer.poll(0.05)
        self.consumer.poll(LEAVE_SEND_SECONDS)

    def _leaves_for_good(self) -> bool:
        leaving = self.options.leaving
        if self._failed or leaving is None or not self.options.group_instance_id:
            return False
        try:
            return leaving()
        except Exception as exc:  # noqa: BLE001 - the user's callable; stopping must close everything anyway
            log.error("group %s: leaving() raised, staying a member until session.timeout.ms: %r", self.group, exc)
            return False

    # -- rebalancing -----------------------------------------------------------------------------

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        log.info("group %s: assigned partitions %s", self.group, sorted({tp.partition for tp in partitions}))
        if not self.incremental:
            consumer.assign(partitions)
            numbers = sorted({tp.partition for tp in partitions})
            paused = set(self.assignment.assign(numbers))
            if paused:
                consumer.pause([tp for tp in partitions if tp.partition in paused])
            self.assignment.release_unowned()
            return
        # Incremental (group.protocol=consumer): partitions arrive in addition to those kept. A number whose
        # partitions of other consumed topics are not here yet waits, paused, for them.
        consumer.incremental_assign(partitions)
        numbers = self.assignment.own((tp.topic, tp.partition) for tp in partitions)
        paused = set(self.assignment.assign(numbers))
        waiting = [tp for tp in partitions if tp.partition not in self.runs or tp.partition in paused]
        if waiting:
            consumer.pause(waiting)
        started = [TopicPartition(topic, number) for number in numbers if number not in paused
                   for topic in self.consumed]
        if started:
            resume(consumer, started)
        self.assignment.release_unowned()

    def _handle_events(self) -> None:
        """Resume the partitions whose tables caught up, processing first what was held back for them."""
        recovered: list[TopicPartition] = []
        for run in self.assignment.ready():
            log.info("group %s: partition %d recovered", self.group, run.partition)
            if run.held:
                held, run.held = run.held, []
                self._process_batch(held)
            recovered.extend(TopicPartition(topic, run.partition) for topic in self.consumed)
        if recovered:
            # Together: resuming asks their leaders for end offsets, one round trip for all.
            resume(self.consumer, recovered)

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        log.info("group %s: revoked partitions %s", self.group, sorted({tp.partition for tp in partitions}))
        leaving = self.assignment.disown((tp.topic, tp.partition) for tp in partitions) if self.incremental \
            else list(self.runs)
        if not self._failed:
            self.checkpointer.revoke(keeping=len(leaving) < len(self.runs))
            committed = {f"{topic}/{run.partition}": offset for run in self.runs.values()
                         for topic, offset in sorted(run.committed.items())}
            log.info("group %s: committed when giving partitions up: %s", self.group, committed or "nothing")
        if not self.incremental:
            self._deactivate()
            return
        self.assignment.deactivate(leaving)
        self.visits.abort("interrupted by a rebalance")
        consumer.incremental_unassign(partitions)
        # Partitions of other topics of a number given up stay idle until the group takes them too.
        idle = [TopicPartition(topic, number) for topic, number in self.assignment.owned if number in leaving]
        if idle:
            consumer.pause(idle)
        self.assignment.release_unowned()

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        log.warning("group %s: lost partitions %s", self.group, sorted({tp.partition for tp in partitions}))
        # The group lost this instance (all its partitions, with either protocol): it rejoins from scratch.
        self.assignment.disown(list(self.assignment.owned))
        if self._failed:
            # Stopping anyway (the consumer closes after a failure): only drop what was not stored.
            self.checkpointer.discard_tables()
        else:
            self.checkpointer.lost()
        self._deactivate()

    def _deactivate(self) -> None:
        self.assignment.deactivate(list(self.runs))
        self.visits.abort("interrupted by a rebalance")

    # -- processing ------------------------------------------------------------------------------

    def _process_batch(self, messages: list[Any]) -> None:
        # This loop runs once per message, so the per-message work is inlined and what it reads of self
        # is bound to locals once per batch (the hot path of every processor, see bench/clickcount.py).
        runs = self.assignment.runs
        # Messages of a recovering partition were fetched before it was paused: processed once it recovered.
        # Resuming fetches after the last message returned, so nothing is read twice; seeking back instead
        # would race librdkafka's own positioning of a partition it has just assigned.
        active = {number: run for number, run in runs.items() if not run.recovering}
        callbacks = self.callbacks
        nil = self.nil
        # Offsets are recorded once per stretch of messages of one partition and topic (see _processed).
        stretch: PartitionRun | None = None
        stretch_topic = ""
        first = last = count = 0
        try:
            for message in messages:
                if message.error() is not None:
                    self._consumer_error(message.error())
                    continue
                number = message.partition()
                run = active.get(number)
                if run is None:
                    held = runs.get(number)
                    if held is not None:
                        held.held.append(message)
                    continue  # else fetched before its partition was revoked: its next owner processes it
                topic = message.topic()
                offset = message.offset()
                if run is not stretch or topic != stretch_topic:
                    if count:
                        self._processed(stretch, stretch_topic, first, last, count)
                    stretch, stretch_topic, first, count = run, topic, offset, 0
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
                            decoded = None if nil is NilHandling.PROCESS else decode(codec, b"")
                    else:
                        try:
                            decoded = codec.decode(value)
                        except CodecError:
                            raise
                        except Exception as exc:
                            raise decode_error(codec, value, exc) from exc
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
                    # What came before the rejected message is processed: a failure commits it.
                    if count:
                        self._processed(stretch, stretch_topic, first, last, count)
                    first, count = offset, 0
                    self._reject(message, exc, step, codec)
                last = offset
                count += 1
        finally:
            if count:
                self._processed(stretch, stretch_topic, first, last, count)

    def _processed(self, run: PartitionRun | None, topic: str, first: int, last: int, count: int) -> None:
        assert run is not None
        if run.processed_through(topic, first, last, count):
            log.info("group %s: partition %d: processing %s from offset %d", self.group, run.partition, topic, first)
        self._uncommitted += count

    def _reject(self, message: Any, exc: BaseException, step: str, codec: Codec | None) -> None:
        """_reject stops at message, or (configured dead_letter) sends it to the dead-letter topic."""
        mode = self.options.on_decode_error if step == "decode" else self.options.on_callback_error
        cause = exc.error if isinstance(exc, Failure) else exc
        # A failure inside finish() may have applied part of the effects: only stopping keeps them consistent.
        # A damaged local store is no fault of the message: dead-lettering would drop every message of it.
        if mode != DEAD_LETTER or step == "finish" or isinstance(cause, StorageError):
            self._fail_at(message, exc, step)
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

    def _fail_at(self, message: Any, exc: BaseException, step: str) -> None:
        """_fail_at commits what was processed before message, then stops with an error naming it."""
        cause = exc.error if isinstance(exc, Failure) else exc
        kind = DecodeFailedError if step == "decode" else CallbackFailedError
        error = kind(_describe(cause), exception=cause, group=self.group, topic=message.topic(),
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
                self._fail_async(CallbackFailedError(f"deferred commit failed: {_describe(error)}", exception=error,
                                                     group=self.group, topic=topic, partition=run.partition,
                                                     offset=offset))
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
        self.checkpoint_stats.record(self._last_checkpoint - started)

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
            table = self.assignment.tables.get(message.partition())
            if table is not None:
                table.acknowledged(message.offset())

    def new_producer(self, busy: threading.Thread | None = None) -> None:
        """new_producer creates the producer, or replaces it with a fresh client of the same configuration.

        busy is a thread still inside a call of the old producer: the old one is closed only after it returned.
        """
        config = self.checkpointer.producer_config(self.brokers)
        config["on_delivery"] = self._on_delivery
        config.setdefault("error_cb", self._on_producer_error)
        old, self.producer = self.producer, self.options.transport.producer(config)
        if old is not None:
            self._retire_producer(old, busy)

    def _retire_producer(self, producer: Any, busy: threading.Thread | None = None) -> None:
        """Drop a replaced producer's undelivered records and close it on a thread of its own.

        Closing aborts its transaction, which waits for the broker it lost, forever when librdkafka keeps a stale
        coordinator (confluentinc/librdkafka#5511). That abort cannot fence the new producer, whose
        init_transactions aborts the transaction anyway.
        """
        try:
            producer.purge()
        except (KafkaException, RuntimeError) as exc:
            log.warning("group %s: purging a replaced producer failed: %s", self.group, exc)

        def close() -> None:
            if busy is not None:
                # Destroying a client while another thread is inside one of its calls is undefined in librdkafka.
                busy.join()
            try:
                producer.close()
            except (KafkaException, RuntimeError) as exc:
                log.info("group %s: closing a replaced producer: %s", self.group, exc)

        threading.Thread(target=close, name=f"pygoka-close-{self.group}", daemon=True).start()

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
        if error.fatal():
            self.fatal_error = self.fatal_error or error
            self._fail_async(producer_failed(f"fatal Kafka client error: {error.str()}", error, self.group))
            return
        self._on_client_error(error)

    def _on_client_error(self, error: KafkaError) -> None:
        if error.fatal():
            self.fatal_error = self.fatal_error or error
            self._fail_async(ClientFailedError(f"fatal Kafka client error: {error.str()}", group=self.group,
                                               kafka_error=error))
        else:
            log.info("group %s: %s", self.group, error.str())

    def _consumer_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise ClientFailedError(f"fatal consumer error: {error.str()}", group=self.group, kafka_error=error)
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


def _describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    return f"{type(error).__name__}: {error}"
