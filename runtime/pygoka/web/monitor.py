"""Monitor: the state of attached processors and views, read at request time from their own objects.

Nothing here runs in a processor's hot path: counters the runner keeps anyway (PartitionRun.processed,
table offsets) are read when a page, probe or scrape asks, and message rates come from sampling those
counters once a second on the server's event loop.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from pygoka.lag import PartitionOffsets, partition_lag
from pygoka.processor import Processor
from pygoka.table import PartitionState, PartitionTable
from pygoka.view import View


@dataclass
class _Rate:
    """_Rate is the last sample of one partition run's processed counter and the rate derived from it."""

    run_id: int
    processed: int
    at: float
    per_second: float = 0.0


def processor_table(processor: Processor) -> str | None:
    """processor_table is the group table topic of a processor, None without a Persist edge."""
    return processor.graph.table_topic() if processor.graph.persist is not None else None


def table_size(table: PartitionTable) -> int | None:
    """table_size is the storage's key count estimate, None if the storage cannot tell."""
    estimate = getattr(table.storage, "size_estimate", None)
    if estimate is None:
        return None
    try:
        return int(estimate())
    except Exception:  # noqa: BLE001 - a store closed by a rebalance meanwhile has no size to show
        return None


def recovery_progress(table: PartitionTable) -> float:
    """recovery_progress is how far a table partition got towards the end it recovers to, from 0 to 1."""
    if table.state is not PartitionState.RECOVERING:
        return 1.0
    high = table.high_watermark
    if high is None:
        return 0.0
    if high <= 0:
        return 1.0
    return min(1.0, table.next_offset() / high)


def describe_table(table: PartitionTable) -> dict[str, Any]:
    """describe_table is the monitor's JSON view of one table partition."""
    return {
        "partition": table.partition,
        "state": table.state.value,
        "offset": table.offset(),
        "high_watermark": table.high_watermark,
        "progress": recovery_progress(table),
        "size": table_size(table),
    }


class Monitor:
    """Monitor collects the partitions, offsets, lag and rates of the attached processors and views."""

    def __init__(self) -> None:
        self.processors: list[Processor] = []
        self.views: list[View] = []
        self._rates: dict[tuple[int, int], _Rate] = {}
        self._lock = threading.Lock()

    def attach_processor(self, processor: Processor) -> None:
        """attach_processor adds a processor to the monitored objects."""
        self.processors.append(processor)

    def attach_view(self, view: View) -> None:
        """attach_view adds a view to the monitored objects."""
        self.views.append(view)

    # -- rates -----------------------------------------------------------------------------------

    def sample(self, now: float | None = None) -> None:
        """sample updates each active partition's message rate from its processed counter."""
        now = time.monotonic() if now is None else now
        with self._lock:
            seen: set[tuple[int, int]] = set()
            for processor in self.processors:
                for run in processor.partition_runs():
                    key = (id(processor), run.partition)
                    seen.add(key)
                    last = self._rates.get(key)
                    if last is None or last.run_id != id(run):
                        # A new assignment starts its own counter: rates restart from it.
                        self._rates[key] = _Rate(id(run), run.processed, now)
                        continue
                    elapsed = now - last.at
                    if elapsed > 0:
                        last.per_second = max(0, run.processed - last.processed) / elapsed
                        last.processed, last.at = run.processed, now
            for key in set(self._rates) - seen:
                del self._rates[key]

    def rate(self, processor: Processor, partition: int) -> float:
        """rate is the messages per second of a partition over the last sampling interval."""
        with self._lock:
            entry = self._rates.get((id(processor), partition))
            return entry.per_second if entry is not None else 0.0

    # -- probes ----------------------------------------------------------------------------------

    def health(self) -> list[str]:
        """health lists why the attached objects are not alive; empty means healthy."""
        problems: list[str] = []
        for processor in self.processors:
            if processor.error is not None:
                problems.append(f"processor {processor.graph.group} failed: {processor.error}")
        for view in self.views:
            if view.error is not None:
                problems.append(f"view {view.table} failed: {view.error}")
            if view.thread_ended():
                problems.append(f"view {view.table}: its thread ended")
        return problems

    def readiness(self) -> list[str]:
        """readiness lists what is not recovered yet; empty means ready to serve."""
        if not self.processors and not self.views:
            return ["nothing attached"]
        reasons = [f"processor {p.graph.group} not recovered" for p in self.processors if not p.recovered()]
        reasons += [f"view {v.table} not recovered" for v in self.views if not v.recovered()]
        return reasons

    # -- state -----------------------------------------------------------------------------------

    def processor_state(self, processor: Processor) -> dict[str, Any]:
        """processor_state is the monitor's JSON view of one processor instance."""
        stats = processor.checkpoint_stats()
        ends = processor.end_offsets()
        partitions = []
        active: set[int] = set()
        for run in processor.partition_runs():
            active.add(run.partition)
            inputs: list[dict[str, Any]] = []
            for topic, end in sorted((t, e) for (t, n), e in ends.items() if n == run.partition):
                position = run.next_offsets.get(topic, run.committed.get(topic))
                # The position is known only once something was read; before, lag is unknown (no start offset).
                lag = None if position is None else partition_lag(PartitionOffsets(topic, run.partition, 0, end,
                                                                                   position))
                inputs.append({"topic": topic, "next_offset": position, "committed": run.committed.get(topic),
                               "end_offset": end, "lag": lag})
            partitions.append({
                "partition": run.partition,
                "state": run.state.value,
                "processed": run.processed,
                "rate": round(self.rate(processor, run.partition), 2),
                "lag": sum(i["lag"] for i in inputs if i["lag"] is not None) if inputs else None,
                "inputs": inputs,
                "table": describe_table(run.table) if run.table is not None else None,
            })
        standby = [describe_table(t) for t in processor.table_partitions() if t.partition not in active]
        if processor.error is not None:
            status = "failed"
        elif not processor.running():
            status = "stopped"
        else:
            status = "running"
        return {
            "group": processor.graph.group,
            "table": processor_table(processor),
            "status": status,
            "error": None if processor.error is None else str(processor.error),
            "recovered": processor.recovered(),
            "partitions": partitions,
            "standby": standby,
            "last_commit_seconds": stats.last_seconds if stats is not None else None,
        }

    def view_state(self, view: View) -> dict[str, Any]:
        """view_state is the monitor's JSON view of one view."""
        return {
            "table": view.table,
            "recovered": view.recovered(),
            "error": None if view.error is None else str(view.error),
            "partitions": [describe_table(t) for t in view.partitions()],
        }

    def snapshot(self) -> dict[str, Any]:
        """snapshot is the whole monitor state as JSON-ready data, served at /api/state."""
        return {
            "time": time.time(),
            "processors": [self.processor_state(p) for p in self.processors],
            "views": [self.view_state(v) for v in self.views],
            "tables": self.table_names(),
        }

    def table_names(self) -> list[str]:
        """table_names are the tables the query API can read, in attachment order."""
        names = [t for t in (processor_table(p) for p in self.processors) if t is not None]
        names += [v.table for v in self.views]
        return list(dict.fromkeys(names))
