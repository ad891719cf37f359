"""Process handling and measuring for bench/compare.py: timing, CPU and peak RSS of any system's processes.

A system's processes are measured from outside, the same way for Python, Go and Java: wall time from
starting them until their group's committed offsets reach the end of the input, CPU seconds from the
kernel's accounting of each process (wait4), and peak RSS from each process's VmHWM, summed over the
processes. Not wait4's ru_maxrss: Linux carries the pre-exec peak over exec, so a child would report
at least the harness's own peak RSS (hundreds of MiB after preloading).
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from common import admin, end_offsets, key_name, unique_name, watch_topic
from confluent_kafka import OFFSET_BEGINNING, Consumer, ConsumerGroupState, Producer, TopicPartition

POLL_SECONDS = 0.05


class Run:
    """Run starts a system's processes, collects their stdout lines, and accounts their CPU and peak RSS."""

    def __init__(self, commands: list[list[str]], system: str) -> None:
        from launch import environment

        self.system = system
        self.lines: list[tuple[float, str]] = []
        self.wall_s = 0.0
        self.cpu_s = 0.0
        self.peak_rss_mib = 0.0
        self._lock = threading.Lock()
        self._logs: list[Path] = []
        self._finished = False
        self.start = time.monotonic()
        self.procs: list[subprocess.Popen[str]] = []
        self._readers: list[threading.Thread] = []
        for command in commands:
            log = Path(tempfile.mkstemp(prefix=f"compare-{system}-", suffix=".log")[1])
            self._logs.append(log)
            with open(log, "w") as stderr:
                proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                        env=environment(system))
            self.procs.append(proc)
            self._readers.append(threading.Thread(target=self._read, args=(proc,), daemon=True))
            self._readers[-1].start()
        self._hwm_kib = [0] * len(self.procs)
        threading.Thread(target=self._sample_hwm, daemon=True).start()

    def _sample_hwm(self) -> None:
        """_sample_hwm keeps each process's latest VmHWM (its own peak RSS) until it exits."""
        while any(proc.returncode is None for proc in self.procs):
            for i in range(len(self.procs)):
                self._read_hwm(i)
            time.sleep(0.05)

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._lock:
                self.lines.append((time.monotonic() - self.start, line.strip()))

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if not self._finished:
            for proc in self.procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        for log in self._logs:
            log.unlink(missing_ok=True)

    def check(self) -> None:
        """check raises if a process exited before it was asked to, with the end of its stderr."""
        for proc, log in zip(self.procs, self._logs, strict=True):
            code = exit_code(proc)
            if code is not None and not self._finished:
                tail = log.read_text()[-3000:]
                raise RuntimeError(f"{self.system} process exited with {code}:\n{tail}")

    def line(self, prefix: str) -> str:
        """line is the first stdout line starting with prefix, or ''."""
        with self._lock:
            return next((text for _, text in self.lines if text.startswith(prefix)), "")

    def all_lines(self, prefix: str) -> list[str]:
        """all_lines are the stdout lines of every process starting with prefix, in the order printed."""
        with self._lock:
            return [text for _, text in self.lines if text.startswith(prefix)]

    def line_time(self, prefix: str) -> float:
        """line_time is when (seconds after the start) the first line with prefix was printed."""
        with self._lock:
            return next(t for t, text in self.lines if text.startswith(prefix))

    def wait_line(self, prefix: str, timeout: float) -> None:
        """wait_line waits until some process printed a line starting with prefix."""
        deadline = time.monotonic() + timeout
        while not self.line(prefix):
            if exit_code(self.procs[0]) is not None:
                time.sleep(0.2)  # let the reader take the last lines of a process that just exited
                if self.line(prefix):
                    return
            self.check_or_exit_ok(prefix)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.system} printed no {prefix} within {timeout:.0f}s")
            time.sleep(0.01)

    def check_or_exit_ok(self, prefix: str) -> None:
        for proc in self.procs:
            code = exit_code(proc)
            if code is not None and (code != 0 or not self.line(prefix)):
                self.check()

    def mark_done(self) -> None:
        """mark_done ends the timed window."""
        self.wall_s = time.monotonic() - self.start

    def finish(self) -> None:
        """finish stops the processes (SIGTERM, then SIGKILL after 60 s) and reads their CPU and peak RSS."""
        if not self.wall_s:
            self.mark_done()
        self.check_or_exit_ok("RECOVERED")
        self._finished = True
        for i, proc in enumerate(self.procs):
            if exit_code(proc) is None:
                self._read_hwm(i)
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            deadline = time.monotonic() + 60
            while True:
                # wait4 rather than Popen.wait: it also returns the process's resource usage.
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    self.cpu_s += usage.ru_utime + usage.ru_stime
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                time.sleep(0.02)
        self.peak_rss_mib = sum(self._hwm_kib) / 1024
        for reader in self._readers:
            reader.join(5)  # the last lines a process printed before it exited

    def _read_hwm(self, i: int) -> None:
        try:
            with open(f"/proc/{self.procs[i].pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        self._hwm_kib[i] = max(self._hwm_kib[i], int(line.split()[1]))
        except (OSError, ValueError):
            pass  # exited (a zombie has no memory figures): keep the last value


def exit_code(proc: subprocess.Popen[str]) -> int | None:
    """exit_code is proc's exit code once it exited, else None, without reaping it (finish's wait4 does)."""
    if proc.returncode is not None:
        return proc.returncode
    info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def wait_committed(brokers: str, group: str, topic: str, timeout: float, run: Run) -> None:
    """wait_committed waits until group's committed offsets of every partition of topic reach its end."""
    ends = {p: high for p, (_, high) in end_offsets(brokers, topic).items()}
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": False})
    try:
        partitions = [TopicPartition(topic, p) for p in ends]
        deadline = time.monotonic() + timeout
        while True:
            committed = consumer.committed(partitions, timeout=10)
            if all(tp.offset >= ends[tp.partition] for tp in committed):
                run.mark_done()
                return
            run.check()
            if time.monotonic() > deadline:
                done = sum(max(tp.offset, 0) for tp in committed)
                raise TimeoutError(f"{run.system}: committed {done} of {sum(ends.values())} offsets in {timeout}s")
            time.sleep(POLL_SECONDS)
    finally:
        consumer.close()


def read_topic(brokers: str, topic: str) -> Iterator[tuple[bytes, bytes]]:
    """read_topic yields the (key, value) records of topic from the beginning to its current end."""
    ends = {p: high for p, (low, high) in end_offsets(brokers, topic).items() if high > low}
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": unique_name("compare-read"),
                         "enable.auto.commit": False, "enable.partition.eof": False})
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        left = dict(ends)
        deadline = time.monotonic() + 300
        while left:
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                if message.error() is not None:
                    continue
                p, offset, key, value = message.partition(), message.offset(), message.key(), message.value()
                if p in left and offset is not None:
                    if offset + 1 >= left[p]:
                        del left[p]
                    if key is not None and value is not None:
                        yield key, value
            # A transactional writer's topic ends with a commit marker, which is never delivered: the position
            # passes it, the last record's offset does not reach the end.
            for tp in consumer.position([TopicPartition(topic, p) for p in left]):
                if tp.offset >= left[tp.partition]:
                    del left[tp.partition]
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: partitions {sorted(left)} not read to their end")
    finally:
        consumer.close()


def wait_stable(brokers: str, group: str, timeout: float, run: Run) -> None:
    """wait_stable waits until the consumer group has members and is STABLE (partitions assigned)."""
    client = admin(brokers)
    deadline = time.monotonic() + timeout
    while True:
        try:
            description = client.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
            if description.state == ConsumerGroupState.STABLE and description.members:
                return
        except Exception:  # noqa: BLE001 - the group may not exist yet
            pass
        run.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{run.system}: group {group} not stable within {timeout:.0f}s")
        time.sleep(0.2)


def latency(brokers: str, run: Run, group: str, clicks: str, state_topic: str,
            decode: Callable[[bytes, bytes], tuple[str, int]], rate: float, seconds: float, keys: int,
            timeout: float) -> dict[str, Any]:
    """latency offers `rate` clicks/s for `seconds` and matches each (key, count) state update to its click.

    The latency of an update is the time from producing the click that made the count (the count-th
    click of that key) to a consumer of the state topic receiving the update. Systems whose state topic
    holds only the last count per key and commit (Kafka Streams' cache, Quix Streams) are measured on
    the updates they write.
    """
    run.wait_line("RUNNING", timeout)
    wait_stable(brokers, group, timeout, run)
    arrivals: dict[tuple[str, int], float] = {}
    stop = threading.Event()
    watcher_ready = threading.Event()

    def arrived(key: bytes, value: bytes, partition: int) -> None:
        arrivals.setdefault(decode(key, value), time.monotonic())

    # The state topic exists once the system runs (Quix Streams creates it when its partitions are assigned).
    deadline = time.monotonic() + timeout
    while state_topic not in admin(brokers).list_topics(timeout=10).topics:
        run.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{run.system}: state topic {state_topic} never appeared")
        time.sleep(0.2)
    watcher = threading.Thread(target=watch_topic, args=(brokers, state_topic, arrived, watcher_ready, stop),
                               daemon=True)
    watcher.start()
    watcher_ready.wait(30)
    producer = Producer({"bootstrap.servers": brokers, "partitioner": "fnv1a", "linger.ms": 0})
    rng = random.Random(7)
    sent: dict[tuple[str, int], float] = {}
    counts: dict[str, int] = {}
    total = int(rate * seconds)
    start = time.monotonic()
    for i in range(total):
        pause = start + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        key = key_name(rng.randrange(keys))
        counts[key] = counts.get(key, 0) + 1
        sent[(key, counts[key])] = time.monotonic()
        producer.produce(clicks, b"1700000000000", key.encode())
        producer.poll(0)
    offered = total / (time.monotonic() - start)
    producer.flush(60)
    wait_committed(brokers, group, clicks, timeout, run)
    deadline = time.monotonic() + 30
    while any((key, count) not in arrivals for key, count in counts.items()) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    watcher.join(10)
    missing = [(key, count) for key, count in counts.items() if (key, count) not in arrivals]
    if missing:
        raise AssertionError(f"{run.system} latency: {len(missing)} keys never reached their final count, "
                             f"e.g. {missing[:5]}")
    samples = sorted((arrivals[k] - t) * 1000 for k, t in sent.items() if k in arrivals)
    return {"offered_per_s": offered, "p50_ms": statistics.median(samples),
            "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))], "samples": len(samples),
            "clicks": total}
