"""The 3-messaging components tested with pygoka.tester: each alone, then all of them together.

    python -m pytest examples/4-tests -q
"""

from __future__ import annotations

from messaging import blocker, collector, detector, translator
from messaging import filter as message_filter
from messaging.message import (
    BlockEvent,
    BlockValue,
    BlockValueCodec,
    Counters,
    Message,
    MessageCodec,
    MessageListCodec,
    Names,
)
from pygoka import Processor, codec
from pygoka.tester import Tester

pytest_plugins = ["pygoka.testing"]

NAMES = Names()


def test_collector_keeps_the_latest_five_messages(tester: Tester) -> None:
    """The collector appends each received message to the receiver's list and keeps the last five."""
    Processor(None, collector.define(NAMES), tester=tester)

    for number in range(7):
        tester.consume(NAMES.received_stream, "bob", Message("alice", "bob", f"m{number}"))

    feed = tester.table_value(NAMES.table(collector.COMPONENT), "bob")
    assert [message.content for message in feed] == ["m2", "m3", "m4", "m5", "m6"]


def test_blocker_blocks_and_unblocks(tester: Tester) -> None:
    """The blocker's table says whether the last event blocked or unblocked a user."""
    Processor(None, blocker.define(NAMES), tester=tester)
    table = NAMES.table(blocker.COMPONENT)

    tester.consume(NAMES.block_stream, "mallory", BlockEvent())
    assert tester.table_value(table, "mallory") == BlockValue(blocked=True)

    tester.consume(NAMES.block_stream, "mallory", BlockEvent(unblock=True))
    assert tester.table_value(table, "mallory") == BlockValue(blocked=False)


def test_filter_drops_blocked_senders_and_translates(tester: Tester) -> None:
    """The filter joins the block state of the sender and looks each word up in the translations."""
    tester.set_table_value(NAMES.table(blocker.COMPONENT), "mallory", BlockValue(blocked=True), BlockValueCodec())
    tester.set_table_value(NAMES.table(translator.COMPONENT), "hello", "hallo", codec.String())
    Processor(None, message_filter.define(NAMES), tester=tester)
    received = tester.queue_tracker(NAMES.received_stream, MessageCodec())

    tester.consume(NAMES.sent_stream, "mallory", Message("mallory", "bob", "hello spam"))
    tester.consume(NAMES.sent_stream, "alice", Message("alice", "bob", "hello world"))

    assert [(r.key, r.value) for r in received] == [("bob", Message("alice", "bob", "hallo world"))]


def test_detector_blocks_a_user_who_only_sends(tester: Tester) -> None:
    """The detector counts sent messages for the sender, received ones (via its loop) for the receiver."""
    Processor(None, detector.define(NAMES, detector.Limits(min_messages=3, max_rate=0.5)), tester=tester)
    blocks = tester.queue_tracker(NAMES.block_stream)

    for _ in range(3):
        tester.consume(NAMES.sent_stream, "spammy", Message("spammy", "bob", "buy now"))

    table = NAMES.table(detector.COMPONENT)
    assert tester.table_value(table, "spammy") == Counters(sent=3, received=0)
    assert tester.table_value(table, "bob") == Counters(sent=0, received=3)
    assert [(r.key, r.value) for r in blocks] == [("spammy", BlockEvent())]


def test_all_components_together(tester: Tester) -> None:
    """Translations and blocks reach the filter; the spammer's messages stop once the detector blocked them."""
    for define in (collector.define, blocker.define, translator.define, message_filter.define):
        Processor(None, define(NAMES), tester=tester)
    Processor(None, detector.define(NAMES, detector.Limits(min_messages=2, max_rate=0.5)), tester=tester)
    feed_table = NAMES.table(collector.COMPONENT)

    tester.consume(NAMES.translate_stream, "hello", "hallo")
    tester.consume(NAMES.sent_stream, "alice", Message("alice", "bob", "hello bob"))
    assert tester.table_value(feed_table, "bob", MessageListCodec()) == [Message("alice", "bob", "hallo bob")]

    # The second message makes spammy a spammer. The filter and the detector consume it at the same time
    # (the tester runs processors concurrently, as Kafka does), so whether the block reaches the filter
    # before that message does is a race; the first message is delivered and the third is not.
    for number in range(3):
        tester.consume(NAMES.sent_stream, "spammy", Message("spammy", "carol", f"spam {number}"))
    feed = [message.content for message in tester.table_value(feed_table, "carol", MessageListCodec())]
    assert feed in (["spam 0"], ["spam 0", "spam 1"])
    assert tester.table_value(NAMES.table(blocker.COMPONENT), "spammy") == BlockValue(blocked=True)
