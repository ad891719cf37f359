"""Recovery benchmark: how fast a cold View and a cold processor load a 1,000,000-key table topic.

The table topic '<group>-table' (compacted, Int64 values as ASCII, one record per key) is produced
directly before anything is timed, so the processor of <group> treats it as its own group table.
Each measured phase runs in a fresh child process with an empty state directory:
  view    a View, timed from start() until recovered();
  ahead   a processor with recover_ahead=True, timed from run() until all table partitions are
          recovered (and, separately, until Processor.recovered(), which includes joining the group);
  assign  a processor recovering each partition when the group assigns it to it (the default).
See bench/README.md.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    Meter,
    base_parser,
    consumer_overrides,
    create_topic,
    delete_groups,
    delete_topics,
    environment,
    phase_main,
    preload,
    record_count,
    run_phase,
    summarize_runs,
    unique_name,
    wait_for,
    write_results,
)

SCRIPT = Path(__file__).resolve()
POLL_SECONDS = 0.02
MODES = ("view", "ahead", "assign")


def table_records(keys: int) -> Iterator[tuple[bytes, bytes]]:
    """table_records are the records of the table: key-NNNNNNN -> NNNNNNN (Int64 codec, ASCII)."""
    for index in range(keys):
        yield f"key-{index:07d}".encode(), str(index).encode()


def _check_table(items: Iterator[tuple[bytes, bytes]], keys: int, where: str) -> int:
    """_check_table checks that items are exactly the keys of the table with their values; returns the count."""
    count = 0
    wrong = []
    for key, value in items:
        count += 1
        if int(value) != int(key[4:]):
            wrong.append((key, value))
    if wrong or count != keys:
        raise AssertionError(f"{where}: {count} keys (expected {keys}), {len(wrong)} wrong, e.g. {wrong[:5]}")
    return count


def phase_view(p: dict[str, Any]) -> dict[str, Any]:
    """phase_view recovers the table with a cold View."""
    from pygoka import View, codec

    state = Path(tempfile.mkdtemp(prefix="pygoka-bench-recovery-view-"))
    view = View(p["brokers"], p["table"], codec.Int64(), state_dir=state, consumer_config=p["consumer_config"])

    def check() -> None:
        if view.error is not None:
            raise RuntimeError(f"view failed: {view.error!r}") from view.error

    meter = Meter()
    view.start()
    wait_for(view.recovered, p["timeout"], "the view to recover", POLL_SECONDS, check)
    done = meter.sample()
    verified = _check_table(((k.encode(), str(v).encode()) for k, v in view.iterate()), p["keys"], "view")
    view.stop()
    shutil.rmtree(state, ignore_errors=True)
    return {"records": p["records"], "wall_s": done["wall_s"], "records_per_s": p["records"] / done["wall_s"],
            "cpu_s": done["cpu_s"], "cpu_us_per_record": done["cpu_s"] / p["records"] * 1e6,
            "cpu_cores": done["cpu_cores"], "peak_rss_mib": done["peak_rss_mib"], "keys_verified": verified}


def phase_processor(p: dict[str, Any]) -> dict[str, Any]:
    """phase_processor recovers the table as a cold processor's own group table."""
    from pygoka import Context, Input, Persist, Processor, codec, define_group
    from pygoka.table import PartitionState

    def ignore(ctx: Context, msg: Any) -> None:
        """ignore is never called: the input topic stays empty."""

    ahead = p["mode"] == "ahead"
    state = Path(tempfile.mkdtemp(prefix="pygoka-bench-recovery-processor-"))
    graph = define_group(p["group"], Input(p["input"], codec.String(), ignore), Persist(codec.Int64()))
    processor = Processor(p["brokers"], graph, state_dir=state, recover_ahead=ahead,
                          consumer_config=p["consumer_config"])
    failure: list[BaseException] = []

    def run() -> None:
        try:
            processor.run()
        except BaseException as exc:  # noqa: BLE001 - reported by the polling loop
            failure.append(exc)

    meter = Meter()
    thread = threading.Thread(target=run, name="processor", daemon=True)
    thread.start()
    at_tables: dict[str, float] | None = None
    while True:
        tables = processor.table_partitions()
        if at_tables is None and len(tables) == p["partitions"] and all(
            table.state is not PartitionState.RECOVERING for table in tables
        ):
            at_tables = meter.sample()
        if processor.recovered():
            at_recovered = meter.sample()
            if at_tables is None:
                at_tables = at_recovered
            break
        if failure:
            raise RuntimeError(f"processor failed: {failure[0]!r}") from failure[0]
        if meter.elapsed() > p["timeout"]:
            raise TimeoutError(f"processor did not recover in {p['timeout']}s")
        time.sleep(POLL_SECONDS)

    def stored() -> Iterator[tuple[bytes, bytes]]:
        for table in processor.table_partitions():
            yield from table.iterate()

    verified = _check_table(stored(), p["keys"], "processor")
    processor.stop()
    thread.join(120)
    if failure:
        raise RuntimeError(f"processor failed: {failure[0]!r}") from failure[0]
    shutil.rmtree(state, ignore_errors=True)
    records = p["records"]
    return {"records": records, "wall_s": at_tables["wall_s"], "records_per_s": records / at_tables["wall_s"],
            "recovered_s": at_recovered["wall_s"], "cpu_s": at_tables["cpu_s"],
            "cpu_us_per_record": at_tables["cpu_s"] / records * 1e6, "cpu_cores": at_tables["cpu_cores"],
            "peak_rss_mib": at_recovered["peak_rss_mib"], "keys_verified": verified}


PHASES = {"view": phase_view, "processor": phase_processor}
METRICS = ["records_per_s", "wall_s", "recovered_s", "cpu_s", "cpu_us_per_record", "cpu_cores", "peak_rss_mib"]


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, help="keys (= records) of the table (default 1,000,000; "
                        "100,000 with --quick)")
    parser.add_argument("--quick", action="store_true", help="100,000 keys")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}")
    args = parser.parse_args()
    if args.phase:
        phase_main(args, PHASES)
        return
    keys = args.keys or (100_000 if args.quick else 1_000_000)
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}")
    group = unique_name("bench-recovery")
    table, input_topic = f"{group}-table", f"{group}-input"
    print(f"producing {keys:,} keys into {table} ({args.partitions} partitions)", file=sys.stderr)
    create_topic(args.brokers, table, args.partitions, {"cleanup.policy": "compact"})
    create_topic(args.brokers, input_topic, args.partitions)
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    try:
        produced, seconds = preload(args.brokers, table, table_records(keys))
        records = record_count(args.brokers, table)
        if records != keys or produced != keys:
            raise RuntimeError(f"produced {produced} records but the table holds {records}, expected {keys}")
        print(f"produced {keys:,} records in {seconds:.1f}s ({keys / seconds:,.0f}/s)", file=sys.stderr)
        params = {"brokers": args.brokers, "table": table, "group": group, "input": input_topic, "keys": keys,
                  "records": records, "partitions": args.partitions, "timeout": args.timeout,
                  "consumer_config": consumer_overrides(args.consumer_config)}
        for attempt in range(args.repeat):
            for mode in modes:
                phase = "view" if mode == "view" else "processor"
                run = run_phase(SCRIPT, phase, {**params, "mode": mode}, args.timeout)
                runs[mode].append(run)
                print(f"{mode} run {attempt + 1}: {run['records_per_s']:,.0f} records/s, {run['cpu_s']:.1f} CPU s, "
                      f"peak RSS {run['peak_rss_mib']:.0f} MiB", file=sys.stderr)
    finally:
        if not args.keep_topics:
            delete_topics(args.brokers, [table, input_topic])
            delete_groups(args.brokers, [group])
    result = {"benchmark": "recovery", "environment": environment(args.brokers),
              "parameters": {"keys": keys, "records": records, "partitions": args.partitions,
                             "repeat": args.repeat, "produce_records_per_s": round(keys / seconds),
                             "consumer_config": consumer_overrides(args.consumer_config)},
              "summary": {mode: summarize_runs(mode_runs, METRICS) for mode, mode_runs in runs.items()},
              "runs": runs}
    write_results("recovery-quick" if keys < 1_000_000 else "recovery", "pygoka recovery benchmark", result,
                  args.json)


if __name__ == "__main__":
    main()
