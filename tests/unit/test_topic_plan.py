"""The co-partitioning rule as pure functions (pygoka.topic_plan), shared by the runtime, CLI and operator."""

from __future__ import annotations

import pytest
from pygoka.errors import MissingTopicError, NotCompactedError, NotCopartitionedError
from pygoka.tester.broker import Broker
from pygoka.tester.topic_manager import MemoryTopicManager
from pygoka.topic_manager import ensure_topics
from pygoka.topic_plan import TopicInfo, check_topics, group_topics, partition_count

PLAN = group_topics("g", inputs=["clicks", "clicks"], loop=True, joins=["users"], persist=True, outputs=["out"],
                    dead_letter="g-dead", table_config={"segment.ms": "1000"})


def test_the_plan_lists_each_topic_once_with_its_role_and_settings() -> None:
    assert [(t.name, t.role) for t in PLAN] == [("clicks", "input"), ("g-loop", "loop"), ("users", "join"),
                                               ("g-table", "table"), ("out", "output"), ("g-dead", "dead_letter")]
    table = PLAN[3]
    assert table.config == {"segment.ms": "1000", "cleanup.policy": "compact"}
    assert (table.owned, table.creatable, table.copartitioned) == (True, True, True)
    assert (PLAN[2].creatable, PLAN[4].copartitioned, PLAN[0].owned) == (False, False, False)
    # A table that also expires old records (retention) keeps the policy it was configured with.
    (table,) = [t for t in group_topics("g", persist=True, table_config={"cleanup.policy": "compact,delete"})]
    assert table.config == {"cleanup.policy": "compact,delete"}


def test_the_count_is_the_given_one_else_the_first_existing_co_partitioned_else_the_default() -> None:
    assert partition_count(PLAN, {"users": TopicInfo(6)}, 3, 8) == 3
    assert partition_count(PLAN, {"out": TopicInfo(2), "users": TopicInfo(6), "g-table": TopicInfo(5)}, None, 8) == 6
    assert partition_count(PLAN, {"out": TopicInfo(2)}, None, 8) == 8


def test_problems_name_the_topic_and_both_counts() -> None:
    observed = {"clicks": TopicInfo(4), "users": TopicInfo(2), "g-table": TopicInfo(4, "delete"),
                "out": TopicInfo(1)}
    check = check_topics(PLAN, observed, 4)
    assert [type(p) for p in check.problems] == [NotCopartitionedError, NotCompactedError]
    assert str(check.problems[0]) == "topics are not copartitioned! topic 'users' has 2 partitions, expected 4"
    assert str(check.problems[1]) == "table topic 'g-table' has cleanup.policy=delete, expected compact"
    assert [t.name for t in check.missing] == ["g-loop", "g-dead"]
    assert not check.ready
    assert check_topics(PLAN, {"g-table": TopicInfo(4, "compact,delete")}, 4).problems == []


def test_ensure_topics_creates_the_missing_ones_and_refuses_a_missing_join() -> None:
    broker = Broker(default_partitions=1)
    manager = MemoryTopicManager(broker)
    with pytest.raises(MissingTopicError, match="joined table 'users' does not exist"):
        ensure_topics(manager, PLAN, default_partitions=3)
    assert manager.describe([t.name for t in PLAN]) == {}
    broker.ensure_topic("users", 3, compacted=True)
    assert ensure_topics(manager, PLAN, default_partitions=8) == 3
    assert {name: info.partitions for name, info in manager.describe([t.name for t in PLAN]).items()} == {
        "clicks": 3, "g-loop": 3, "users": 3, "g-table": 3, "out": 3, "g-dead": 3}
    assert manager.describe(["g-table"])["g-table"].cleanup_policy == "compact"
