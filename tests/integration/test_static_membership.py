"""Static group membership (group_instance_id, e.g. a StatefulSet pod name): a quick restart keeps its partitions.

Each instance runs in its own process (tests/procs.py). An instance restarted with the same instance id and
state dir within session.timeout.ms gets the same partitions back without a rebalance, and its local RocksDB
state is reused: recovery starts after the stored offset instead of reading the table topic from the start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Names, key_on
from procs import Proc
from pygoka import Emitter, codec, group_table
from pygoka.kafka.config import admin_config
from pygoka.partitioner import partition_for
from pygoka.storage.rocksdb import RocksDBStorageBuilder
from pygoka.topic_manager import KafkaTopicManager

pytestmark = pytest.mark.kafka

PARTITIONS = 4
#: STATIC is long enough for a restart to come back within the session, short enough to notice a loss.
STATIC = {"session.timeout.ms": 10000, "heartbeat.interval.ms": 500}
#: MARKER is a count no table record holds: re-reading the table topic would overwrite it.
MARKER = 1000


def assignments(proc: Proc) -> list[str]:
    """assignments are the child's log lines about partitions it was assigned or had revoked or lost."""
    lines = proc.log_path.read_text(errors="replace").splitlines()
    return [line for line in lines if "assigned partitions" in line or "revoked partitions" in line
            or "lost partitions" in line]


@pytest.fixture
def instances(brokers: str, tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """instances builds statically joined processor instances (not started); running ones are killed at teardown."""
    built: list[Proc] = []

    def make(name: str, **spec: Any) -> Proc:
        options = {"group_instance_id": f"pod-{name}", "consumer_config": dict(STATIC), **spec.pop("options", {})}
        proc = Proc(name, tmp_path / "procs", brokers=brokers, state_dir=tmp_path / f"state-{name}",
                    options=options, **spec)
        built.append(proc)
        return proc

    yield make
    for proc in built:
        if proc.alive():
            proc.kill()


def test_quick_restart_with_the_same_instance_id_keeps_partitions_and_state(
        brokers: str, names: Names, instances: Callable[..., Proc]) -> None:
    """A restarted static member gets its partitions back, the other never sees a rebalance, state is reused."""
    clicks, group = names("clicks"), names("static")
    KafkaTopicManager(admin_config(brokers)).ensure_stream(clicks, PARTITIONS)
    keys = [key_on(partition, PARTITIONS, "user-") for partition in range(PARTITIONS)]
    a = instances("a", group=group, inputs=[clicks], keys=keys).start()
    b = instances("b", group=group, inputs=[clicks], keys=keys).start()

    def split(status: dict[str, Any], other: Proc) -> bool:
        theirs = other.status()
        return (status["recovered"] and theirs.get("recovered", False) and len(status["active"]) == 2
                and set(status["active"]) | set(theirs["active"]) == set(range(PARTITIONS)))

    a.wait(lambda s: split(s, b), message="a and b splitting the partitions")
    with Emitter(brokers, clicks, codec.String()) as emitter:
        for key in keys * 2:
            emitter.emit_sync(key, "click", timeout=30)
    a.wait(lambda s: all(v == 2 for v in s["values"].values()) and len(s["values"]) == 2, message="a's counts")
    b.wait(lambda s: all(v == 2 for v in s["values"].values()) and len(s["values"]) == 2, message="b's counts")
    a_active, b_active = a.active(), b.active()
    b_history = assignments(b)

    assert a.stop() == 0
    # A local value no table record has, on a partition of a: a full recovery would overwrite it with 2.
    marked = next(key for key in keys if partition_for(key.encode(), PARTITIONS) in a_active)
    storage = RocksDBStorageBuilder(a.spec["state_dir"])(group_table(group), partition_for(marked.encode(), PARTITIONS))
    try:
        storage.write([(marked.encode(), str(MARKER).encode())], None)
    finally:
        storage.close()
    a.start()

    def back(status: dict[str, Any]) -> bool:
        # The other instance's partitions never change while a is away and back.
        assert b.active() == b_active, f"b's partitions changed from {sorted(b_active)} to {sorted(b.active())}"
        return bool(status["recovered"]) and set(status["active"]) == a_active and marked in status["values"]

    status = a.wait(back, message="a holding its partitions again")
    assert status["values"][marked] == MARKER
    with Emitter(brokers, clicks, codec.String()) as emitter:
        emitter.emit_sync(marked, "click", timeout=30)
    a.wait(lambda s: s["values"].get(marked) == MARKER + 1, message="a counting on from its local state")
    assert b.active() == b_active
    assert assignments(b) == b_history, "b saw a rebalance"
    assert b.stop() == 0
    assert a.stop() == 0


def test_a_static_member_leaving_for_good_hands_its_partitions_over_before_its_session_ends(
        brokers: str, names: Names, instances: Callable[..., Proc]) -> None:
    """A member whose leaving() says it is gone (a pod scaled in) leaves at once; one that restarts would not.

    The session is librdkafka's default 45 s: without a LeaveGroup the other instance would get the partitions
    only once it expired, far beyond the wait here.
    """
    clicks, group = names("clicks"), names("leaving")
    KafkaTopicManager(admin_config(brokers)).ensure_stream(clicks, PARTITIONS)
    keys = [key_on(partition, PARTITIONS, "user-") for partition in range(PARTITIONS)]
    session = {"consumer_config": {"session.timeout.ms": 45000, "heartbeat.interval.ms": 500}}
    a = instances("a", group=group, inputs=[clicks], keys=keys, options=session)
    a.spec["leaves"] = True
    a.start()
    b = instances("b", group=group, inputs=[clicks], keys=keys, options=session).start()
    b.wait(lambda s: s["recovered"] and len(s["active"]) == 2 and len(a.active()) == 2,
           message="a and b splitting the partitions")
    assert a.stop() == 0
    b.wait(lambda s: s["recovered"] and set(s["active"]) == set(range(PARTITIONS)), timeout=20,
           message="b holding every partition well before a's session would have expired")
    assert "leaving the group for good" in a.log_path.read_text(errors="replace")
    assert b.stop() == 0
