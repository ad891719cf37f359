"""Smoke test of bench/compare.py (issue 6): quick mode runs every system and each result is verified correct.

No timing is asserted: the figures depend on the machine. What must hold is that the harness builds the
Go Goka program, the Kafka Streams jar and the Quix Streams virtualenv (cached after the first run), runs
every system on the real broker, and checks each system's final counts against the truth.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from common import expected_counts  # noqa: E402 - bench/ is not a package

SYSTEMS = ("pygoka", "pygoka-eos", "goka", "quix", "kstreams")
#: Workload 1 (count, one process) and 3 (join, output topic) cover the state and the output paths of
#: every system; 2, 4 and 5 add minutes of group rebalances and JVM starts without new code paths in
#: the harness's verification, so the smoke test leaves them to full runs.
WORKLOADS = ("1", "3")
#: Measured ~2 min warm and ~3 min with cold builds (Maven ~35-60 s, the Quix Streams venv ~30 s); the
#: budget leaves room for a loaded machine and stays far below CI's limit.
BUDGET_SECONDS = 420


@pytest.mark.timeout(BUDGET_SECONDS + 30)
def test_quick_compare_verifies_every_system(brokers: str, tmp_path: Path) -> None:
    """Every system ran each workload and its result was verified before its figure was kept."""
    result_path = tmp_path / "compare.json"
    command = [sys.executable, str(ROOT / "bench" / "compare.py"), "--quick", "--brokers", brokers,
               "--systems", ",".join(SYSTEMS), "--workloads", ",".join(WORKLOADS), "--json", str(result_path),
               "--timeout", "120"]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=BUDGET_SECONDS,
                                   env=dict(os.environ), check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"bench/compare.py --quick took over {BUDGET_SECONDS}s; stderr:\n{exc.stderr!r}")
    assert completed.returncode == 0, f"compare.py exited {completed.returncode}:\n{completed.stderr[-6000:]}"
    result = json.loads(result_path.read_text())
    assert result["parameters"]["messages"] == 100_000
    lines = {(line["system"], line["workload"]): line for line in result["table"]}
    expected = {(system, workload) for system in SYSTEMS for workload in ("1-process count", "join")}
    expected |= {(f"floor: {floor}", "1-process count") for floor in ("consume", "update", "rocksdb")}
    assert set(lines) == expected, f"missing {expected - set(lines)}, unexpected {set(lines) - expected}"
    for key, line in lines.items():
        assert line["verified"] is True, f"{key} was not verified"
        assert line["msgs_per_s"] > 0, f"{key} has no rate"
    clicked_keys = len(expected_counts(100_000, 10_000))  # a key may draw no click at all
    for run in result["runs"]:
        assert run["verified"] is True
        if not run["system"].startswith("floor"):
            assert run["keys_verified"] == clicked_keys, f"{run['system']} {run['workload']}: {run['keys_verified']}"
    pygoka = lines[("pygoka", "1-process count")]
    assert pygoka["ratio_to_pygoka"] == 1.0
