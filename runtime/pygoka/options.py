"""Options of processors and views, with the defaults Goka users expect."""

from __future__ import annotations

import enum
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pygoka.kafka.transport import KAFKA, Transport
from pygoka.option_spec import OptionSpec, option, option_specs
from pygoka.storage.base import StorageBuilder

if TYPE_CHECKING:
    from pygoka.tester import Tester


class NilHandling(enum.Enum):
    """NilHandling says what a processor does with a message whose value is null (a tombstone)."""

    #: IGNORE commits the message without calling the callback (Goka's default, B31).
    IGNORE = "ignore"
    #: PROCESS calls the callback with None, without decoding.
    PROCESS = "process"
    #: DECODE passes the empty value to the codec and calls the callback with the result.
    DECODE = "decode"


def default_state_dir(name: str) -> Path:
    """default_state_dir is $PYGOKA_STATE_DIR, or a directory named after name in the temp dir."""
    configured = os.environ.get("PYGOKA_STATE_DIR")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / "pygoka" / name


#: ERROR_MODES are the values of on_decode_error and on_callback_error.
ERROR_MODES = ("fail", "dead_letter")
#: AT_LEAST_ONCE is the guarantee of Goka: after a crash, the last uncommitted messages are processed again.
AT_LEAST_ONCE = "at_least_once"
#: EXACTLY_ONCE commits input offsets, table updates, loopbacks and outputs atomically in Kafka transactions.
EXACTLY_ONCE = "exactly_once"
#: GUARANTEES are the values of the guarantee option.
GUARANTEES = (AT_LEAST_ONCE, EXACTLY_ONCE)
_NIL = tuple(mode.value for mode in NilHandling)


@dataclass
class ProcessorOptions:
    """ProcessorOptions configure a Processor; each is also a keyword argument of Processor.

    Each field's OptionSpec (pygoka.option_spec) also names it as a `pygoka run` flag, a PYGOKA_* variable and a
    key of a ProcessorGroup's spec, and holds the constraints checked here and by the API server.
    """

    state_dir: str | os.PathLike[str] | None = option(
        None, kind="str", place="pod",
        help="Directory of one RocksDB per table partition (default $PYGOKA_STATE_DIR or /tmp/pygoka/<group>).")
    storage_builder: StorageBuilder | None = option(
        None, place="python", help="Replaces RocksDB storage (e.g. MemoryStorageBuilder()).")
    hot_standby: bool = option(
        False, kind="bool", help="Keep every partition of the group table up to date, not only the active ones.")
    recover_ahead: bool = option(
        False, kind="bool", help="Recover every partition of the group table before joining the consumer group.")
    nil_handling: NilHandling | str = option(
        NilHandling.IGNORE, kind="str", choices=_NIL,
        help="What a message with a null value does: ignore (skip it), process (callback gets None), decode.")
    producer_config: dict[str, Any] = option(
        factory=dict, kind="map", help="librdkafka producer settings, merged over pygoka's.")
    consumer_config: dict[str, Any] = option(
        factory=dict, kind="map", help="librdkafka consumer settings, merged over pygoka's.")
    group_instance_id: str | None = option(
        None, kind="str", place="pod", name="instance_id",
        help="Static group membership id, stable and unique per instance (the operator uses the pod name).")
    commit_interval: float | None = option(
        None, kind="float", minimum=0, exclusive=True,
        help="Seconds between checkpoints (default 1, or 0.1 with exactly_once).")
    max_uncommitted: int = option(
        50_000, kind="int", minimum=1, help="Messages processed after which a checkpoint runs in any case.")
    partitions: int | None = option(
        None, kind="int", minimum=1, place="topics",
        help="Partition count topics are created with (default: that of the group's existing topics).")
    default_partitions: int = option(
        10, kind="int", minimum=1, place="topics",
        help="Partition count when partitions is unset and none of the group's topics exists.")
    replication_factor: int = option(
        -1, kind="int", minimum=-1, place="topics", help="Replication factor of created topics (-1: broker default).")
    table_config: dict[str, str] = option(
        factory=dict, kind="map", place="topics", help="Extra topic settings of a created group table.")
    batch_size: int = option(2000, kind="int", minimum=1, help="Most messages taken from the consumer at once.")
    transport: Transport = option(KAFKA, place="python", help="Builds the Kafka clients; the tester replaces it.")
    tester: Tester | None = option(
        None, place="python", help="Runs the processor in a pygoka.tester.Tester (transport and storage from it).")
    on_decode_error: str = option(
        "fail", kind="str", choices=ERROR_MODES,
        help="An undecodable input message: fail (stop) or dead_letter (send it to dead_letter_topic).")
    on_callback_error: str = option(
        "fail", kind="str", choices=ERROR_MODES,
        help="A callback that raises: fail (stop) or dead_letter (send the input message to dead_letter_topic).")
    dead_letter_topic: str | None = option(
        None, kind="str", help="Topic of dead-lettered input messages (default '<group>-dead-letter').")
    guarantee: str = option(
        AT_LEAST_ONCE, kind="str", choices=GUARANTEES,
        help="Delivery guarantee: at_least_once (Goka's) or exactly_once (Kafka transactions).")
    transactional_id: str | None = option(
        None, kind="str", place="pod",
        help="transactional.id of the exactly-once producer (default '<group>-<instance id>').")
    max_outage: float = option(
        300.0, kind="float", minimum=0, exclusive=True,
        help="Seconds Kafka may be unreachable with work pending before the processor fails.")
    leaving: Callable[[], bool] | None = option(
        None, place="python",
        help="Asked when run() stops cleanly: True when this instance is gone for good (a pod scaled in), so a "
             "static member leaves its group at once instead of holding its partitions for session.timeout.ms.")

    def __post_init__(self) -> None:
        for spec in OPTIONS:
            spec.check(getattr(self, spec.field))

    @property
    def checkpoint_interval(self) -> float:
        """checkpoint_interval is commit_interval, by default 1 s, or 0.1 s with exactly-once (as Kafka Streams):
        a transaction's outputs are invisible until it commits."""
        if self.commit_interval is not None:
            return self.commit_interval
        return 0.1 if self.exactly_once else 1.0

    @property
    def exactly_once(self) -> bool:
        """exactly_once tells whether the processor commits in Kafka transactions."""
        return self.guarantee == EXACTLY_ONCE

    def nil(self) -> NilHandling:
        """nil is nil_handling as a NilHandling."""
        return NilHandling(self.nil_handling)


#: OPTIONS are the OptionSpecs of ProcessorOptions' fields, in field order.
OPTIONS = tuple(option_specs(ProcessorOptions))


def option_named(field: str) -> OptionSpec:
    """option_named is the OptionSpec of the ProcessorOptions field called field."""
    return next(spec for spec in OPTIONS if spec.field == field)
