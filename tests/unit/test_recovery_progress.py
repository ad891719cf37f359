"""RecoveryProgress: one line per interval while partitions catch up, with records, rate and estimate."""

from __future__ import annotations

import logging

import pytest
from pygoka.recovery_progress import RecoveryProgress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_per_interval_with_rate_and_estimate(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = RecoveryProgress("table reader g", interval=10, clock=clock)
    assert progress.update(2, 0, 60_000) is None  # the first call only starts the clock
    clock.now += 5
    assert progress.update(2, 10_000, 50_000) is None  # not yet due
    clock.now += 5
    with caplog.at_level(logging.INFO, logger="pygoka.recovery"):
        line = progress.update(2, 20_000, 40_000)
    assert line == ("table reader g: recovering 2 partitions: 20000 records read, 2000 records/s, "
                    "40000 offsets to go, about 20 s left")
    (record,) = caplog.records
    assert record.getMessage() == line and record.records_per_second == 2000.0  # type: ignore[attr-defined]
    clock.now += 10
    assert progress.update(1, 20_000, 40_000) == ("table reader g: recovering 1 partition: 20000 records read, "
                                                  "0 records/s, 40000 offsets to go, no progress")


def test_nothing_is_logged_while_nothing_recovers_and_the_clock_restarts() -> None:
    clock = Clock()
    progress = RecoveryProgress("r", interval=10, clock=clock)
    progress.update(1, 0, 10)
    clock.now += 30
    assert progress.update(0, 500, 0) is None
    clock.now += 30
    assert progress.update(1, 600, 10) is None  # a new recovery starts a new interval
    clock.now += 10
    assert progress.update(1, 1600, 5) is not None
