"""Options of processors and views, with the defaults Goka users expect."""

from __future__ import annotations

import enum
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pygoka.kafka.transport import KAFKA, Transport
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


#: The values of on_decode_error and on_callback_error.
_ERROR_MODES = ("fail", "dead_letter")
#: AT_LEAST_ONCE is the guarantee of Goka: after a crash, the last uncommitted messages are processed again.
AT_LEAST_ONCE = "at_least_once"
#: EXACTLY_ONCE commits input offsets, table updates, loopbacks and outputs atomically in Kafka transactions.
EXACTLY_ONCE = "exactly_once"
#: GUARANTEES are the values of the guarantee option.
GUARANTEES = (AT_LEAST_ONCE, EXACTLY_ONCE)


@dataclass
class ProcessorOptions:
    """ProcessorOptions configure a Processor; each is also a keyword argument of Processor."""

    #: state_dir holds one RocksDB per table partition (default $PYGOKA_STATE_DIR or /tmp/pygoka/<group>).
    state_dir: str | os.PathLike[str] | None = None
    #: storage_builder replaces RocksDB storage (e.g. MemoryStorageBuilder()).
    storage_builder: StorageBuilder | None = None
    #: hot_standby keeps every partition of the group table up to date, not only the active ones (B16).
    hot_standby: bool = False
    #: recover_ahead recovers every partition of the group table before joining the consumer group.
    recover_ahead: bool = False
    #: nil_handling decides what happens to messages with a null value (B31).
    nil_handling: NilHandling | str = NilHandling.IGNORE
    #: producer_config is passed through to librdkafka's producer (overrides pygoka's settings).
    producer_config: dict[str, Any] = field(default_factory=dict)
    #: consumer_config is passed through to librdkafka's consumers (overrides pygoka's settings).
    consumer_config: dict[str, Any] = field(default_factory=dict)
    #: group_instance_id enables static membership (e.g. a StatefulSet pod name).
    group_instance_id: str | None = None
    #: commit_interval is the time in seconds between checkpoints (default: see checkpoint_interval).
    commit_interval: float | None = None
    #: max_uncommitted bounds the updates held in memory between checkpoints.
    max_uncommitted: int = 50_000
    #: partitions is the count topics are created with (default: that of the existing topics).
    partitions: int | None = None
    #: default_partitions is used when partitions is unset and none of the group's topics exists.
    default_partitions: int = 10
    #: replication_factor of created topics (-1: the broker's default).
    replication_factor: int = -1
    #: table_config are extra topic settings of a created group table.
    table_config: dict[str, str] = field(default_factory=dict)
    #: batch_size is the most messages taken from the consumer at once.
    batch_size: int = 2000
    #: transport builds the Kafka clients; the tester replaces it.
    transport: Transport = KAFKA
    #: tester runs the processor in a pygoka.tester.Tester: transport and storage then come from it.
    tester: Tester | None = None
    #: on_decode_error: "fail" stops on an undecodable input message, "dead_letter" sends it to dead_letter_topic.
    on_decode_error: str = "fail"
    #: on_callback_error: "fail" stops when a callback raises, "dead_letter" sends the input message on.
    on_callback_error: str = "fail"
    #: dead_letter_topic receives dead-lettered input messages (default "<group>-dead-letter").
    dead_letter_topic: str | None = None
    #: guarantee is "at_least_once" (Goka's) or "exactly_once" (Kafka transactions, see docs/guarantees.md).
    guarantee: str = AT_LEAST_ONCE
    #: transactional_id names the exactly-once producer (default "<group>-<group_instance_id>", else host and pid).
    transactional_id: str | None = None
    #: max_outage is how long (seconds) Kafka may be unreachable with work pending before run() raises.
    max_outage: float = 300.0

    def __post_init__(self) -> None:
        for name in ("on_decode_error", "on_callback_error"):
            if getattr(self, name) not in _ERROR_MODES:
                raise ValueError(f"{name} must be one of {', '.join(_ERROR_MODES)}, not {getattr(self, name)!r}")
        if self.guarantee not in GUARANTEES:
            raise ValueError(f"guarantee must be one of {', '.join(GUARANTEES)}, not {self.guarantee!r}")
        if not self.max_outage > 0:
            raise ValueError(f"max_outage must be a positive number of seconds, not {self.max_outage!r}")

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
