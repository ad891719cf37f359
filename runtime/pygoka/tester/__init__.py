"""pygoka.tester: run processors, views and emitters on an in-memory Kafka in unit tests."""

from pygoka.tester.tester import Tester
from pygoka.tester.tracker import QueueTracker, Record

__all__ = ["QueueTracker", "Record", "Tester"]
