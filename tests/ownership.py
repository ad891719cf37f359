"""Who held which partition when, from pods' logs: the "group G: assigned/revoked/lost partitions [...]" lines of
runtime/pygoka/runner.py, timestamped by the text log format (one machine, one clock)."""

from __future__ import annotations

import datetime
import itertools
import re

STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) "
OWNERSHIP = re.compile(STAMP + r".*group \S+: (assigned|revoked|lost) partitions \[([\d, ]*)\]")


def ownership(logs: dict[str, list[str]]) -> dict[int, list[tuple[float, float, str]]]:
    """ownership is, per partition, the (from, to, run) intervals in which each container run held it."""
    intervals: dict[int, list[tuple[float, float, str]]] = {}
    for run, lines in logs.items():
        held: dict[int, float] = {}
        for line in lines:
            match = OWNERSHIP.match(line)
            if not match:
                continue
            at = datetime.datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            partitions = [int(p) for p in match[3].replace(" ", "").split(",") if p]
            for partition in partitions:
                if match[2] == "assigned":
                    held.setdefault(partition, at)
                elif partition in held:
                    intervals.setdefault(partition, []).append((held.pop(partition), at, run))
        for partition, since in held.items():
            intervals.setdefault(partition, []).append((since, float("inf"), run))
    return intervals


def overlaps(logs: dict[str, list[str]]) -> list[str]:
    """overlaps names every partition two container runs held at the same time."""
    found = []
    for partition, spans in ownership(logs).items():
        spans.sort()
        for (_, end_a, run_a), (start_b, _, run_b) in itertools.pairwise(spans):
            if start_b < end_a:
                found.append(f"partition {partition}: {run_a} until {end_a} and {run_b} from {start_b}")
    return found


def holders(logs: dict[str, list[str]]) -> dict[int, str]:
    """holders is the pod holding each partition now (per the logs)."""
    now: dict[int, str] = {}
    for partition, spans in ownership(logs).items():
        for _, end, run in spans:
            if end == float("inf"):
                now[partition] = run.split("#", 1)[0]
    return now
