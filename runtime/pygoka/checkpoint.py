"""Checkpoints: how a processor makes what it processed durable, per delivery guarantee.

At-least-once (Goka's): flush the producer, store the tables, commit the input offsets. Exactly-once:
flush the producer, commit the input offsets inside the producer's Kafka transaction, and only after the
transaction committed store the tables, so the local RocksDB never gets ahead of Kafka.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import OFFSET_END, KafkaError, KafkaException, TopicPartition

from pygoka.errors import (
    ClientFailedError,
    DeliveryError,
    FencedError,
    OutageError,
    ProcessingError,
    ProducerFailedError,
    TransactionExpiredError,
)
from pygoka.kafka.config import Config, producer_config, transactional_producer_config
from pygoka.options import ProcessorOptions
from pygoka.partition import PartitionRun
from pygoka.table import PartitionTable

log = logging.getLogger("pygoka.processor")

# Commit errors after which the group rebalances; the next owner resumes from the last commit.
_REBALANCE_ERRORS = {
    KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID, KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError._NO_OFFSET, KafkaError._STATE,
}
# Errors of an unreachable broker or coordinator: retried until max_outage.
_TRANSIENT_ERRORS = {
    KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._WAIT_COORD, KafkaError._ALL_BROKERS_DOWN,
    KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR, KafkaError.REQUEST_TIMED_OUT,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.NETWORK_EXCEPTION, KafkaError._MSG_TIMED_OUT,
    KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT, KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE, KafkaError.NOT_ENOUGH_REPLICAS,
    KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
}
#: _FENCED are the codes of a transactional producer fenced by a newer one with its transactional id.
_FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
# What a commit racing the broker's own abort of a timed-out transaction gets before KAFKA-20785's fix.
_EXPIRED = {*_FENCED, KafkaError.INVALID_TXN_STATE}
# How long one transactional call may block before it is retried (and max_outage checked), at most.
_CALL_TIMEOUT = 10.0
# How much longer than its own timeout a librdkafka call may block before it counts as hung (#5456).
_HUNG_GRACE = 5.0
# How long asking for the table topic partitions' end offsets may take (after a flush Kafka answered).
_WATERMARK_TIMEOUT = 2.0


#: Upper bounds (seconds) of the checkpoint duration histogram exported by pygoka.web at /metrics.
CHECKPOINT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class CheckpointStats:
    """CheckpointStats are the durations of a run's checkpoints: the last one, and counted per bucket."""

    #: last_seconds is how long the last checkpoint took.
    last_seconds: float = 0.0
    #: counts are the checkpoints per bucket of CHECKPOINT_BUCKETS (the last counts those above them all).
    counts: list[int] = field(default_factory=lambda: [0] * (len(CHECKPOINT_BUCKETS) + 1))
    #: seconds_sum is the time all checkpoints took.
    seconds_sum: float = 0.0

    def record(self, seconds: float) -> None:
        """record adds a checkpoint that took seconds."""
        self.last_seconds = seconds
        self.counts[bisect.bisect_left(CHECKPOINT_BUCKETS, seconds)] += 1
        self.seconds_sum += seconds


class CheckpointHost(Protocol):
    """CheckpointHost is what a checkpointer needs from the group runner."""

    group: str
    producer: Any
    consumer: Any
    consumed: list[str]
    #: watermarks is a consumer used only to ask for end offsets (None without a group table).
    watermarks: Any
    #: fatal_error is the fatal client error an error callback reported, if any.
    fatal_error: KafkaError | None

    @property
    def runs(self) -> dict[int, PartitionRun]:
        """runs are the active partitions by number."""
        ...

    def take_delivery_failure(self) -> tuple[KafkaError, str, int] | None:
        """take_delivery_failure returns and clears the first failed delivery (error, topic, partition)."""
        ...

    def new_producer(self, busy: threading.Thread | None = None) -> None:
        """new_producer replaces the producer with a fresh client of the same configuration.

        busy is a thread still inside a call of the old producer: the old one is closed only after it returned.
        """
        ...

    def rewound(self, reason: str) -> None:
        """rewound tells the runner that uncommitted work was dropped and will be processed again."""
        ...


class Checkpointer:
    """Checkpointer commits a runner's progress; see AtLeastOnce and ExactlyOnce."""

    def __init__(self, host: CheckpointHost, options: ProcessorOptions) -> None:
        self.host = host
        self.options = options
        self._trouble_since: float | None = None

    def producer_config(self, brokers: str) -> Config:
        """producer_config is the configuration of the runner's producer."""
        config = producer_config(brokers, self.options.producer_config)
        config.setdefault("message.timeout.ms", int(self.options.max_outage * 1000))
        config.setdefault("delivery.report.only.error", True)
        return config

    def start(self) -> None:
        """start prepares the producer (exactly-once: fences older instances, begins a transaction)."""

    def connection_lost(self) -> None:
        """connection_lost tells that the producer lost every broker connection (called by its error callback)."""

    def checkpoint(self) -> bool:
        """checkpoint commits what was processed; False means a commit is still due (retried later)."""
        raise NotImplementedError

    def revoke(self, *, keeping: bool = False) -> None:
        """revoke commits before partitions are given up; what cannot be committed is dropped.

        keeping tells that other partitions stay active (an incremental rebalance): what they processed
        is then processed again if dropped.
        """
        if not self.checkpoint():
            self.discard_tables()

    def lost(self) -> None:
        """lost drops what was not committed: the partitions already belong to another instance."""
        self.discard_tables()

    def fail(self) -> None:
        """fail makes durable what may be kept before the processor stops with an error."""

    def close(self, failed: bool) -> None:
        """close ends the producer's part in a run (exactly-once: aborts an open transaction on failure)."""

    def discard_tables(self) -> None:
        """discard_tables drops the table updates of active partitions not yet stored."""
        for run in self.host.runs.values():
            if run.table is not None:
                run.table.discard()

    def serve(self, call: Callable[[float], int], timeout: float) -> int:
        """serve runs the producer's poll or flush, turning a fatal client error into a ProcessingError."""
        try:
            return call(timeout)
        except KafkaException as exc:
            raise self._fatal(exc.args[0]) from exc
        except SystemError as exc:
            # After a fatal client error, confluent-kafka's poll/flush may still run a callback with the error
            # set, or return without one: Python reports a SystemError. The error itself is the client's.
            cause = exc.__cause__
            if isinstance(cause, KafkaException):
                raise self._fatal(cause.args[0]) from cause
            raise self._fatal(self._client_failure(exc)) from exc

    def _client_failure(self, exc: SystemError) -> KafkaError | str:
        """_client_failure is the fatal error behind a SystemError of the producer, as far as it is known."""
        if self.host.fatal_error is None:
            # The error callback reporting it may still be queued: serve it.
            with contextlib.suppress(KafkaException, SystemError):
                self.host.producer.poll(0)
        fatal = self.host.fatal_error
        return fatal if fatal is not None else f"client failed: {exc}"

    def _fatal(self, error: KafkaError | str) -> ProducerFailedError:
        return producer_failed(f"producer failed: {_text(error)}", error, self.host.group)

    def _flush(self) -> tuple[KafkaError, str, int] | None:
        """_flush waits until every record is acknowledged or one failed, returning the first failure."""
        while self.serve(self.host.producer.flush, 1.0) > 0:
            failure = self.host.take_delivery_failure()
            if failure is not None:
                return failure
        return self.host.take_delivery_failure()

    def _pending_offsets(self) -> tuple[list[TopicPartition], list[tuple[PartitionRun, dict[str, int]]]]:
        offsets: list[TopicPartition] = []
        pending: list[tuple[PartitionRun, dict[str, int]]] = []
        for run in self.host.runs.values():
            commit = run.commit_offsets()
            if commit:
                pending.append((run, commit))
                offsets.extend(TopicPartition(topic, run.partition, offset) for topic, offset in commit.items())
        return offsets, pending

    def _store_tables(self) -> None:
        """_store_tables writes the tables' updates, which Kafka has acknowledged, with their table offsets."""
        tables = [run.table for run in self.host.runs.values() if run.table is not None]
        self._mark_table_ends([table for table in tables if table.dirty_count()])
        for table in tables:
            table.flush()

    def _mark_table_ends(self, tables: list[PartitionTable]) -> None:
        """_mark_table_ends gives each table the offset of its table topic partition's last record.

        The producer reports only failed deliveries (a report per record costs a sixth of a processor's
        time), so the offsets are asked of the broker once the producer is flushed (exactly-once: once the
        transaction committed), in one request for all tables (one per table was most of a checkpoint):
        every record of a partition up to there is an update of this owner, or a transaction marker. A
        lower offset would be safe too: recovery replays the table topic from it, ending in the same values.
        A table whose offset the broker does not tell keeps its previous one.
        """
        if not tables:
            return
        partitions = [TopicPartition(table.topic, table.partition, OFFSET_END) for table in tables]
        try:
            ends = self.host.watermarks.offsets_for_times(partitions, timeout=_WATERMARK_TIMEOUT)
        except KafkaException as exc:
            log.info("group %s: end offsets of the table partitions unknown (%s); their tables keep their "
                     "previous offsets", self.host.group, exc.args[0].str())
            return
        for table, end in zip(tables, ends, strict=True):
            if end.error is not None:
                log.info("group %s: end offset of %s/%d unknown (%s); its table keeps its previous offset",
                         self.host.group, table.topic, table.partition, end.error.str())
            elif end.offset > 0:
                table.acknowledged(end.offset - 1)

    def _trouble(self, started: float, error: KafkaError | str, what: str = "") -> None:
        """_trouble notes a transient failure (what: of what); it raises OutageError once Kafka has failed us for
        longer than max_outage."""
        if self._trouble_since is None:
            self._trouble_since = started
        lasted = time.monotonic() - self._trouble_since
        text = what + _text(error)
        if lasted > self.options.max_outage:
            raise OutageError(f"Kafka failed for {lasted:.0f} s, longer than max_outage "
                              f"({self.options.max_outage:g} s): {text}", group=self.host.group,
                              kafka_error=None if isinstance(error, str) else error)
        log.warning("group %s: %s (retrying; failing for %.0f s of max_outage %g s)", self.host.group, text,
                    lasted, self.options.max_outage)

    def _succeeded(self) -> None:
        if self._trouble_since is not None:
            log.info("group %s: Kafka is back after %.0f s", self.host.group, time.monotonic() - self._trouble_since)
        self._trouble_since = None


class AtLeastOnce(Checkpointer):
    """AtLeastOnce flushes the producer, stores the tables, then commits the input offsets (Goka's order)."""

    def checkpoint(self) -> bool:
        started = time.monotonic()
        failure = self._flush()
        if failure is not None:
            error, topic, partition = failure
            # message.timeout.ms is max_outage: a record that timed out waited that long for Kafka.
            reason = f"Kafka did not acknowledge a record within max_outage ({self.options.max_outage:g} s): " \
                if error.code() == KafkaError._MSG_TIMED_OUT else ""
            raise DeliveryError(f"producing a record failed: {reason}{error.str()}", group=self.host.group,
                                topic=topic, partition=partition, kafka_error=error)
        self._store_tables()
        offsets, pending = self._pending_offsets()
        if not offsets:
            return True
        if not self._commit(offsets, started):
            return False
        for run, commit in pending:
            run.committed_offsets(commit)
        self._succeeded()
        return True

    def fail(self) -> None:
        # The messages before the failing one were processed completely: commit them (B12).
        try:
            self.checkpoint()
        except ProcessingError as error:
            log.error("group %s: checkpoint before stopping failed: %s", self.host.group, error)

    def _commit(self, offsets: list[TopicPartition], started: float) -> bool:
        try:
            results = self.host.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if not error.fatal() and error.code() in _REBALANCE_ERRORS:
                log.warning("group %s: commit deferred to the next checkpoint: %s", self.host.group, error.str())
                return False
            if not error.fatal() and error.code() in _TRANSIENT_ERRORS:
                self._trouble(started, error, "commit deferred to the next checkpoint: ")
                return False
            raise ClientFailedError(f"cannot commit offsets: {error.str()}", group=self.host.group,
                                    kafka_error=error) from exc
        for result in results or []:
            if result.error is not None:
                log.warning("group %s: commit of %s/%d failed: %s", self.host.group, result.topic,
                            result.partition, result.error)
                return False
        return True


class _Abort(Exception):
    """_Abort carries the reason a transaction has to be aborted out of a transactional call."""


class ExactlyOnce(Checkpointer):
    """ExactlyOnce commits input offsets and every produced record in one Kafka transaction per checkpoint.

    Tables are stored only after their transaction committed. When a transaction fails (a broker outage
    longer than the transaction timeout, a rebalance during the commit), it is aborted, the unstored table
    updates are dropped and the active partitions are sought back to their last committed offsets, so the
    messages are processed again as if for the first time.
    """

    def __init__(self, host: CheckpointHost, options: ProcessorOptions) -> None:
        super().__init__(host, options)
        self.transactional_id = options.transactional_id or default_transactional_id(
            host.group, options.group_instance_id)
        self._in_transaction = False
        # Set when the producer lost every broker: librdkafka may then wait forever for a group coordinator it
        # still caches (confluentinc/librdkafka#5456, #5511), so the transaction is redone with a new producer.
        self._reconnect = False
        # Short enough that an outage is noticed within a quarter of max_outage of its limit.
        self._call_timeout = max(1.0, min(_CALL_TIMEOUT, options.max_outage / 4))
        # A thread left inside a hung call of the current producer, which is replaced (see _send_offsets).
        self._hung: threading.Thread | None = None

    def producer_config(self, brokers: str) -> Config:
        config = transactional_producer_config(brokers, self.transactional_id, self.options.max_outage,
                                               self.options.producer_config)
        config.setdefault("delivery.report.only.error", True)
        return config

    def _fatal(self, error: KafkaError | str) -> ProducerFailedError:
        text = f"transactional producer '{self.transactional_id}' failed: {_text(error)}"
        if not isinstance(error, str) and error.code() in _EXPIRED and self._in_outage():
            # Not a newer instance: the broker aborted the transaction that outlived the outage (KIP-890 bumps
            # the epoch). A newer instance's fencing outside an outage still stops the processor.
            return TransactionExpiredError(f"{text} (after an outage: the broker aborted the transaction, "
                                           "which outlived transaction.timeout.ms)", group=self.host.group,
                                           kafka_error=error)
        return producer_failed(text, error, self.host.group)

    def _in_outage(self) -> bool:
        """_in_outage tells whether a call of this transaction failed for want of Kafka, or every broker was lost."""
        return self._trouble_since is not None or self._reconnect

    def _client_failure(self, exc: SystemError) -> KafkaError | str:
        # A transactional call reports the producer's fatal error (a fencing, typically) as its own.
        try:
            self.host.producer.abort_transaction(0.1)
        except KafkaException as error:
            if error.args[0].fatal():
                fatal: KafkaError = error.args[0]
                return fatal
        except SystemError:
            pass
        return super()._client_failure(exc)

    def start(self) -> None:
        started = time.monotonic()
        # Fences any older producer with this transactional id and aborts its open transaction.
        self._call(self.host.producer.init_transactions, started)
        log.info("group %s: exactly-once with transactional id %s", self.host.group, self.transactional_id)
        self._succeeded()
        self._begin()

    def checkpoint(self) -> bool:
        return self._commit_or_abort(rewind=True)

    def revoke(self, *, keeping: bool = False) -> None:
        # The partitions leaving: their next owner processes what an abort drops. Those staying are rewound.
        self._commit_or_abort(rewind=keeping)

    def _commit_or_abort(self, *, rewind: bool) -> bool:
        started = time.monotonic()
        try:
            self._commit_transaction(started)
        except _Abort as reason:
            self._abort(str(reason), started, rewind=rewind)
            return False
        return True

    def connection_lost(self) -> None:
        self._reconnect = True

    def _commit_transaction(self, started: float) -> None:
        if self._reconnect:
            raise _Abort("the producer lost every broker during the transaction")
        failure = self._flush()
        if failure is not None:
            error, topic, partition = failure
            if not _transient(error):
                raise DeliveryError(f"producing a record failed: {error.str()}", group=self.host.group,
                                    topic=topic, partition=partition, kafka_error=error)
            raise _Abort(f"producing to {topic}/{partition} failed: {error.str()}")
        offsets, pending = self._pending_offsets()
        if offsets:
            metadata = self.host.consumer.consumer_group_metadata()
            self._call(lambda timeout: self._send_offsets(offsets, metadata, timeout), started, redo_on_timeout=True)
        self._call(self.host.producer.commit_transaction, started)
        self._in_transaction = False
        # Only now may the tables get what the transaction wrote to the table topic.
        self._store_tables()
        for run, commit in pending:
            run.committed_offsets(commit)
        self._succeeded()
        self._begin()

    def lost(self) -> None:
        self._abort("partitions lost", time.monotonic(), rewind=False)

    def fail(self) -> None:
        # The failing message's effects may be partly produced: only an abort keeps the group exact.
        self._abort_quietly()

    def close(self, failed: bool) -> None:
        if failed:
            self._abort_quietly()

    def _begin(self) -> None:
        self.host.producer.begin_transaction()
        self._in_transaction = True

    def _abort_quietly(self) -> None:
        if not self._in_transaction:
            return
        self._in_transaction = False
        try:
            self.host.producer.abort_transaction(self._call_timeout)
        except KafkaException as exc:
            # Stopping anyway: the transaction times out on the broker, and nothing of it is ever read.
            log.warning("group %s: aborting the transaction failed: %s", self.host.group, exc.args[0].str())
        self.discard_tables()

    def _abort(self, reason: str, started: float, *, rewind: bool) -> None:
        log.warning("group %s: aborting the transaction: %s", self.host.group, reason)
        self._end_transaction(started)
        if rewind:
            self._rewind()
        self.host.rewound(reason)
        self._begin()
        self._trouble(started, reason)

    def _end_transaction(self, started: float) -> None:
        """_end_transaction aborts the open transaction (with a new producer if need be) and drops its effects."""
        if not self._reconnect:
            try:
                self.host.producer.abort_transaction(self._call_timeout)
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.fatal():
                    raise self._fatal(error) from exc
                # After an outage librdkafka may wait forever for a coordinator it still caches
                # (confluentinc/librdkafka#5456, #5511), also when no error said every broker was down.
                log.warning("group %s: aborting failed (%s): a new producer aborts it instead", self.host.group,
                            error.str())
                self._reconnect = True
            else:
                # Delivery reports of the aborted records must not reach the tables after they were discarded.
                self.serve(self.host.producer.poll, 0)
        if self._reconnect:
            # The new producer's init_transactions aborts the old one's transaction on the broker.
            busy, self._hung = self._hung, None
            self.host.new_producer(busy)
            self._call(self.host.producer.init_transactions, started)
            self._reconnect = False
        self._in_transaction = False
        self.host.take_delivery_failure()
        self.discard_tables()

    def _send_offsets(self, offsets: list[TopicPartition], metadata: Any, timeout: float) -> None:
        """_send_offsets sends the input offsets into the transaction, giving up on a call that ignores timeout.

        After a broker crash librdkafka may wait forever for a group coordinator it still caches, past the
        call's timeout (confluentinc/librdkafka#5456, #5511): the call then runs on a thread of its own, which is
        left behind once it overran; the _TIMED_OUT raised here has the transaction redone with a new producer.
        The new producer's init_transactions fences the old one, so what the stuck call may still send is refused.
        """
        producer = self.host.producer
        outcome: list[BaseException | None] = []

        def send() -> None:
            try:
                producer.send_offsets_to_transaction(offsets, metadata, timeout)
            except BaseException as exc:  # noqa: BLE001 - handed to the checkpointer's thread, which raises it
                outcome.append(exc)
            else:
                outcome.append(None)

        thread = threading.Thread(target=send, name=f"pygoka-send-offsets-{self.host.group}", daemon=True)
        thread.start()
        thread.join(timeout + _HUNG_GRACE)
        if thread.is_alive():
            self._hung = thread
            log.warning("group %s: sending the offsets into the transaction did not return within %g s "
                        "(confluentinc/librdkafka#5456): a new producer redoes the transaction", self.host.group,
                        timeout + _HUNG_GRACE)
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "send_offsets_to_transaction hung past its "
                                            f"timeout ({timeout:g} s)", retriable=True))
        error = outcome[0]
        if error is not None:
            raise error

    def _rewind(self) -> None:
        """Seek every active partition back to its last committed offset, to process it again.

        Before the first commit of an assignment, that is where consumption started: the offset of the
        first message processed (the group's committed offset then, or where auto.offset.reset put it).
        """
        consumer = self.host.consumer
        for run in self.host.runs.values():
            if run.recovering:
                continue
            for topic in list(run.next_offsets):
                offset = run.committed.get(topic, run.first_offsets[topic])
                consumer.seek(TopicPartition(topic, run.partition, offset))
            run.rewind()

    def _call(self, call: Callable[[float], Any], started: float, *, redo_on_timeout: bool = False) -> Any:
        """_call runs a transactional producer call, retrying what is retriable until max_outage.

        redo_on_timeout aborts the transaction with a new producer when the call times out instead: a call that
        cannot have committed anything (sending offsets), whose retries librdkafka may time out for good.
        """
        while True:
            try:
                return call(self._call_timeout)
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.fatal():
                    raise self._fatal(error) from exc
                if error.txn_requires_abort():
                    raise _Abort(error.str()) from exc
                if not error.retriable() and error.code() not in _TRANSIENT_ERRORS:
                    raise self._fatal(error) from exc
                if redo_on_timeout and error.code() == KafkaError._TIMED_OUT:
                    # After an outage librdkafka may keep asking a coordinator it still caches and time out every
                    # retry (confluentinc/librdkafka#5456, #5511): a new producer aborts the transaction instead.
                    self._reconnect = True
                    raise _Abort(error.str()) from exc
                self._trouble(started, error)


def default_transactional_id(group: str, instance_id: str | None) -> str:
    """default_transactional_id is stable per instance when it has a static membership id (a pod name).

    Without one it is unique per processor, so that two processors of a group never fence each other.
    """
    if instance_id:
        return f"{group}-{instance_id}"
    return f"{group}-{socket.gethostname()}-{uuid.uuid4().hex[:12]}"


def checkpointer_for(host: CheckpointHost, options: ProcessorOptions) -> Checkpointer:
    """checkpointer_for is the checkpointer of the processor's guarantee."""
    return ExactlyOnce(host, options) if options.exactly_once else AtLeastOnce(host, options)


def _transient(error: KafkaError) -> bool:
    return bool(error.retriable() or error.txn_requires_abort()) or error.code() in _TRANSIENT_ERRORS


def _text(error: KafkaError | str) -> str:
    return error if isinstance(error, str) else str(error.str())


def producer_failed(message: str, error: KafkaError | str, group: str) -> ProducerFailedError:
    """producer_failed is the error of a failed producer: FencedError when a newer producer fenced it."""
    kafka_error = None if isinstance(error, str) else error
    kind = FencedError if kafka_error is not None and kafka_error.code() in _FENCED else ProducerFailedError
    return kind(message, group=group, kafka_error=kafka_error)
