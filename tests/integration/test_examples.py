"""The examples a newcomer runs first work against real Kafka: per-key counts kept across runs (B13, B14)
and a view serving the group table over HTTP (B26)."""

from __future__ import annotations

import json
import re
import signal
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from example_process import ExampleProcess
from helpers import Names, wait_until


@pytest.fixture
def run_example() -> Iterator[Callable[[str, list[str], str], ExampleProcess]]:
    """run_example starts an example script and kills any still running at teardown."""
    started: list[ExampleProcess] = []

    def run(name: str, args: list[str], brokers: str) -> ExampleProcess:
        example = ExampleProcess(Path(name) / "main.py", args, brokers)
        started.append(example)
        return example

    yield run
    for example in started:
        example.kill()


def test_simplest_counts_messages_per_key_across_runs(
    brokers: str, names: Names, state_dir: Path,
    run_example: Callable[[str, list[str], str], ExampleProcess],
) -> None:
    """1-simplest prints counter 1..3, and a second run continues from the stored count (B13, B14)."""
    args = ["--topic", names("example-stream"), "--group", names("example-group"), "--key", "k1",
            "--state-dir", str(state_dir), "--interval", "0.05", "--duration", "120"]

    first = run_example("1-simplest", [*args, "--messages", "3"], brokers)
    assert first.wait(150) == 0, first.output()
    counters = [int(m) for m in re.findall(r"key = k1, counter = (\d+), msg = some-value", first.output())]
    assert counters == [1, 2, 3], first.output()
    assert "emitted 3 messages, processed 3; stopped" in first.output()

    second = run_example("1-simplest", [*args, "--messages", "2"], brokers)
    assert second.wait(150) == 0, second.output()
    counters = [int(m) for m in re.findall(r"key = k1, counter = (\d+)", second.output())]
    assert counters == [4, 5], second.output()


def test_simplest_stops_after_duration(
    brokers: str, names: Names, state_dir: Path,
    run_example: Callable[[str, list[str], str], ExampleProcess],
) -> None:
    """1-simplest with only --duration emits until the time is up, then exits once all were counted."""
    example = run_example("1-simplest", [
        "--topic", names("example-stream"), "--group", names("example-group"),
        "--state-dir", str(state_dir), "--interval", "0.2", "--duration", "2",
    ], brokers)
    assert example.wait(120) == 0, example.output()
    summary = re.search(r"emitted (\d+) messages, processed (\d+); stopped", example.output())
    assert summary is not None, example.output()
    emitted = int(summary.group(1))
    assert emitted >= 1
    assert int(summary.group(2)) == emitted
    counters = [int(m) for m in re.findall(r"key = some-key, counter = (\d+)", example.output())]
    assert counters == list(range(1, emitted + 1)), example.output()


def _get_json(url: str) -> tuple[int, object]:
    """_get_json is the status and decoded JSON body of a GET request."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_clicks_view_serves_counts_over_http(
    brokers: str, names: Names, state_dir: Path,
    run_example: Callable[[str, list[str], str], ExampleProcess],
) -> None:
    """2-clicks counts 20 clicks of 4 users in RocksDB; its view prints and serves 5 per user (B26)."""
    example = run_example("2-clicks", [
        "--topic", names("user-click"), "--group", names("mini-group"), "--state-dir", str(state_dir),
        "--users", "4", "--messages", "20", "--interval", "0.02", "--port", "0", "--duration", "120",
    ], brokers)
    address = wait_until(
        lambda: next((m.group(1) for line in example.lines
                      if (m := re.match(r"View opened at (http://\S+/)$", line))), None),
        timeout=90, message="the view's HTTP address")
    expected = "[view] emitted=20 processed=20 user-0=5 user-1=5 user-2=5 user-3=5"
    wait_until(lambda: expected in example.lines or example.proc.poll() is not None, timeout=90,
               message="the view to print 5 clicks per user")
    assert expected in example.lines, example.output()
    proc_lines = [line for line in example.lines if line.startswith("[proc] key: user-2 clicks: ")]
    assert [int(line.split()[4].rstrip(",")) for line in proc_lines] == [1, 2, 3, 4, 5], example.output()

    assert _get_json(address + "user-1") == (200, {"Clicks": 5})
    assert _get_json(address + "user-3") == (200, {"Clicks": 5})
    assert _get_json(address + "nobody") == (404, None)

    example.proc.send_signal(signal.SIGTERM)
    assert example.wait(60) == 0, example.output()
    assert example.lines[-1] == "emitted 20 clicks, processed 20; stopped", example.output()
