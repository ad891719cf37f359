"""Output of bench/compare.py: bench/results/<name>-<time>.json, .md and a bar chart .png (matplotlib)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from common import RESULTS_DIR


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _spread(line: dict[str, Any], metric: str) -> str:
    return f" ±{line[f'{metric}_spread'] / 2:.0%}" if line.get("n", 1) > 1 and f"{metric}_spread" in line else ""


def markdown(result: dict[str, Any]) -> str:
    """markdown is the result table: one line per system and workload, medians over the repetitions."""
    env, params = result["environment"], result["parameters"]
    lines = ["# pygoka vs Go Goka, Quix Streams and Kafka Streams", "",
             f"- time: {env['time_utc']}, commit {env['git_commit']}, {env['cpus']} CPUs, load at start "
             f"{', '.join(f'{x:.2f}' for x in env['load_avg'])}, broker {env['brokers']}",
             f"- parameters: {', '.join(f'{k}={v}' for k, v in params.items())}",
             f"- whole run: {result['total_s']:.0f} s; every figure below comes from a result verified correct",
             "- messages/s: workload 4 counts table records/s; workload 5 shows the offered rate, and its ratio "
             "compares p99 latency (lower is better)", "",
             "- rebalancing: pygoka only, the most of any process: rebalances / seconds without partitions / "
             "seconds waiting for tables; for scaling, the longest stall of any partition 1 -> 4 / 4 -> 2 (partitions "
             "stalled over 0.5 s)", "",
             "| workload | system | messages/s | ratio to pygoka | p50 / p99 ms | rebalancing | peak RSS MiB | CPU s "
             "| verified |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for line in result["table"]:
        ratio = f"{line['ratio_to_pygoka']:.2f}" if "ratio_to_pygoka" in line else "-"
        latency = f"{line['p50_ms']:.1f} / {line['p99_ms']:.1f}" if "p50_ms" in line else "-"
        rebalancing = (f"{line['rebalances']:.0f} / {line['unassigned_s']:.1f} / {line['recovery_s']:.1f}"
                       if "rebalances" in line else "-")
        if "stall_out_s" in line:
            rebalancing = (f"stall {line['stall_out_s']:.2f} s ({line['stalled_out']:.0f} p.) / "
                           f"{line['stall_in_s']:.2f} s ({line['stalled_in']:.0f} p.)")
        lines.append(f"| {line['workload']} | {line['system']} | {_num(line['msgs_per_s'])}"
                     f"{_spread(line, 'msgs_per_s')} | {ratio} | {latency} | {rebalancing} | "
                     f"{_num(line['peak_rss_mib'])} | "
                     f"{_num(line['cpu_s'], 1)} | {'yes' if line['verified'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def chart(result: dict[str, Any], path: Path) -> bool:
    """chart draws messages/s per workload, one bar per system; False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed (pip install -e '.[bench]'); no chart", file=sys.stderr)
        return False
    rows = [line for line in result["table"] if "p50_ms" not in line]
    workloads = list(dict.fromkeys(line["workload"] for line in rows))
    systems = list(dict.fromkeys(line["system"] for line in rows))
    figure, axis = plt.subplots(figsize=(max(8, 1.6 * len(workloads) * max(1, len(systems)) / 3), 5))
    width = 0.8 / max(1, len(systems))
    for i, system in enumerate(systems):
        xs, ys = [], []
        for j, workload in enumerate(workloads):
            match = [line for line in rows if line["system"] == system and line["workload"] == workload]
            if match:
                xs.append(j + i * width)
                ys.append(match[0]["msgs_per_s"])
        axis.bar(xs, ys, width, label=system)
    axis.set_xticks([j + width * (len(systems) - 1) / 2 for j in range(len(workloads))], workloads)
    axis.set_ylabel("messages (records) per second")
    axis.set_yscale("log")
    axis.set_title(f"pygoka and others, {result['parameters']['messages']:,} messages "
                   f"({result['environment']['time_utc']})")
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write_report(result: dict[str, Any], name: str, json_path: Path | None) -> Path:
    """write_report writes the JSON, markdown and PNG under bench/results/ (and json_path); returns the .md."""
    RESULTS_DIR.mkdir(exist_ok=True)
    base = RESULTS_DIR / f"{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    text = json.dumps(result, indent=2) + "\n"
    base.with_suffix(".json").write_text(text)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(text)
    md = markdown(result)
    base.with_suffix(".md").write_text(md)
    drawn = chart(result, base.with_suffix(".png"))
    print(md)
    print(f"results: {base}.json, {base}.md" + (f", {base}.png" if drawn else ""))
    return base.with_suffix(".md")
