"""bench/stalls.py: a phase's stall is the longest gap of any one partition, the phase's edges included."""

from __future__ import annotations

import sys

import pytest
from helpers import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from stalls import PartitionArrivals  # bench/ is not a package


def arrivals(by_partition: dict[int, list[float]]) -> PartitionArrivals:
    noted = PartitionArrivals()
    for partition, times in by_partition.items():
        for at in times:
            noted.note(partition, at)
    return noted


def test_the_longest_gap_of_any_partition_within_the_phase() -> None:
    noted = arrivals({0: [1.0, 1.1, 1.2, 2.9, 3.0], 1: [1.0, 1.5, 2.0, 2.5, 3.0]})
    assert noted.stall(1.0, 3.0) == pytest.approx(1.7)  # partition 0, from 1.2 to 2.9
    assert noted.stalled(1.0, 3.0) == 1  # partition 1's gaps are 0.5 s, not longer


def test_a_gap_counts_from_the_last_record_before_the_phase_and_up_to_its_end() -> None:
    noted = arrivals({0: [0.0, 5.0], 1: [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]})
    # Partition 0 had nothing from 0 to 5: a gap that began before the phase counts from its last record.
    assert noted.stall(1.0, 3.0) == pytest.approx(3.0)
    # A partition that never got a record after 1.5 stalled until the phase ended.
    assert arrivals({0: [1.0, 1.5]}).stall(1.0, 4.0) == pytest.approx(2.5)


def test_no_records_at_all_is_no_figure() -> None:
    assert PartitionArrivals().stall(0.0, 1.0) == 0.0
