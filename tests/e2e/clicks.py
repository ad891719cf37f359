"""The click-count example on the real node: its manifests under a test's names, clicks, counts and pod logs.

Each test applies examples/k8s/click-count.yaml (the ProcessorGroup and the View) with its own group and topic
(CLICK_COUNT_GROUP / CLICK_COUNT_TOPIC in spec.env, read by examples/k8s/click_count.py), emits clicks from this
machine to the broker the pods use, and reads the counts back from the View's query Service through the API
server's service proxy.
"""

from __future__ import annotations

import copy
import random
import re
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import yaml
from helpers import ROOT, wait_until
from node_cluster import NodeCluster
from pygoka import Emitter
from pygoka.codec import String

sys.path.insert(0, str(ROOT / "bench"))
from common import watch_topic  # bench/ is not a package
from stalls import PartitionArrivals

EXAMPLE = ROOT / "examples" / "k8s" / "click-count.yaml"
#: FAST_SESSION lets a static member that left (a pod scaled in) be noticed in seconds, not librdkafka's 45.
FAST_SESSION = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}
#: CAUGHT_UP is the table reader's line when a partition's recovery ends (runtime/pygoka/table_reader.py).
CAUGHT_UP = re.compile(r"table reader \S+: (\S+)/(\d+) caught up at offset (\d+) after reading (\d+) records "
                       r"from offset (\d+)")


@dataclass
class ClickCount:
    """ClickCount is one test's copy of the example: names, manifests and the truth of what was emitted."""

    cluster: NodeCluster
    namespace: str
    group: str
    partitions: int = 4
    truth: Counter[str] = field(default_factory=Counter)

    @property
    def topic(self) -> str:
        return f"{self.group}-clicks"

    @property
    def table(self) -> str:
        return f"{self.group}-table"

    def manifests(self, **spec: Any) -> list[dict[str, Any]]:
        """manifests are the example's ProcessorGroup and View renamed, with spec overrides for the group."""
        group_doc, view_doc = (copy.deepcopy(doc) for doc in yaml.safe_load_all(EXAMPLE.read_text()))
        env = [{"name": "CLICK_COUNT_GROUP", "value": self.group}, {"name": "CLICK_COUNT_TOPIC", "value": self.topic}]
        group_doc["metadata"]["name"] = self.group
        options = {"consumerConfig": FAST_SESSION, **spec.pop("options", {})}
        group_doc["spec"].update({"options": options, "group": self.group, "inputs": [self.topic],
                                  "partitions": self.partitions, "env": env, "storage": {"size": "100Mi"},
                                  "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}}, **spec})
        view_doc["metadata"]["name"] = self.group
        view_doc["spec"].update({"group": self.group, "storage": {"size": "100Mi"},
                                 "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}}})
        return [group_doc, view_doc]

    def apply(self, with_view: bool = True, **spec: Any) -> None:
        group_doc, view_doc = self.manifests(**spec)
        self.cluster.apply(self.namespace, group_doc)
        if with_view:
            self.cluster.apply(self.namespace, view_doc)

    def get(self, kind: str = "pg") -> Any:
        return self.cluster.get(kind, self.group, "-n", self.namespace)

    def wait(self, check: Callable[[Any], bool], message: str, timeout: float = 180, kind: str = "pg") -> Any:
        found: list[Any] = []

        def done() -> bool:
            resource = self.get(kind)
            if resource is not None and check(resource):
                found.append(resource)
                return True
            return False

        wait_until(done, timeout, interval=1, message=f"{self.namespace}/{self.group}: {message}")
        return found[0]

    def wait_ready(self, replicas: int, kind: str = "pg", timeout: float = 240) -> Any:
        return self.wait(lambda r: (r.get("status") or {}).get("readyReplicas") == replicas
                         and r["spec"].get("replicas", replicas) == replicas,
                         f"{replicas} {kind} pods ready", timeout=timeout, kind=kind)

    def emit(self, clicks: int, users: int = 1_000, seed: int = 1) -> None:
        """emit sends clicks over users (each at least once) and adds them to the truth."""
        rng = random.Random(seed)
        keys = [f"user-{rng.randrange(users)}" for _ in range(clicks - users)] + [f"user-{u}" for u in range(users)]
        with Emitter(self.cluster.brokers, self.topic, String(), partitions=self.partitions) as emitter:
            for key in keys:
                emitter.emit(key, "click")
            assert emitter.flush(60) == 0
        self.truth.update(keys)

    def drained(self) -> Any:
        return self.wait(lambda r: (r.get("status") or {}).get("lag") == 0, "lag 0", timeout=300)

    def count(self, user: str) -> Any:
        answer = self.cluster.proxy_get(self.namespace, f"{self.group}-view", "query", f"/tables/{self.table}/{user}")
        return None if answer is None else answer.get("value")

    def counts(self) -> dict[str, Any]:
        return {user: self.count(user) for user in self.truth}

    def wait_counts(self, exact: bool = True, timeout: float = 240) -> dict[str, Any]:
        """wait_counts waits until the View answers the truth for every user (at least it, unless exact)."""
        def matches(answered: dict[str, Any]) -> bool:
            if exact:
                return answered == dict(self.truth)
            return all(answered[user] is not None and answered[user] >= n for user, n in self.truth.items())

        answers: list[dict[str, Any]] = []

        def answered() -> bool:
            answers.append(self.counts())
            return matches(answers[-1])

        wait_until(answered, timeout, interval=3, message=f"the View's counts {'==' if exact else '>='} the truth")
        return answers[-1]


class Background(ABC):
    """Background runs _run in a daemon thread from __enter__ until stop() (or __exit__) sets _stop."""

    def __init__(self, join_seconds: float) -> None:
        self._join_seconds = join_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """stop sets _stop and waits for the thread, at most join_seconds."""
        self._stop.set()
        self._thread.join(self._join_seconds)

    @abstractmethod
    def _run(self) -> None:
        """_run is the thread's work; it returns soon after _stop is set."""


class ClickStream(Background):
    """ClickStream emits clicks from a thread at a steady pace until stop(); truth is what it sent."""

    def __init__(self, clicks: ClickCount, per_second: int = 500, users: int = 200) -> None:
        super().__init__(join_seconds=60)
        self.clicks = clicks
        self.per_second = per_second
        self.users = users
        self.sent: Counter[str] = Counter()

    def stop(self) -> None:
        """stop ends the stream and adds what it sent to the truth, the first time only."""
        if not self._stop.is_set():
            super().stop()
            self.clicks.truth.update(self.sent)

    def _run(self) -> None:
        rng = random.Random(11)
        with Emitter(self.clicks.cluster.brokers, self.clicks.topic, String(),
                     partitions=self.clicks.partitions) as emitter:
            while not self._stop.is_set():
                started = time.monotonic()
                for _ in range(self.per_second // 10):
                    user = f"user-{rng.randrange(self.users)}"
                    emitter.emit(user, "click")
                    self.sent[user] += 1
                time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
            assert emitter.flush(60) == 0


class TableArrivals(Background):
    """TableArrivals notes when each partition's updates of the group table arrive, read committed as a View reads."""

    def __init__(self, clicks: ClickCount) -> None:
        super().__init__(join_seconds=30)
        self.clicks = clicks
        #: partitions are read once stop() returned: the watcher's thread adds to them until then.
        self.partitions = PartitionArrivals()
        self._ready = threading.Event()

    def __enter__(self) -> Self:
        super().__enter__()
        if not self._ready.wait(30):
            raise TimeoutError(f"the watcher of {self.clicks.table} did not start")
        return self

    def _run(self) -> None:
        watch_topic(self.clicks.cluster.brokers, self.clicks.table,
                    lambda _key, _value, partition: self.partitions.note(partition, time.monotonic()),
                    self._ready, self._stop)


class PodLogs(Background):
    """PodLogs follows (`kubectl logs -f`) every pod of a group as it appears, keeping each run's whole log."""

    def __init__(self, cluster: NodeCluster, namespace: str, selector: str) -> None:
        super().__init__(join_seconds=30)
        self.cluster, self.namespace, self.selector = cluster, namespace, selector
        self.texts: dict[str, list[str]] = {}
        self._followed: set[str] = set()
        self._lock = threading.Lock()

    def _run(self) -> None:
        while not self._stop.is_set():
            for pod in self.cluster.pods(self.namespace, self.selector):
                for status in (pod.get("status") or {}).get("containerStatuses") or []:
                    run = f"{pod['metadata']['name']}#{status.get('containerID', '')}"
                    if status.get("containerID") and run not in self._followed and "running" in status["state"]:
                        self._followed.add(run)
                        threading.Thread(target=self._follow, args=(pod["metadata"]["name"], run),
                                         daemon=True).start()
            self._stop.wait(0.5)

    def _follow(self, pod: str, run: str) -> None:
        argv = [str(self.cluster.bin_dir / "kubectl"), "logs", "-f", "-n", self.namespace, pod]
        with subprocess.Popen(argv, env=self.cluster.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True) as process:
            assert process.stdout is not None
            for line in process.stdout:
                with self._lock:
                    self.texts.setdefault(run, []).append(line)

    def lines(self) -> dict[str, list[str]]:
        with self._lock:
            return {run: list(lines) for run, lines in self.texts.items()}

    def caught_up(self) -> list[tuple[str, int, int, int, int]]:
        """caught_up is every (run, partition, high offset, records read, start offset) of table recoveries."""
        found = []
        for run, lines in self.lines().items():
            for line in lines:
                match = CAUGHT_UP.search(line)
                if match:
                    found.append((run, int(match[2]), int(match[3]), int(match[4]), int(match[5])))
        return found
