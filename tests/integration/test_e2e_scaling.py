"""End to end (issue 5): the operator's pods keep counts right while they are scaled, deleted and killed.

Each test applies a ProcessorGroup and a View through the API only and runs the pods the kube-controller-manager
creates through tests/podrunner.py, while an emitter thread keeps clicks flowing:

- scaling 1 -> 4 -> 2 (patching spec.replicas): counts exact, and no partition owned by two pods at once, judged
  from the pods' "assigned/revoked/lost partitions" log lines (one host, one clock); the time from each patch to
  every pod holding its new assignment is printed (the note on issue 5 quotes it);
- deleting a pod (graceful): its replacement opens the same volume and starts from the stored table offsets;
- SIGKILL of a pod's process: the pod runner restarts it (restartPolicy Always) and no update is lost (B7).
"""

from __future__ import annotations

import datetime
import json
import os
import random
import re
import signal
import textwrap
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Names, wait_until
from operator_cluster import (
    Cluster,
    Operator,
    processor_group,
    wait_for,
)
from podrunner import PodRunner
from pygoka import Emitter
from pygoka.codec import String
from test_e2e_click_count import assert_counts, query, ready, view

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(600)]
PARTITIONS, USERS, MAX_CLICKS = 6, 200, 20_000
STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) "
LINE = re.compile(STAMP + r".*group \S+: (assigned|revoked|lost) partitions \[([\d, ]*)\]")
OPENED = re.compile(r"opened table partition (\d+) at stored offset (\S+)")


def graph_module(workdir: Path, group: str, clicks: str) -> str:
    """graph_module is the click counter, plus a log line with each table partition's stored offset at open."""
    workdir.mkdir(parents=True, exist_ok=True)
    module = f"scaling_{group.replace('-', '_')}"
    (workdir / f"{module}.py").write_text(textwrap.dedent(f"""
        import logging

        from pygoka.codec import Int64, String
        from pygoka.graph import Input, Persist, define_group
        from pygoka.table import PartitionTable

        # Test instrumentation: what RocksDB on the pod's volume holds when a partition is opened.
        _init = PartitionTable.__init__

        def _logged_init(self, topic, partition, storage):
            _init(self, topic, partition, storage)
            logging.getLogger("e2e").info("opened table partition %d at stored offset %s", partition, self.offset())

        PartitionTable.__init__ = _logged_init

        def count(ctx, msg):
            ctx.set_value((ctx.value() or 0) + 1)

        graph = define_group({group!r}, Input({clicks!r}, String(), count), Persist(Int64()))
    """))
    return f"{module}:graph"


class ClickStream:
    """ClickStream emits clicks from a thread at a steady pace until stop() or MAX_CLICKS; truth is what it sent."""

    def __init__(self, brokers: str, topic: str, per_second: int = 300) -> None:
        self.brokers, self.topic, self.per_second = brokers, topic, per_second
        self.truth: Counter[str] = Counter()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clicks", daemon=True)

    def start(self) -> ClickStream:
        self._thread.start()
        return self

    def sent(self) -> int:
        return sum(self.truth.values())

    def _run(self) -> None:
        rng = random.Random(self.topic)
        try:
            with Emitter(self.brokers, self.topic, String(), partitions=PARTITIONS) as emitter:
                # Every user clicks at least once so every partition has a table.
                users = [f"user-{u}" for u in range(USERS)]
                while not self._stop.is_set() and self.sent() < MAX_CLICKS:
                    batch = users if not self.truth else [f"user-{rng.randrange(USERS)}"
                                                          for _ in range(self.per_second // 10)]
                    for user in batch:
                        emitter.emit(user, "click")
                        self.truth[user] += 1
                    self._stop.wait(0.1)
                assert emitter.flush(60) == 0
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread by stop()
            self.error = exc

    def stop(self) -> Counter[str]:
        self._stop.set()
        self._thread.join(90)
        assert not self._thread.is_alive(), "emitter thread did not finish"
        assert self.error is None, f"emitter failed: {self.error!r}"
        return self.truth


def consumer_args(session_ms: int) -> dict[str, Any]:
    """consumer_args is a podTemplate giving the pods short consumer sessions, so rebalances end quickly."""
    args = ["--consumer-config", f"session.timeout.ms={session_ms}", "--consumer-config", "heartbeat.interval.ms=500"]
    return {"spec": {"containers": [{"name": "pygoka", "args": args}]}}


def parse_time(stamp: str) -> float:
    return datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def assignment_events(log: Path) -> list[tuple[float, str, set[int]]]:
    """assignment_events are a pod log's (time, assigned|revoked|lost, partitions), in order."""
    events = []
    for line in log.read_text(errors="replace").splitlines():
        match = LINE.match(line)
        if match:
            numbers = {int(n) for n in match.group(3).replace(" ", "").split(",") if n}
            events.append((parse_time(match.group(1)), match.group(2), numbers))
    return events


def last_time(log: Path) -> float:
    stamps = re.findall(STAMP, log.read_text(errors="replace"), re.M)
    return parse_time(stamps[-1]) if stamps else 0.0


def ownership(runner: PodRunner) -> dict[int, list[tuple[float, float, str]]]:
    """ownership is, per partition, the intervals (start, end, pod) a pod held it between assign and revoke/lose.

    Eager rebalancing replaces a member's whole assignment on assign; a still-open interval ends now for a
    running pod, or at the pod's last log line when its process is gone (a graceful close revokes first).
    """
    running = {pod.name for pod in list(runner.pods.values()) if pod.process.poll() is None}
    held: dict[int, list[tuple[float, float, str]]] = {}
    for log in sorted((runner.root / "logs").glob("*.log")):
        pod, owned = log.stem, {}  # type: ignore[var-annotated]
        for stamp, kind, numbers in assignment_events(log):
            if kind == "assigned":
                for number, since in owned.items():
                    held.setdefault(number, []).append((since, stamp, pod))
                owned = dict.fromkeys(numbers, stamp)
            else:
                for number in numbers & set(owned):
                    held.setdefault(number, []).append((owned.pop(number), stamp, pod))
        end = time.time() if pod in running else last_time(log)
        for number, since in owned.items():
            held.setdefault(number, []).append((since, end, pod))
    return held


def overlaps(held: dict[int, list[tuple[float, float, str]]]) -> list[str]:
    """overlaps lists every partition that two different pods held during a common moment."""
    found = []
    for number, intervals in held.items():
        for i, (start, end, pod) in enumerate(intervals):
            for other_start, other_end, other in intervals[i + 1:]:
                if pod != other and start < other_end and other_start < end:
                    found.append(f"partition {number}: {pod} [{start:.3f}, {end:.3f}] and "
                                 f"{other} [{other_start:.3f}, {other_end:.3f}]")
    return found


def current_assignment(runner: PodRunner, pods: list[str], since: float) -> dict[str, set[int]] | None:
    """current_assignment is each pod's latest assignment made after since, or None while a pod has none."""
    result = {}
    for pod in pods:
        log = runner.root / "logs" / f"{pod}.log"
        events = assignment_events(log) if log.exists() else []
        if not events or events[-1][1] != "assigned" or events[-1][0] < since:
            return None
        result[pod] = events[-1][2]
    return result


def settled(installed: Cluster, runner: PodRunner, group: str, namespace: str, replicas: int,
            since: float) -> Callable[[], bool]:
    """settled holds once replicas pods are ready and their post-patch assignments split every partition."""
    pods = [f"{group}-{i}" for i in range(replicas)]

    def check() -> bool:
        assert not runner.errors, f"pod runner failed: {runner.errors[-3:]}"
        assignment = current_assignment(runner, pods, since)
        if assignment is None or sorted(n for numbers in assignment.values() for n in numbers) != \
                list(range(PARTITIONS)):
            return False
        # The removed pods must be gone, not just idle.
        running = {pod.name for pod in list(runner.pods.values()) if pod.process.poll() is None}
        return bool(ready(runner, replicas)(installed.get("pg", group, "-n", namespace))) and \
            {name for name in running if re.fullmatch(rf"{group}-\d+", name)} == set(pods)
    return check


def state(port: int) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=5) as response:
        return json.loads(response.read())


def start_group(installed: Cluster, runner: PodRunner, namespace: str, group: str, clicks: str, graph: str,
                replicas: int, session_ms: int) -> None:
    installed.apply(namespace, processor_group(group, graph=graph, inputs=[clicks], partitions=PARTITIONS,
                                               replicas=replicas, podTemplate=consumer_args(session_ms)))
    installed.apply(namespace, view(group, group))
    wait_for(lambda: installed.get("pg", group, "-n", namespace), ready(runner, replicas),
             f"{replicas} processor pods ready", timeout=180)
    wait_for(lambda: installed.get("view", group, "-n", namespace), ready(runner, 1), "view pod ready", timeout=180)


def drain_and_check(installed: Cluster, runner: PodRunner, namespace: str, group: str, stream: ClickStream,
                    exact: bool) -> None:
    """drain_and_check stops the emitter, waits for lag 0 and compares the View's counts with the truth."""
    truth = stream.stop()
    wait_for(lambda: installed.get("pg", group, "-n", namespace),
             lambda r: (r.get("status") or {}).get("lag") == 0, "group lag drained", timeout=240)
    wait_for(lambda: installed.get("view", group, "-n", namespace), ready(runner, 1), "view pod ready", timeout=120)
    if exact:
        assert_counts(runner, f"{group}-view-0", f"{group}-table", truth)
    else:
        port = runner.port_of(f"{group}-view-0", "query")
        wait_until(lambda: all((query(port, f"{group}-table", u) or 0) >= n for u, n in truth.items()), 180,
                   interval=2, message="every count >= the truth")
        answered = {user: query(port, f"{group}-table", user) for user in truth}
        assert all(answered[user] >= count for user, count in truth.items()), "an update was lost"
    assert runner.errors == []


@pytest.fixture
def setup(installed: Cluster, operator: Operator, tmp_path: Path,
          names: Names) -> Iterator[tuple[PodRunner, str, str, str, str]]:
    """setup is a namespace with a running pod runner, and the group, input topic and graph names."""
    group, clicks, namespace = names("scale"), names("user-clicks"), names("e2e")
    installed.kubectl("create", "namespace", namespace)
    graph = graph_module(tmp_path / "app", group, clicks)
    runner = PodRunner(installed.run_dir / "k8s" / "kubeconfig", namespace, tmp_path / "node", tmp_path / "app")
    runner.start()
    try:
        yield runner, namespace, group, clicks, graph
    finally:
        runner.stop()


def test_scaling_1_to_4_to_2_while_clicks_flow(installed: Cluster, brokers: str,
                                               setup: tuple[PodRunner, str, str, str, str]) -> None:
    """Patching replicas 1 -> 4 -> 2 mid-stream: no partition held by two pods at once, counts exact."""
    runner, namespace, group, clicks, graph = setup
    start_group(installed, runner, namespace, group, clicks, graph, replicas=1, session_ms=6000)
    stream = ClickStream(brokers, clicks).start()
    wait_until(lambda: stream.sent() >= 2_000 or stream.error is not None, 60, message="clicks flowing")
    timings = []
    for replicas in (4, 2):
        patched = time.time()
        installed.kubectl("patch", "pg", group, "-n", namespace, "--type=merge",
                          "-p", json.dumps({"spec": {"replicas": replicas}}))
        wait_until(settled(installed, runner, group, namespace, replicas, patched), 180, interval=0.5,
                   message=f"{replicas} pods ready with the new assignment")
        timings.append((replicas, time.time() - patched))
        assert stream.error is None and stream.sent() < MAX_CLICKS, "the stream must still flow while scaling"
    print("scaling times: " + ", ".join(f"-> {n} replicas in {seconds:.1f} s" for n, seconds in timings))
    drain_and_check(installed, runner, namespace, group, stream, exact=True)
    held = ownership(runner)
    assert sorted(held) == list(range(PARTITIONS))
    assert len({pod for intervals in held.values() for _, _, pod in intervals}) == 4
    assert overlaps(held) == []


def test_a_deleted_pod_resumes_from_its_volume(installed: Cluster, brokers: str,
                                               setup: tuple[PodRunner, str, str, str, str]) -> None:
    """A gracefully deleted pod is recreated on the same volume and opens its tables at the stored offsets."""
    runner, namespace, group, clicks, graph = setup
    start_group(installed, runner, namespace, group, clicks, graph, replicas=2, session_ms=10000)
    stream = ClickStream(brokers, clicks).start()
    pod = f"{group}-0"

    def stored_offsets() -> dict[int, int]:
        tables = [p["table"] for proc in state(runner.port_of(pod))["processors"] for p in proc["partitions"]]
        return {t["partition"]: t["offset"] for t in tables if t and t["offset"] is not None}

    wait_until(lambda: stream.sent() >= 4_000 and len(stored_offsets()) > 0, 90, message="pod 0 checkpointed")
    before = stored_offsets()
    old_uid = installed.get("pod", pod, "-n", namespace)["metadata"]["uid"]
    log = runner.root / "logs" / f"{pod}.log"
    lines_before = len(log.read_text(errors="replace").splitlines())
    installed.kubectl("delete", "pod", pod, "-n", namespace, "--wait=false")
    wait_for(lambda: installed.get("pod", pod, "-n", namespace),
             lambda p: p["metadata"]["uid"] != old_uid and any(
                 c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions", [])),
             "pod 0 recreated and ready", timeout=180)
    assert stream.error is None and stream.sent() < MAX_CLICKS, "the stream must still flow across the restart"
    drain_and_check(installed, runner, namespace, group, stream, exact=True)
    after = log.read_text(errors="replace").splitlines()[lines_before:]
    opened = {int(m.group(1)): m.group(2) for m in map(OPENED.search, after) if m}
    resumed = {number: opened[number] for number in before if number in opened}
    assert resumed, f"the new pod opened none of {sorted(before)}; it opened {opened}"
    # The replacement's RocksDB already held each partition up to at least where the old pod had stored it.
    assert all(offset != "None" and int(offset) >= before[n] for n, offset in resumed.items()), (before, resumed)


def test_sigkill_of_a_pod_loses_no_update(installed: Cluster, brokers: str,
                                          setup: tuple[PodRunner, str, str, str, str]) -> None:
    """SIGKILL of a pod's process mid-stream: it is restarted, the group recovers, every count >= the truth."""
    runner, namespace, group, clicks, graph = setup
    start_group(installed, runner, namespace, group, clicks, graph, replicas=2, session_ms=10000)
    stream = ClickStream(brokers, clicks).start()
    wait_until(lambda: stream.sent() >= 4_000 or stream.error is not None, 60, message="clicks flowing")
    (victim,) = [p for p in list(runner.pods.values()) if p.name == f"{group}-1"]
    os.kill(victim.process.pid, signal.SIGKILL)
    wait_until(lambda: victim.restarts == 1 and victim.process.poll() is None, 60, message="pod 1 restarted")
    wait_for(lambda: installed.get("pg", group, "-n", namespace), ready(runner, 2), "both pods ready again",
             timeout=180)
    assert stream.error is None and stream.sent() < MAX_CLICKS, "the stream must still flow across the kill"
    drain_and_check(installed, runner, namespace, group, stream, exact=False)
