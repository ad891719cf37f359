"""The end-to-end tests' judge of partition ownership (tests/ownership.py) finds what it must and nothing else."""

from __future__ import annotations

from ownership import holders, overlaps, ownership


def line(at: str, event: str, partitions: str) -> str:
    return f"2026-12-03 {at} INFO pygoka.runner: group clicks: {event} partitions [{partitions}]\n"


def test_a_clean_handover_is_no_overlap() -> None:
    logs = {"clicks-0#a": [line("10:00:00,000", "assigned", "0, 1"), line("10:00:05,000", "revoked", "0, 1"),
                           line("10:00:05,100", "assigned", "0")],
            "clicks-1#b": [line("10:00:05,200", "assigned", "1")]}
    assert overlaps(logs) == []
    assert holders(logs) == {0: "clicks-0", 1: "clicks-1"}
    assert [span[2] for span in ownership(logs)[1]] == ["clicks-0#a", "clicks-1#b"]


def test_a_partition_taken_before_it_was_revoked_is_an_overlap() -> None:
    logs = {"clicks-0#a": [line("10:00:00,000", "assigned", "0, 1"), line("10:00:06,000", "revoked", "0, 1")],
            "clicks-1#b": [line("10:00:05,000", "assigned", "1")]}
    found = overlaps(logs)
    assert len(found) == 1 and found[0].startswith("partition 1: clicks-0#a")


def test_a_run_that_never_gave_a_partition_up_holds_it_still() -> None:
    logs = {"clicks-0#a": [line("10:00:00,000", "assigned", "2")],
            "clicks-0#c": [line("10:01:00,000", "assigned", "2")]}
    assert len(overlaps(logs)) == 1
    assert ownership({"x#1": [line("10:00:00,000", "lost", "3")]}) == {}
