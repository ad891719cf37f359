"""Compares pygoka with Go Goka, Quix Streams and Kafka Streams on the same broker, in one run.

Workloads (--workloads, default all):
  1  count per key (click count), one process
  2  the same with 4 processes in one group
  3  join with a co-partitioned profile table, emitting "<profile>,<count>" to an output topic
  4  table recovery: a cold view and a cold processor rebuild a table from its topic
  5  end-to-end latency: emit-to-state-update p50/p99 at a fixed offered rate below saturation
  6  scaling: the longest stall of any partition while a group goes from 1 to 4 and from 4 to 2 processes
     under a steady stream (bench/compare_scaling.py)
Every input is preloaded before timing; every system runs as its own OS process(es) and is timed from
starting the process until its group's committed offsets reach the end of the input; its result is
then checked against the truth, and a wrong result raises (no figures). See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "systems"))

import clickcount
from common import (
    click_records,
    create_topic,
    default_brokers,
    delete_groups,
    delete_topics,
    environment,
    expected_counts,
    key_name,
    preload,
    record_count,
    run_phase,
    summarize,
    unique_name,
)
from compare_report import write_report
from compare_run import Run, latency, read_topic, wait_committed
from compare_scaling import scaling
from launch import (
    BASELINE_ENV,
    BASELINE_SYSTEMS,
    DECODERS,
    SYSTEMS,
    Launcher,
    is_pygoka,
    state_topic,
    table_topics_to_create,
)

COMPACTED = {"cleanup.policy": "compact"}
PROCESSES_W2 = 4


class Bench:
    """Bench holds the run's parameters, the preloaded topics and everything to delete at the end."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.brokers: str = args.brokers
        self.n: int = args.messages or (100_000 if args.quick else 1_000_000)
        self.keys: int = args.keys
        self.table_keys: int = args.table_keys or self.n
        self.partitions: int = args.partitions
        self.timeout: float = args.timeout
        self.topics: list[str] = []
        self.groups: list[str] = []
        self.state = Path(tempfile.mkdtemp(prefix="pygoka-compare-"))
        self.truth = {key_name(i): c for i, c in expected_counts(self.n, self.keys).items()}
        self._clicks: str | None = None
        self._profiles: str | None = None

    def topic(self, base: str, config: dict[str, str] | None = None, partitions: int | None = None) -> str:
        name = unique_name(base)
        create_topic(self.brokers, name, partitions or self.partitions, config)
        self.topics.append(name)
        return name

    def group(self, base: str) -> str:
        name = unique_name(base)
        self.groups.append(name)
        return name

    def state_dir(self, name: str) -> str:
        return str(self.state / name)

    def clicks(self) -> str:
        """clicks is the preloaded click topic of workloads 1-3 (created once, read by every system)."""
        if self._clicks is None:
            self._clicks = self.topic("compare-clicks")
            produced, seconds = preload(self.brokers, self._clicks, click_records(self.n, self.keys))
            stored = record_count(self.brokers, self._clicks)
            if produced != self.n or stored != self.n:
                raise RuntimeError(f"preloaded {produced} clicks, topic holds {stored}, expected {self.n}")
            print(f"preloaded {self.n:,} clicks in {seconds:.1f}s", file=sys.stderr)
        return self._clicks

    def profiles(self) -> str:
        """profiles is the preloaded, compacted profile table co-partitioned with the clicks (same placement)."""
        if self._profiles is None:
            self._profiles = self.topic("compare-profiles", COMPACTED)
            preload(self.brokers, self._profiles,
                    ((key_name(i).encode(), profile(i).encode()) for i in range(self.keys)))
        return self._profiles

    def cleanup(self) -> None:
        """cleanup deletes every topic of the run, the systems' internal topics included, and the groups."""
        import shutil

        from common import admin

        if not self.args.keep_topics:
            existing = admin(self.brokers).list_topics(timeout=30).topics
            internal = [t for t in existing if any(g in t for g in self.groups)]
            delete_topics(self.brokers, sorted(set(self.topics + internal)))
            delete_groups(self.brokers, self.groups)
        shutil.rmtree(self.state, ignore_errors=True)


def profile(index: int) -> str:
    """profile is the profile table's value of user index."""
    return f"region-{index % 97}"


def check_counts(bench: Bench, system: str, topic: str, what: str) -> int:
    """check_counts reads a state topic to its end and checks that each key's last count is the truth."""
    decode = DECODERS[system]
    final: dict[str, int] = {}
    for key, value in read_topic(bench.brokers, topic):
        k, v = decode(key, value)
        final[k] = v
    if final != bench.truth:
        wrong = [(k, final.get(k), c) for k, c in bench.truth.items() if final.get(k) != c]
        extra = set(final) - set(bench.truth)
        raise AssertionError(f"{system} {what}: {len(wrong)} keys wrong (key, got, truth) e.g. {wrong[:5]}; "
                             f"{len(extra)} unexpected keys")
    return len(final)


def check_join(bench: Bench, system: str, topic: str) -> int:
    """check_join checks the output: one record per click, each key's counts 1..truth, its profile right."""
    counts: dict[str, int] = {}
    records = 0
    for key, value in read_topic(bench.brokers, topic):
        records += 1
        k = key.decode()
        region, _, count = value.decode().rpartition(",")
        if region != profile(int(k[5:])):
            raise AssertionError(f"{system} join: key {k} joined with {region!r}, expected {profile(int(k[5:]))!r}")
        counts[k] = max(counts.get(k, 0), int(count))
    if records != bench.n or counts != bench.truth:
        wrong = [(k, counts.get(k), c) for k, c in bench.truth.items() if counts.get(k) != c]
        raise AssertionError(f"{system} join: {records} output records (expected {bench.n}), {len(wrong)} keys "
                             f"with a wrong final count, e.g. {wrong[:5]}")
    return len(counts)


def row(system: str, workload: str, rate: float, run: Run, **extra: Any) -> dict[str, Any]:
    """row is one measured repetition: the rate, wall time, summed CPU seconds and peak RSS, verified."""
    return {"system": system, "workload": workload, "msgs_per_s": rate, "wall_s": run.wall_s,
            "cpu_s": run.cpu_s, "peak_rss_mib": run.peak_rss_mib, "verified": True, **extra}


def processing(bench: Bench, launcher: Launcher, system: str, processes: int, mode: str) -> dict[str, Any]:
    """processing times system over the clicks (count or join) with `processes` processes in one group."""
    clicks = bench.clicks()
    group = bench.group(f"compare-{system}-{mode}{processes}")
    extra: list[str] = []
    output = ""
    if mode == "join":
        output = bench.topic("compare-joined")
        extra = [bench.profiles(), output]
    for topic in table_topics_to_create(system, group):
        create_topic(bench.brokers, topic, bench.partitions, COMPACTED)
    commands = [launcher.command(system, mode, bench.brokers, group, clicks, bench.state_dir(f"{group}-{i}"), *extra)
                for i in range(processes)]
    with Run(commands, system) as run:
        wait_committed(bench.brokers, group, clicks, bench.timeout, run)
        run.finish()
    if mode == "join":
        verified = check_join(bench, system, output)
    else:
        verified = check_counts(bench, system, state_topic(system, group, clicks), "count")
    return row(system, f"{processes}-process {mode}" if mode == "count" else "join", bench.n / run.wall_s, run,
               keys_verified=verified, processes=processes, **group_stats(run))


def group_stats(run: Run) -> dict[str, float]:
    """group_stats are what rebalancing cost pygoka's processes (their STATS lines): the most rebalances, and
    the longest time without partitions and waiting for tables, of any process; none for other systems."""
    stats = [dict(item.split("=") for item in text.split()[1:]) for text in run.all_lines("STATS")]
    if not stats:
        return {}
    return {"rebalances": max(int(s["rebalances"]) for s in stats),
            "unassigned_s": max(float(s["unassigned_s"]) for s in stats),
            "recovery_s": max(float(s["recovery_s"]) for s in stats)}


def recovery(bench: Bench, launcher: Launcher, system: str, mode: str) -> dict[str, Any]:
    """recovery times a cold view or processor of system rebuilding a preloaded table of table_keys keys."""
    k = bench.table_keys
    group = bench.group(f"compare-{system}-recover")
    records: Iterable[tuple[bytes, bytes]]
    if system == "kstreams":
        # Kafka Streams restores the store of its group from <application.id>-counts-changelog (8-byte longs).
        table = f"{group}-counts-changelog"
        records = ((f"key-{i:07d}".encode(), i.to_bytes(8, "big")) for i in range(k))
    else:
        table = f"{group}-table"
        records = ((f"key-{i:07d}".encode(), str(i).encode()) for i in range(k))
    create_topic(bench.brokers, table, bench.partitions, COMPACTED)
    bench.topics.append(table)
    preload(bench.brokers, table, records)
    if record_count(bench.brokers, table) != k:
        raise RuntimeError(f"preloading the table {table} lost records")
    state = bench.state_dir(group)
    if mode == "view":
        command = launcher.command(system, "view", bench.brokers, table, state)
    else:
        empty_input = bench.topic("compare-recover-input")
        command = launcher.command(system, "recover", bench.brokers, group, empty_input, state, str(k))
    with Run([command], system) as run:
        run.wait_line("RECOVERED", bench.timeout)
        run.finish()
    recovered = run.line_time("RUNNING")
    keys, total = (int(x) for x in run.line("RECOVERED").split()[1:3])
    if keys != k or total != k * (k - 1) // 2:
        raise AssertionError(f"{system} {mode} recovered {keys} keys summing to {total}, expected {k}, "
                             f"{k * (k - 1) // 2}")
    result = row(system, f"recovery ({mode})", k / recovered, run, keys_verified=keys)
    result["wall_s"] = recovered
    return result


def floors(bench: Bench) -> list[dict[str, Any]]:
    """floors runs clickcount.py's floors (bare consume, Goka's least work per message, bare rocksdict) over the
    same clicks."""
    params = {"brokers": bench.brokers, "topic": bench.clicks(), "messages": bench.n, "keys": bench.keys,
              "timeout": bench.timeout, "consumer_config": {}}
    rows = []
    for floor in clickcount.FLOORS:
        result = run_phase(clickcount.SCRIPT, floor, params, bench.timeout)
        rows.append({"system": f"floor: {floor}", "workload": "1-process count", "msgs_per_s": result["msgs_per_s"],
                     "wall_s": result["wall_s"], "cpu_s": result["cpu_s"], "peak_rss_mib": result["peak_rss_mib"],
                     "verified": True})
    return rows


def run_workloads(bench: Bench, launcher: Launcher, systems: list[str], workloads: list[int]) -> list[dict[str, Any]]:
    """run_workloads measures every (system, workload) --repeat times; each result verified before it counts."""
    rows: list[dict[str, Any]] = []
    if 3 in workloads:
        # Profiles exist before the clicks (older timestamps), as time-aware joins (Quix Streams' as-of
        # join, Kafka Streams' stream-table join) expect: otherwise they join the clicks with nothing.
        bench.profiles()
    for attempt in range(bench.args.repeat):
        for workload in workloads:
            if workload == 1 and not bench.args.no_floors:
                rows += floors(bench)
            for system in systems:
                for job in jobs_for(bench, launcher, workload, system):
                    result = job()
                    result["repetition"] = attempt + 1
                    rows.append(result)
                    print(f"[{attempt + 1}] {result['workload']:>18} {result['system']:>8}: "
                          f"{result['msgs_per_s']:>10,.0f}/s  CPU {result['cpu_s']:.1f}s  "
                          f"RSS {result['peak_rss_mib']:.0f} MiB" +
                          (f"  p50 {result['p50_ms']:.1f} ms p99 {result['p99_ms']:.1f} ms"
                           if "p50_ms" in result else "") +
                          (f"  rebalances {result['rebalances']}, unassigned {result['unassigned_s']:.1f}s, "
                           f"recovering {result['recovery_s']:.1f}s" if "rebalances" in result else "") +
                          (f"  stall 1->4 {result['stall_out_s']:.2f}s ({result['stalled_out']} partitions) "
                           f"4->2 {result['stall_in_s']:.2f}s ({result['stalled_in']}), "
                           f"max latency {result['max_latency_out_ms']:.0f} / {result['max_latency_in_ms']:.0f} ms"
                           if "stall_out_s" in result else ""),
                          file=sys.stderr)
    return rows


def jobs_for(bench: Bench, launcher: Launcher, workload: int, system: str) -> list[Callable[[], dict[str, Any]]]:
    """jobs_for are the measurements of one workload for one system (recovery has a view and a processor)."""
    if workload == 1:
        return [lambda: processing(bench, launcher, system, 1, "count")]
    if workload == 2:
        return [lambda: processing(bench, launcher, system, PROCESSES_W2, "count")]
    if workload == 3:
        return [lambda: processing(bench, launcher, system, 1, "join")]
    if workload == 4:
        # Quix Streams has no view and no table to recover apart from its own changelog; Kafka Streams'
        # closest thing to a view (a GlobalKTable) is not measured: both run the processor recovery only.
        modes = {"pygoka": ("view", "processor"), "goka": ("view", "processor"), "kstreams": ("processor",)}
        if is_pygoka(system):
            modes[system] = modes["pygoka"]
        return [lambda m=m: recovery(bench, launcher, system, m) for m in modes.get(system, ())]  # type: ignore[misc]
    if workload == 5:
        return [lambda: latency_row(bench, launcher, system)]
    if workload == 6:
        # Kafka Streams (its cache) and Quix Streams write their state topic at commits: the stalls of their
        # partitions cannot be told from their commit interval there, so they are not measured.
        return [lambda: scaling(bench, launcher, system)] if is_pygoka(system) or system == "goka" else []
    raise SystemExit(f"unknown workload {workload}")


def latency_row(bench: Bench, launcher: Launcher, system: str) -> dict[str, Any]:
    """latency_row offers --latency-rate clicks/s to a running system and measures emit-to-state-update."""
    group = bench.group(f"compare-{system}-latency")
    clicks = bench.topic("compare-latency-clicks")
    for topic in table_topics_to_create(system, group):
        create_topic(bench.brokers, topic, bench.partitions, COMPACTED)
    command = launcher.command(system, "count", bench.brokers, group, clicks, bench.state_dir(group))
    with Run([command], system) as run:
        stats = latency(bench.brokers, run, group, clicks, state_topic(system, group, clicks), DECODERS[system],
                        bench.args.latency_rate, bench.args.latency_seconds, bench.keys, bench.timeout)
        run.finish()
    return row(system, "latency", stats.pop("offered_per_s"), run, **stats)


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """aggregate is one line per (system, workload): medians and spreads over the repetitions, ratios to pygoka."""
    table: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        table.setdefault((r["system"], r["workload"]), []).append(r)
    lines = []
    for (system, workload), runs in table.items():
        line: dict[str, Any] = {"system": system, "workload": workload, "n": len(runs),
                                "verified": all(r["verified"] for r in runs)}
        for metric in ("msgs_per_s", "cpu_s", "peak_rss_mib", "p50_ms", "p99_ms", "rebalances", "unassigned_s",
                       "recovery_s", "stall_out_s", "stall_in_s", "stalled_out", "stalled_in", "max_latency_out_ms",
                       "max_latency_in_ms", "stable_out_s", "stable_in_s"):
            values = [float(r[metric]) for r in runs if metric in r]
            if values:
                stats = summarize(values)
                line[metric] = statistics.median(values)
                line[f"{metric}_spread"] = stats["spread"]
        lines.append(line)
    for line in lines:
        base = next((x for x in lines if x["system"] == "pygoka" and x["workload"] == line["workload"]), None)
        if base is not None:
            line["ratio_to_pygoka"] = line["msgs_per_s"] / base["msgs_per_s"]
            if "p50_ms" in line:  # latency: lower is better, the ratio compares p99
                line["ratio_to_pygoka"] = line["p99_ms"] / base["p99_ms"]
            if "stall_out_s" in line:  # scaling: lower is better, the ratio compares the longer stall
                line["ratio_to_pygoka"] = (max(line["stall_out_s"], line["stall_in_s"])
                                           / max(base["stall_out_s"], base["stall_in_s"]))
    return lines


def baseline_runtime(ref: str) -> str:
    """baseline_runtime extracts runtime/ of git ref ref of this repository into a temporary directory."""
    repo = Path(__file__).resolve().parent.parent
    target = Path(tempfile.mkdtemp(prefix="pygoka-baseline-"))
    archive = subprocess.run(["git", "-C", str(repo), "archive", ref, "runtime"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", ref], capture_output=True, text=True,
                            check=True).stdout.strip()
    print(f"baseline: runtime of {ref} ({commit}) in {target}", file=sys.stderr)
    return str(target / "runtime")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", default=default_brokers())
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, of {','.join(SYSTEMS)}")
    parser.add_argument("--workloads", default="1,2,3,4,5,6", help="comma-separated workload numbers")
    parser.add_argument("--quick", action="store_true", help="100,000 messages (and table keys)")
    parser.add_argument("--messages", type=int, help="click messages (default 1,000,000; 100,000 with --quick)")
    parser.add_argument("--keys", type=int, default=10_000, help="distinct click keys (default 10,000)")
    parser.add_argument("--table-keys", type=int, help="keys of the recovered table (default: --messages)")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1, help="repetitions; the table shows medians and spreads")
    parser.add_argument("--latency-rate", type=float, default=1000.0, help="offered clicks/s of workload 5")
    parser.add_argument("--latency-seconds", type=float, help="seconds of offered load (default 20; 3 with --quick)")
    parser.add_argument("--no-floors", action="store_true", help="skip the consume, update and rocksdict floors")
    parser.add_argument("--keep-topics", action="store_true")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one system may take for a workload")
    parser.add_argument("--json", type=Path, help="also write the JSON result here")
    parser.add_argument("--baseline", metavar="GIT_REF",
                        help=f"also run {' and '.join(BASELINE_SYSTEMS)}: pygoka's program on the runtime of "
                             "GIT_REF of this repository, for before/after figures in one run")
    args = parser.parse_args()
    if args.latency_seconds is None:
        args.latency_seconds = 3.0 if args.quick else 20.0
    systems = [s for s in args.systems.split(",") if s]
    known = SYSTEMS + BASELINE_SYSTEMS if args.baseline else SYSTEMS
    unknown = set(systems) - set(known)
    if unknown:
        raise SystemExit(f"unknown systems {sorted(unknown)}; known: {known}")
    if args.baseline:
        os.environ[BASELINE_ENV] = baseline_runtime(args.baseline)
        systems += [s for s in BASELINE_SYSTEMS if s not in systems and s.replace("-base", "") in systems]
    workloads = [int(w) for w in args.workloads.split(",") if w]
    started = time.monotonic()
    launcher = Launcher(systems)
    print(f"programs ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
    bench = Bench(args)
    try:
        rows = run_workloads(bench, launcher, systems, workloads)
    finally:
        bench.cleanup()
    result = {"benchmark": "compare", "environment": environment(args.brokers),
              "parameters": {"messages": bench.n, "keys": bench.keys, "table_keys": bench.table_keys,
                             "partitions": bench.partitions, "repeat": args.repeat, "systems": systems,
                             "workloads": workloads, "latency_rate": args.latency_rate,
                             "latency_seconds": args.latency_seconds, "baseline": args.baseline},
              "table": aggregate(rows), "runs": rows, "total_s": time.monotonic() - started}
    write_report(result, "compare-quick" if bench.n < 1_000_000 else "compare", args.json)


if __name__ == "__main__":
    main()
