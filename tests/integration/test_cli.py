"""The pygoka command line run as a subprocess: run (B13 counting, B14 restart continuity), exit codes, graph,
topics and run --view against the dev Kafka."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from helpers import Names, Start, wait_until
from pygoka import Emitter, View, codec, group_table

FAST = ["--consumer-config", "session.timeout.ms=6000", "--consumer-config", "heartbeat.interval.ms=500"]

GRAPH_MODULE = """
from pygoka import Input, Join, Persist, codec, define_group

def count(ctx, msg):
    if msg == "boom":
        raise RuntimeError("boom in callback")
    ctx.set_value((ctx.value() or 0) + 1)

graph = define_group({group!r}, Input({topic!r}, codec.String(), count), Persist(codec.Int64()))

def make_graph():
    return graph

def joined():
    return define_group({group!r}, Input({topic!r}, codec.String(), count), Join({join!r}, codec.Int64()),
                        Persist(codec.Int64()))

not_a_graph = 42
"""


class Cli:
    """Cli is one `python -m pygoka.cli ...` child whose stderr lines are collected as they come."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "pygoka.cli", *args], cwd=cwd, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr: list[str] = []
        self.stdout = ""
        self._err = threading.Thread(target=self._read_err, daemon=True)
        self._err.start()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))

    def wait(self, timeout: float = 120.0) -> int:
        """wait waits for the child to exit and returns its exit code."""
        assert self.proc.stdout is not None
        try:
            self.stdout = self.proc.stdout.read()
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"pygoka did not exit within {timeout}s; stderr:\n{self.errors()}")
        self._err.join(10)
        return code

    def terminate(self, timeout: float = 120.0) -> int:
        """terminate sends SIGTERM and returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def errors(self) -> str:
        """errors is everything written to stderr so far."""
        return "\n".join(self.stderr)


@pytest.fixture
def cli(tmp_path: Path, brokers: str) -> Iterator[Callable[..., Cli]]:
    """cli starts `pygoka ...` in tmp_path (where the test's graph module lives); kills leftovers at teardown."""
    started: list[Cli] = []
    env = {**os.environ, "PYGOKA_BROKERS": brokers, "PYTHONUNBUFFERED": "1"}

    def run(*args: str, extra_env: dict[str, str] | None = None) -> Cli:
        child = Cli(list(args), tmp_path, {**env, **(extra_env or {})})
        started.append(child)
        return child

    yield run
    for child in started:
        if child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait(10)


@pytest.fixture
def module(tmp_path: Path, names: Names) -> dict[str, str]:
    """module writes the graph module clicks_graph.py into tmp_path and returns its topic/group names."""
    spec = {"topic": names("cli-clicks"), "group": names("cli-group"), "join": names("cli-join")}
    (tmp_path / "clicks_graph.py").write_text(textwrap.dedent(GRAPH_MODULE.format(**spec)))
    return spec


def emit(brokers: str, topic: str, keys: list[str], value: str = "click", partitions: int = 2) -> None:
    """emit sends value once per entry of keys, creating topic with partitions if missing."""
    with Emitter(brokers, topic, codec.String(), partitions=partitions) as emitter:
        for key in keys:
            emitter.emit_sync(key, value)


def committed_total(brokers: str, group: str, topic: str, partitions: int) -> int:
    """committed_total sums the group's committed offsets of topic."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(topic, n) for n in range(partitions)], timeout=15)
        return sum(max(tp.offset, 0) for tp in found)
    finally:
        consumer.close()


def counts_are(view: View, expected: dict[str, int]) -> bool:
    """counts_are tells whether the view holds exactly the expected counts of those keys."""
    return view.recovered() and all(view.get(key) == count for key, count in expected.items())


def test_run_counts_stops_on_sigterm_and_restart_continues(
    brokers: str, cli: Callable[..., Cli], module: dict[str, str], tmp_path: Path,
    start: Start,
) -> None:
    """run counts per key; SIGTERM exits 0 after committing; topics shows the lag; a restart counts on (B13, B14)."""
    topic, group = module["topic"], module["group"]
    state = str(tmp_path / "state")
    run_args = ["run", "clicks_graph:graph", "--state-dir", state, "--http-port", "0", "--partitions", "2", *FAST]
    emit(brokers, topic, ["a", "a", "b", "a", "b", "c"])

    first = cli(*run_args)
    table = wait_until(lambda: _table_exists(brokers, group_table(group)) or first.proc.poll() is not None,
                       timeout=90, message="the group table to be created")
    assert table is True, first.errors()
    view = View(brokers, group_table(group), codec.Int64())
    start(view)
    wait_until(lambda: counts_are(view, {"a": 3, "b": 2, "c": 1}), timeout=90, message="counts a=3 b=2 c=1")
    assert first.terminate() == 0, first.errors()
    assert committed_total(brokers, group, topic, 2) == 6

    # Emitted while nobody processes: exactly this is the group's lag.
    emit(brokers, topic, ["a", "c"])
    report = cli("topics", "clicks_graph:graph", "--json")
    assert report.wait() == 0, report.errors()
    topics = {t["topic"]: t for t in json.loads(report.stdout)["topics"]}
    assert topics[topic]["partitions"] == 2
    assert topics[topic]["cleanup.policy"] == "delete"
    assert topics[topic]["lag"] == 2
    assert sum(p["committed"] for p in topics[topic]["offsets"]) == 6
    assert sum(p["end"] for p in topics[topic]["offsets"]) == 8
    assert topics[group_table(group)]["cleanup.policy"] == "compact"
    by_name = cli("topics", group, "--input", topic, "--json")
    assert by_name.wait() == 0, by_name.errors()
    assert {t["topic"]: t["lag"] for t in json.loads(by_name.stdout)["topics"]}[topic] == 2

    second = cli(*run_args)
    wait_until(lambda: counts_are(view, {"a": 4, "b": 2, "c": 2}), timeout=90, message="counts a=4 b=2 c=2")
    assert second.terminate() == 0, second.errors()
    assert committed_total(brokers, group, topic, 2) == 8
    assert view.get("a") == 4


def test_run_exactly_once_from_the_environment(
    brokers: str, cli: Callable[..., Cli], module: dict[str, str], tmp_path: Path,
    start: Start,
) -> None:
    """PYGOKA_GUARANTEE=exactly_once (what the operator sets) runs the group in transactions, per instance id."""
    topic, group = module["topic"], module["group"]
    emit(brokers, topic, ["a", "b", "a"])
    child = cli("run", "clicks_graph:graph", "--state-dir", str(tmp_path / "state"), "--http-port", "0",
                "--partitions", "2", *FAST,
                extra_env={"PYGOKA_GUARANTEE": "exactly_once", "PYGOKA_INSTANCE_ID": "pod-0"})
    wait_until(lambda: _table_exists(brokers, group_table(group)) or child.proc.poll() is not None, timeout=90,
               message="the group table to be created")
    view = View(brokers, group_table(group), codec.Int64())
    start(view)
    wait_until(lambda: counts_are(view, {"a": 2, "b": 1}), timeout=90, message="counts a=2 b=1")
    assert child.terminate() == 0, child.errors()
    assert f"group {group}: exactly-once with transactional id {group}-pod-0" in child.errors()
    assert committed_total(brokers, group, topic, 2) == 3


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("PYGOKA_GUARANTEE", "twice", "$PYGOKA_GUARANTEE must be one of at_least_once, exactly_once, not 'twice'"),
    ("PYGOKA_MAX_OUTAGE", "long", "$PYGOKA_MAX_OUTAGE must be a number, not 'long'"),
])
def test_bad_guarantee_settings_exit_2(cli: Callable[..., Cli], module: dict[str, str], variable: str, value: str,
                                       message: str) -> None:
    child = cli("run", "clicks_graph:graph", "--http-port", "0", extra_env={variable: value})
    assert child.wait() == 2, child.errors()
    assert message in child.errors()


def _table_exists(brokers: str, topic: str) -> bool:
    """_table_exists tells whether topic exists."""
    return topic in AdminClient({"bootstrap.servers": brokers}).list_topics(timeout=10).topics


def test_callback_failure_exits_1_naming_topic_partition_offset(
    brokers: str, cli: Callable[..., Cli], module: dict[str, str], tmp_path: Path,
) -> None:
    """A callback raising stops the processor: exit 1, stderr names topic, partition and offset."""
    emit(brokers, module["topic"], ["k"], value="boom", partitions=1)
    child = cli("run", "clicks_graph:make_graph", "--state-dir", str(tmp_path / "state"), "--http-port", "0", *FAST)
    assert child.wait() == 1, child.errors()
    errors = child.errors()
    assert f"topic '{module['topic']}'" in errors
    assert "partition 0" in errors
    assert "offset 0" in errors
    assert "boom in callback" in errors


def test_unusable_state_dir_exits_4(
    brokers: str, cli: Callable[..., Cli], module: dict[str, str], tmp_path: Path,
) -> None:
    """A state dir that cannot hold RocksDB (it lies under a regular file) is a storage error: exit 4."""
    emit(brokers, module["topic"], ["k"], partitions=1)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    child = cli("run", "clicks_graph:graph", "--state-dir", str(blocker / "state"), "--http-port", "0", *FAST)
    assert child.wait() == 4, child.errors()
    assert "StorageError" in child.errors()


@pytest.mark.parametrize("target", ["clicks_graph:missing", "no_such_module:graph", "clicks_graph",
                                    "clicks_graph:not_a_graph"])
def test_bad_module_attr_exits_2(cli: Callable[..., Cli], module: dict[str, str], target: str) -> None:
    """A MODULE:ATTR that does not resolve to a graph is a usage error: exit 2 with a message."""
    child = cli("run", target, "--http-port", "0")
    assert child.wait() == 2, child.errors()
    assert child.errors().startswith("pygoka: "), child.errors()


def test_missing_brokers_exits_2(cli: Callable[..., Cli], module: dict[str, str]) -> None:
    """Without --brokers and PYGOKA_BROKERS, run is a configuration error: exit 2."""
    child = cli("run", "clicks_graph:graph", "--http-port", "0", extra_env={"PYGOKA_BROKERS": ""})
    assert child.wait() == 2, child.errors()
    assert "PYGOKA_BROKERS" in child.errors()


def test_copartitioning_mismatch_exits_3(
    brokers: str, cli: Callable[..., Cli], module: dict[str, str], tmp_path: Path,
) -> None:
    """An input of 2 partitions joined with a table of 3 is a topic error: exit 3 (B23)."""
    emit(brokers, module["topic"], ["k"], partitions=2)
    emit(brokers, module["join"], ["k"], value="1", partitions=3)
    child = cli("run", "clicks_graph:joined", "--state-dir", str(tmp_path / "state"), "--http-port", "0")
    assert child.wait() == 3, child.errors()
    assert "copartitioned" in child.errors()


def test_graph_json_and_table(cli: Callable[..., Cli], module: dict[str, str]) -> None:
    """graph --json prints the graph's topics and codecs; without --json a table of the same."""
    child = cli("graph", "clicks_graph:joined", "--json")
    assert child.wait() == 0, child.errors()
    group = module["group"]
    assert json.loads(child.stdout) == {
        "group": group,
        "inputs": [{"topic": module["topic"], "codec": "String"}],
        "loop": None,
        "joins": [{"topic": module["join"], "codec": "Int64"}],
        "lookups": [],
        "outputs": [],
        "persist": {"topic": f"{group}-table", "codec": "Int64"},
        "visitors": [],
    }
    readable = cli("graph", "clicks_graph:graph")
    assert readable.wait() == 0, readable.errors()
    assert re.search(rf"^input\s+{re.escape(module['topic'])}\s+String$", readable.stdout, re.M), readable.stdout
    assert re.search(rf"^table\s+{re.escape(group)}-table\s+Int64$", readable.stdout, re.M), readable.stdout


def test_run_view_serves_table_over_http(
    brokers: str, cli: Callable[..., Cli], names: Names, tmp_path: Path,
) -> None:
    """run --view TABLE --codec int64 serves the table at /tables/TABLE/KEY, ready once recovered (B26)."""
    table = names("cli-table")
    emit(brokers, table, ["x", "y"], value="7", partitions=2)
    # --http-port 0 disables HTTP, so a free port is picked here.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = cli("run", "--view", table, "--codec", "int64", "--http-port", str(port), "--http-host", "127.0.0.1",
                "--state-dir", str(tmp_path / "view"))
    url = wait_until(lambda: next((m.group(1) for line in child.stderr
                                   if (m := re.search(r"listening on (http://\S+)", line))), None)
                     or child.proc.poll() is not None, timeout=60, message="the HTTP address")
    assert isinstance(url, str), child.errors()
    wait_until(lambda: _get(f"{url}/readyz")[0] == 200, timeout=60, message="readiness")
    status, body = _get(f"{url}/tables/{table}/x")
    assert (status, body["value"]) == (200, 7), body
    assert _get(f"{url}/tables/{table}/nobody")[0] == 404
    assert child.terminate() == 0, child.errors()


def _get(url: str) -> tuple[int, Any]:
    """_get is the status and JSON body of a GET request."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_demo_counts_clicks_until_sigterm(
    cli: Callable[..., Cli], names: Names, tmp_path: Path,
) -> None:
    """demo emits clicks, counts them in RocksDB and prints the view's counts; SIGTERM ends it with 0 (B13, B26)."""
    child = cli("demo", "--topic", names("demo-click"), "--group", names("demo-group"), "--users", "2",
                "--messages", "10", "--interval", "0.02", "--duration", "120", "--quiet",
                "--state-dir", str(tmp_path / "demo"))
    lines: list[str] = []
    assert child.proc.stdout is not None
    stdout = child.proc.stdout

    def read() -> None:
        for line in stdout:
            lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    expected = "[view] emitted=10 processed=10 user-0=5 user-1=5"
    wait_until(lambda: expected in lines or child.proc.poll() is not None, timeout=90, message="5 clicks per user")
    assert expected in lines, "\n".join(lines) + child.errors()
    child.proc.send_signal(signal.SIGTERM)
    assert child.proc.wait(60) == 0, child.errors()
    wait_until(lambda: lines and lines[-1].startswith("emitted "), timeout=10, message="the summary line")
    assert lines[-1] == "emitted 10 clicks, processed 10; stopped"


def test_json_logs_include_librdkafka(
    brokers: str, cli: Callable[..., Cli], module: dict[str, str], tmp_path: Path,
) -> None:
    """PYGOKA_LOG_FORMAT=json: every log line is one JSON object, librdkafka's own lines among them (a consumer
    setting given to the producer makes librdkafka warn when it is created; a refused connection to a second
    bootstrap address is logged only if librdkafka happens to pick that address)."""
    emit(brokers, module["topic"], ["a", "b"])
    child = cli("run", "clicks_graph:graph", "--state-dir", str(tmp_path / "state"), "--http-port", "0",
                "--partitions", "2", "--producer-config", "fetch.wait.max.ms=100", *FAST,
                extra_env={"PYGOKA_LOG_FORMAT": "json"})
    wait_until(lambda: any("partition 1 recovered" in line for line in child.stderr) or child.proc.poll() is not None,
               timeout=90, message="the processor to recover")
    wait_until(lambda: any('"pygoka.librdkafka"' in line for line in child.stderr), timeout=30,
               message="a librdkafka log line")
    assert child.terminate() == 0, child.errors()
    entries = [json.loads(line) for line in child.stderr]
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    assert any(entry["logger"] == "pygoka.librdkafka" and "fetch.wait.max.ms is a consumer property" in entry["message"]
               for entry in entries), entries
    assert any(entry["logger"] == "pygoka.processor" and "assigned partitions" in entry["message"]
               for entry in entries)


def test_bad_log_format_exits_2(cli: Callable[..., Cli], module: dict[str, str]) -> None:
    child = cli("run", "clicks_graph:graph", "--http-port", "0", extra_env={"PYGOKA_LOG_FORMAT": "xml"})
    assert child.wait() == 2
    assert "log format must be one of text, json, not 'xml'" in child.errors()
