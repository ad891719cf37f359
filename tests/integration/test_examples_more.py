"""Goka's further examples run against real Kafka: 3-messaging (Join B10, Lookup B10, Loop B9 across five
groups and a view B26), 4-tests (the tester), 5-multiple (instances in separate processes, rebalancing B18),
6-reconnecting-view, 9-defer-commit (B8) and 10-visit (visitors)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from example_process import EXAMPLES, ExampleProcess
from helpers import ROOT, Names, wait_until


@pytest.fixture
def example() -> Iterator[Callable[[str, list[str], str], ExampleProcess]]:
    """example starts example scripts and kills any still running at teardown."""
    started: list[ExampleProcess] = []

    def run(script: str, args: list[str], brokers: str) -> ExampleProcess:
        started.append(ExampleProcess(script, args, brokers))
        return started[-1]

    yield run
    for running in started:
        running.kill()


# -- 3-messaging ---------------------------------------------------------------------------------------------

def _http(method: str, url: str, body: dict[str, str] | None = None) -> tuple[int, Any]:
    """_http is the status and decoded JSON answer of a request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class Messaging:
    """Messaging talks to a running 3-messaging example: its HTTP service and its --block-user/--translate tools."""

    def __init__(self, url: str, prefix: str, brokers: str) -> None:
        self.url, self.prefix, self.brokers = url, prefix, brokers

    def send(self, sender: str, to: str, content: str) -> None:
        status, answer = _http("POST", f"{self.url}{sender}/send", {"to": to, "content": content})
        assert status == 200, answer
        assert answer["sent"] == {"From": sender, "To": to, "Content": content}

    def feed(self, user: str) -> list[str]:
        """feed is the contents of the user's latest messages as '<from>: <content>' (empty if none yet)."""
        status, answer = _http("GET", f"{self.url}{user}/feed")
        if status in (404, 503):
            return []
        assert status == 200, answer
        return [f"{m['From']}: {m['Content']}" for m in answer]

    def tool(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / "3-messaging" / "main.py"), "--prefix", self.prefix, *args],
            env={**os.environ, "PYGOKA_BROKERS": self.brokers}, cwd=ROOT, text=True, capture_output=True, timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def probe(self, sender: str, receiver: str, tag: str) -> bool:
        """probe sends sender's message and then a witness's to receiver (one partition: the filter sees them
        in this order) and tells, once the witness's arrived, whether sender's was dropped."""
        self.send(sender, receiver, f"probe {tag}")
        self.send(f"witness-{tag}", receiver, f"marker {tag}")
        feed = wait_until(lambda: (f := self.feed(receiver)) and f"witness-{tag}: marker {tag}" in f and f,
                          timeout=60, message=f"the witness's message {tag} in {receiver}'s feed")
        return f"{sender}: probe {tag}" not in feed

    def probe_until(self, dropped: bool, sender: str, receiver: str, tag: str, rounds: int = 15) -> int:
        """probe_until probes until sender's messages are (or are no longer) dropped; returns the rounds taken."""
        for number in range(rounds):
            if self.probe(sender, receiver, f"{tag}-{number}") == dropped:
                return number + 1
        pytest.fail(f"{sender}'s messages to {receiver} were {'still' if dropped else 'never'} delivered "
                    f"after {rounds} probes")


def test_messaging_filters_translates_and_blocks_spammers(
    brokers: str, names: Names, state_dir: Path,
    example: Callable[[str, list[str], str], ExampleProcess],
) -> None:
    """3-messaging: translations (Lookup) apply, blocked users (Join) are dropped until unblocked, and the
    detector (Loop) blocks a user who only sends."""
    prefix = names("msg") + "-"
    running = example("3-messaging/main.py", [
        "--components", "all", "--prefix", prefix, "--partitions", "1", "--port", "0",
        "--min-messages", "20", "--state-dir", str(state_dir), "--duration", "280",
    ], brokers)
    found = wait_until(lambda: running.match(r"service: listening at (http://\S+/)") or running.proc.poll() is not None,
                       timeout=90, message="the service's address")
    assert isinstance(found, re.Match), running.output()
    wait_until(lambda: running.match(r"^processors running: collector, blocker, filter, translator, detector$"),
               timeout=90, message="all processors running")
    service = Messaging(found.group(1), prefix, brokers)

    # Translation: once the translator stored it, the filter's lookup applies it word by word.
    assert "translating hello -> hallo" in service.tool("--translate", "hello", "hallo")
    for number in range(15):
        sender = f"alice-{number}"
        service.send(sender, "bob", "hello world")
        arrived = wait_until(lambda s=sender: next((m for m in service.feed("bob") if m.startswith(f"{s}: ")), None),
                             timeout=60, message=f"{sender}'s message in bob's feed")
        if arrived == f"{sender}: hallo world":
            break
    else:
        pytest.fail(f"no translated message in bob's feed: {service.feed('bob')}")
    assert all(line.endswith((": hallo world", ": hello world")) for line in service.feed("bob"))

    # Blocking: mallory's messages are dropped once the filter sees the blocker's table, again after unblocking.
    assert "blocked mallory" in service.tool("--block-user", "mallory")
    service.probe_until(True, "mallory", "carol", "blocked")
    assert service.probe("mallory", "carol", "still-blocked"), "mallory's message passed after being dropped"
    assert "unblocked mallory" in service.tool("--block-user", "mallory", "--unblock")
    service.probe_until(False, "mallory", "carol", "unblocked")
    assert running.match(r"blocker: mallory blocked") and running.match(r"blocker: mallory unblocked")

    # Spam: 20 sent, none received makes spammy a spammer; the detector blocks them through the blocker.
    for number in range(20):
        service.send("spammy", "dave", f"buy now {number}")
    wait_until(lambda: running.match(r"detector: spammy is a spammer \(sent 20, received 0\); blocking"),
               timeout=60, message="the detector to report spammy")
    service.probe_until(True, "spammy", "erin", "spam")
    # Nobody else sent enough to look like a spammer; dave only received.
    assert [line for line in running.lines if line.startswith("detector:") and "spammy" not in line] == []

    running.proc.send_signal(signal.SIGTERM)
    assert running.wait(90) == 0, running.output()
    assert running.lines[-1] == "done", running.output()


# -- 4-tests ---------------------------------------------------------------------------------------------------

def test_tester_examples_pass() -> None:
    """4-tests: the tester scenarios and the messaging components' tester tests pass."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "examples/4-tests"],
                            cwd=ROOT, text=True, capture_output=True, timeout=280)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = re.search(r"(\d+) passed", result.stdout)
    assert summary is not None and int(summary.group(1)) >= 14, result.stdout
    assert "failed" not in result.stdout and "error" not in result.stdout.lower(), result.stdout


# -- 5-multiple ------------------------------------------------------------------------------------------------

def test_multiple_instances_share_the_partitions(
    brokers: str, names: Names, state_dir: Path,
    example: Callable[[str, list[str], str], ExampleProcess],
) -> None:
    """5-multiple: two instance processes split four partitions, every click is counted once, monitors are ready."""
    running = example("5-multiple/main.py", [
        "--input-a", names("input-A"), "--input-b", names("input-B"), "--group", names("multiInput"),
        "--instances", "2", "--stagger", "0", "--monitor-port", "0", "--partitions", "4",
        "--messages", "20", "--interval", "0.02", "--state-dir", str(state_dir),
    ], brokers)
    assert running.wait(240) == 0, running.output()
    assert "emitted 40 clicks, the view counted 40" in running.lines, running.output()
    assignment = running.match(r"^assignment: instance-0=\[([\d, ]+)\] instance-1=\[([\d, ]+)\]$")
    assert assignment is not None, running.output()
    held = [sorted(int(n) for n in group.split(",")) for group in assignment.groups()]
    assert all(held) and sorted(held[0] + held[1]) == [0, 1, 2, 3], running.output()
    for number in (0, 1):
        assert f"instance {number}: monitor /readyz answered 200" in running.lines, running.output()


# -- 6-reconnecting-view ---------------------------------------------------------------------------------------

def test_reconnecting_view_prints_values(
    brokers: str, names: Names, example: Callable[[str, list[str], str], ExampleProcess],
) -> None:
    """6-reconnecting-view: the view recovers and prints the counters the emitter keeps raising."""
    running = example("6-reconnecting-view/main.py", [
        "--table", names("restartable-view-test-table"), "--partitions", "2", "--keys", "2",
        "--emit-interval", "0.2", "--print-interval", "0.5", "--duration", "8",
    ], brokers)
    assert running.wait(120) == 0, running.output()
    assert "view is recovered" in running.lines, running.output()
    values = [(int(m.group(1)), int(m.group(2))) for line in running.lines
              if (m := re.match(r"^values: key-0=(\d+) key-1=(\d+)$", line))]
    assert values, running.output()
    assert values[-1][0] >= 2 and values == sorted(values), running.output()
    assert running.lines[-1] == "view stopped"


# -- 9-defer-commit --------------------------------------------------------------------------------------------

def _defer_commit_args(names: Names) -> list[str]:
    return ["--input", names("input-topic"), "--forward", names("forward-topic"),
            "--forwarder-group", names("forwarder"), "--consumer-group", names("consumer"),
            "--interval", "0.05", "--partitions", "2"]


def test_defer_commit_commits_after_the_side_effect(
    brokers: str, names: Names, example: Callable[[str, list[str], str], ExampleProcess],
) -> None:
    """9-defer-commit: every message is forwarded by the pool and committed once its done() was called (B8)."""
    running = example("9-defer-commit/main.py", [*_defer_commit_args(names), "--messages", "5"], brokers)
    assert running.wait(180) == 0, running.output()
    assert len([line for line in running.lines if line.startswith("received message time: ")]) == 5
    assert "forwarder committed 5 of 5 input messages" in running.lines, running.output()


def test_defer_commit_without_done_commits_nothing(
    brokers: str, names: Names, example: Callable[[str, list[str], str], ExampleProcess],
) -> None:
    """9-defer-commit --no-commit: forwarded, but with done() never called nothing is committed (B8)."""
    running = example("9-defer-commit/main.py", [*_defer_commit_args(names), "--messages", "3", "--no-commit"],
                      brokers)
    assert running.wait(180) == 0, running.output()
    assert len([line for line in running.lines if line.startswith("received message time: ")]) == 3
    assert "forwarder committed 0 of 3 input messages" in running.lines, running.output()


# -- 10-visit --------------------------------------------------------------------------------------------------

def test_visit_resets_all_counters(
    brokers: str, names: Names, state_dir: Path,
    example: Callable[[str, list[str], str], ExampleProcess],
) -> None:
    """10-visit: visit_all's visitor sets every counter to 0; counting then starts over from there."""
    running = example("10-visit/main.py", [
        "--topic", names("visit-clicks"), "--group", names("visit-group"), "--keys", "4", "--messages", "8",
        "--messages-after", "2", "--interval", "0.01", "--partitions", "2", "--state-dir", str(state_dir),
    ], brokers)
    assert running.wait(180) == 0, running.output()
    assert "before reset: key-0=2 key-1=2 key-2=2 key-3=2" in running.lines, running.output()
    assert "visited 4 values" in running.lines, running.output()
    assert "after reset: key-0=0 key-1=0 key-2=0 key-3=0" in running.lines, running.output()
    assert "after 2 more: key-0=1 key-1=1 key-2=0 key-3=0" in running.lines, running.output()
    assert sorted(line for line in running.lines if line.startswith("resetting ")) == [
        f"resetting key-{i}: 2 -> 0" for i in range(4)]
