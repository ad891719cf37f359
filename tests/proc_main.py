"""Child program of tests/procs.py: one click-count processor instance, reporting its state to a file.

Run as `python tests/proc_main.py SPEC.json`. The spec names the brokers, group, input topics, an optional
Join table, the keys whose values to report, the status file and Processor options. The graph counts
messages per key (Inputs -> Persist Int64). Every 100 ms the status file is replaced atomically with the
instance's active partitions, open table partitions, recovery state, values of the requested keys and
the (topic, partition) pairs of the messages it processed. SIGTERM stops the processor cleanly.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from pygoka import Context, Inputs, Join, Persist, Processor, codec, define_group
from pygoka.graph import Edge


class Report:
    """Report is what the callback observed, shared with the status writer thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: set[tuple[str, int]] = set()
        self.joined: dict[str, list[Any]] = {}
        self.processed = 0


def build_processor(spec: dict[str, Any], report: Report) -> Processor:
    """build_processor defines the counting graph of spec and creates its processor."""
    join_table: str | None = spec.get("join")

    def count(ctx: Context, _message: Any) -> None:
        joined = ctx.join(join_table) if join_table else None
        ctx.set_value((ctx.value() or 0) + 1)
        with report.lock:
            report.seen.add((ctx.topic, ctx.partition))
            if join_table:
                report.joined[ctx.key] = [ctx.partition, joined]
            report.processed += 1

    edges: list[Edge] = [Inputs(spec["inputs"], codec.String(), count), Persist(codec.Int64())]
    if join_table:
        edges.append(Join(join_table, codec.String()))
    graph = define_group(spec["group"], *edges)
    options = dict(spec.get("options", {}))
    if spec.get("leaves"):
        # As `pygoka run` in a pod its StatefulSet scaled in: gone for good when it stops.
        options["leaving"] = lambda: True
    return Processor(spec["brokers"], graph, state_dir=spec["state_dir"], **options)


def snapshot(processor: Processor, spec: dict[str, Any], report: Report, running: bool,
             error: str | None) -> dict[str, Any]:
    """snapshot is the status reported to the parent."""
    # Values are read last, so that they are at least as new as the recovery state reported with them.
    recovered = processor.recovered()
    active = processor.active_partitions()
    tables = [[t.partition, t.state.value] for t in processor.table_partitions()]
    values: dict[str, Any] = {}
    for key in spec.get("keys", []):
        try:
            values[key] = processor.get(key)
        except Exception:  # noqa: BLE001 - partition not held here, or closed by a rebalance right now
            continue
    with report.lock:
        seen = sorted([topic, partition] for topic, partition in report.seen)
        joined = dict(report.joined)
        processed = report.processed
    return {
        "pid": os.getpid(),
        "running": running,
        "active": active,
        "tables": tables,
        "recovered": recovered,
        "values": values,
        "seen": seen,
        "joined": joined,
        "processed": processed,
        "error": error,
    }


def write_status(path: Path, status: dict[str, Any]) -> None:
    """write_status replaces the status file atomically, so the parent never reads half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status))
    os.replace(tmp, path)


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    status_path = Path(spec["status"])
    report = Report()
    processor = build_processor(spec, report)
    done = threading.Event()

    def report_loop() -> None:
        while not done.wait(0.1):
            try:
                write_status(status_path, snapshot(processor, spec, report, True, None))
            except Exception:  # a transient read error must not end the reporting
                logging.exception("status report failed")

    reporter = threading.Thread(target=report_loop, daemon=True)
    reporter.start()
    error: str | None = None
    try:
        # On the main thread run() turns SIGTERM into a clean stop.
        processor.run()
    except Exception as exc:  # reported to the parent
        logging.exception("processor failed")
        error = f"{type(exc).__name__}: {exc}"
    done.set()
    reporter.join()
    write_status(status_path, snapshot(processor, spec, report, False, error))
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
