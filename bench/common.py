"""Shared helpers of the pygoka benchmarks: topics, fast preloading, measuring, phases, result files.

Every measured phase runs in a fresh child process (run_phase), so its CPU time and peak RSS are its
own and not those of the preloading producer or of an earlier phase.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from confluent_kafka.cimpl import NewTopic

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
#: SEED makes the key sequence (and so the expected counts) the same in the parent and every phase.
SEED = 20240611
#: The value of every click message; its content is irrelevant to the counts.
CLICK_VALUE = b"1700000000000"

Phase = Callable[[dict[str, Any]], dict[str, Any]]


def default_brokers() -> str:
    """default_brokers is $PYGOKA_BROKERS or the broker scripts/test.sh starts."""
    return os.environ.get("PYGOKA_BROKERS", "127.0.0.1:9092")


def unique_name(base: str) -> str:
    """unique_name appends a random suffix, so runs never share topics or groups."""
    return f"{base}-{uuid.uuid4().hex[:8]}"


def base_parser(description: str) -> argparse.ArgumentParser:
    """base_parser has the flags every benchmark takes, plus the hidden ones of a phase child."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--brokers", default=default_brokers(), help="bootstrap servers (default: $PYGOKA_BROKERS "
                        "or 127.0.0.1:9092)")
    parser.add_argument("--partitions", type=int, default=8, help="partitions of the topics (default 8)")
    parser.add_argument("--repeat", type=int, default=1, help="measure each phase N times; report the median")
    parser.add_argument("--json", type=Path, help="also write the JSON result to this path")
    parser.add_argument("--keep-topics", action="store_true", help="do not delete the topics and groups afterwards")
    parser.add_argument("--consumer-config", action="append", default=[], metavar="KEY=VALUE",
                        help="librdkafka consumer setting for pygoka (consumer_config) and the consume floor; "
                        "repeatable, e.g. fetch.queue.backoff.ms=10")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds a phase may take before it fails")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--params", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return parser


def consumer_overrides(pairs: list[str]) -> dict[str, Any]:
    """consumer_overrides turns KEY=VALUE flags into a librdkafka config, integers as int."""
    config: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--consumer-config wants KEY=VALUE, got {pair!r}")
        config[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else value.strip()
    return config


# -- topics ------------------------------------------------------------------------------------------


def admin(brokers: str) -> AdminClient:
    """admin is an AdminClient for brokers."""
    return AdminClient({"bootstrap.servers": brokers, "log_level": 4})  # no info lines on teardown


def create_topic(brokers: str, topic: str, partitions: int, config: dict[str, str] | None = None) -> None:
    """create_topic creates topic and waits until every partition's leader answers for it.

    A leader in the metadata is not enough: right after the creation it may still refuse the partition
    (NOT_LEADER_OR_FOLLOWER), which Goka's processor does not retry when it asks for a table's oldest offset.
    """
    client = admin(brokers)
    future = client.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=-1,
                                            config=config or {})], operation_timeout=30)[topic]
    future.result(timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # Answers for every partition number also tell that all partitions exist and have leaders.
        if _leaders_answer(client, topic, partitions):
            return
        time.sleep(0.05)
    raise RuntimeError(f"topic {topic} has no leaders that answer for it after 60s")


def _leaders_answer(client: AdminClient, topic: str, partitions: int) -> bool:
    """_leaders_answer tells whether every partition's leader answers a ListOffsets request for it."""
    requests = {TopicPartition(topic, p): OffsetSpec.earliest() for p in range(partitions)}
    try:
        for answer in client.list_offsets(requests, request_timeout=10).values():
            answer.result()
    except KafkaException:
        return False
    return True


def delete_topics(brokers: str, topics: Iterable[str]) -> None:
    """delete_topics deletes topics, ignoring those that do not exist; the shared broker's disk is finite."""
    names = list(topics)
    if not names:
        return
    client = admin(brokers)  # kept referenced: futures of a destroyed client never complete
    for topic, future in client.delete_topics(names, operation_timeout=30).items():
        try:
            future.result(timeout=60)
        except KafkaException as exc:
            print(f"note: deleting topic {topic} failed: {exc}", file=sys.stderr)


def delete_groups(brokers: str, groups: Iterable[str]) -> None:
    """delete_groups deletes consumer groups (and their committed offsets), ignoring failures."""
    names = list(groups)
    if not names:
        return
    client = admin(brokers)  # kept referenced: futures of a destroyed client never complete
    for group, future in client.delete_consumer_groups(names, request_timeout=30).items():
        try:
            future.result(timeout=60)
        except (KafkaException, TimeoutError) as exc:
            print(f"note: deleting group {group} failed: {exc}", file=sys.stderr)


def end_offsets(brokers: str, topic: str) -> dict[int, tuple[int, int]]:
    """end_offsets are the (low, high) watermarks of every partition of topic."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": unique_name("bench-watermarks"),
                         "enable.auto.commit": False})
    try:
        info = consumer.list_topics(topic=topic, timeout=10).topics[topic]
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                for p in sorted(info.partitions)}
    finally:
        consumer.close()


def record_count(brokers: str, topic: str) -> int:
    """record_count is the number of offsets in topic (high minus low, summed over partitions)."""
    return sum(high - low for low, high in end_offsets(brokers, topic).values())


def watch_topic(brokers: str, topic: str, on_record: Callable[[bytes, bytes, int], None], ready: threading.Event,
                stop: threading.Event) -> None:
    """watch_topic calls on_record(key, value, partition) on topic's records from the start until stop; sets ready."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": unique_name("compare-watch"),
                         "enable.auto.commit": False, "fetch.wait.max.ms": 5})
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    ready.set()
    while not stop.is_set():
        # Not consume(1000, 0.05) alone: that returns only with 1,000 records or after 50 ms, which
        # would add up to 50 ms to every measured arrival.
        messages = consumer.consume(num_messages=1, timeout=0.05)
        if messages:
            messages += consumer.consume(num_messages=1000, timeout=0)
        for message in messages:
            key, value = message.key(), message.value()
            if message.error() is None and key is not None and value is not None:
                on_record(key, value, message.partition())
    consumer.close()


# -- data --------------------------------------------------------------------------------------------


def key_name(index: int) -> str:
    """key_name is the key of user index in the click workload."""
    return f"user-{index:05d}"


def key_indices(messages: int, keys: int, seed: int = SEED, chunk: int = 100_000) -> Iterator[list[int]]:
    """key_indices yields the key of every click message, in chunks, uniformly drawn with a fixed seed."""
    rng = random.Random(seed)
    population = range(keys)
    left = messages
    while left > 0:
        n = min(chunk, left)
        yield rng.choices(population, k=n)
        left -= n


def expected_counts(messages: int, keys: int) -> Counter[int]:
    """expected_counts are the click counts per key index the workload must produce."""
    counts: Counter[int] = Counter()
    for chunk in key_indices(messages, keys):
        counts.update(chunk)
    return counts


def preload(brokers: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> tuple[int, float]:
    """preload produces records as fast as librdkafka can, placing keys as pygoka does (FNV-1a).

    There is no delivery callback: a Python call per message would dominate; the caller checks the
    topic's record count afterwards instead. It returns (records produced, seconds).
    """
    producer = Producer({
        "bootstrap.servers": brokers,
        "partitioner": "fnv1a",
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1 << 20,
    })
    produce = producer.produce
    started = time.monotonic()
    count = 0
    for key, value in records:
        while True:
            try:
                produce(topic, value, key)
                break
            except BufferError:
                # The local queue is full: let librdkafka send some of it.
                producer.poll(0.05)
        count += 1
    left = producer.flush(120)
    if left:
        raise RuntimeError(f"preloading {topic}: {left} records still undelivered after 120s")
    return count, time.monotonic() - started


def click_records(messages: int, keys: int) -> Iterator[tuple[bytes, bytes]]:
    """click_records are the click messages: key user-NNNNN, a constant timestamp-like value."""
    names = [key_name(i).encode() for i in range(keys)]
    for chunk in key_indices(messages, keys):
        for index in chunk:
            yield names[index], CLICK_VALUE


# -- measuring ---------------------------------------------------------------------------------------


def cpu_seconds() -> float:
    """cpu_seconds is the user+system CPU time of this process, all threads (librdkafka's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_mib() -> float:
    """rss_mib is the current resident set size in MiB."""
    return _status_kib("VmRSS") / 1024


def peak_rss_mib() -> float:
    """peak_rss_mib is the peak resident set size (VmHWM) in MiB since start or reset_peak_rss."""
    return _status_kib("VmHWM") / 1024


def reset_peak_rss() -> None:
    """reset_peak_rss makes VmHWM start again from the current RSS (Linux >= 4.0), so the peak is the phase's."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


class Meter:
    """Meter measures wall time, CPU time and peak RSS from its creation on."""

    def __init__(self) -> None:
        reset_peak_rss()
        self.rss_start = rss_mib()
        self.cpu_start = cpu_seconds()
        self.start = time.monotonic()

    def elapsed(self) -> float:
        """elapsed is the wall time since the meter started."""
        return time.monotonic() - self.start

    def sample(self) -> dict[str, float]:
        """sample is wall seconds, CPU seconds and RSS figures up to now."""
        wall = self.elapsed()
        cpu = cpu_seconds() - self.cpu_start
        return {"wall_s": wall, "cpu_s": cpu, "cpu_cores": cpu / wall if wall > 0 else 0.0,
                "rss_start_mib": self.rss_start, "peak_rss_mib": peak_rss_mib()}


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02,
             check: Callable[[], None] | None = None) -> Any:
    """wait_for polls condition until truthy; check may raise to abort (e.g. the processor failed)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if check is not None:
            check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# -- phases in child processes -----------------------------------------------------------------------


def run_phase(script: Path, phase: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
    """run_phase runs one phase of script in a fresh interpreter and returns the dict it produced."""
    with tempfile.TemporaryDirectory(prefix="pygoka-bench-") as tmp:
        params_path, out_path = Path(tmp) / "params.json", Path(tmp) / "out.json"
        params_path.write_text(json.dumps(params))
        command = [sys.executable, str(script), "--phase", phase, "--params", str(params_path),
                   "--out", str(out_path)]
        completed = subprocess.run(command, timeout=timeout + 60, check=False)
        if completed.returncode != 0 or not out_path.exists():
            raise RuntimeError(f"phase {phase} failed with exit code {completed.returncode}")
        result: dict[str, Any] = json.loads(out_path.read_text())
        return result


def phase_main(args: argparse.Namespace, phases: Mapping[str, Phase]) -> None:
    """phase_main is the child side of run_phase: run the named phase and write its result."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    params = json.loads(args.params.read_text())
    result = phases[args.phase](params)
    args.out.write_text(json.dumps(result))


# -- summaries and result files ----------------------------------------------------------------------


def summarize(values: list[float]) -> dict[str, float]:
    """summarize is the median, min, max and relative spread ((max - min) / median) of values."""
    median = statistics.median(values)
    return {"median": median, "min": min(values), "max": max(values),
            "spread": (max(values) - min(values)) / median if median else 0.0, "n": len(values)}


def summarize_runs(runs: list[dict[str, Any]], metrics: Iterable[str]) -> dict[str, dict[str, float]]:
    """summarize_runs summarizes each numeric metric over the repeated runs of one phase."""
    summary = {}
    for metric in metrics:
        # Some metrics (e.g. a check done on the last run only) exist in some runs only.
        values = [float(run[metric]) for run in runs if isinstance(run.get(metric), (int, float))]
        if values:
            summary[metric] = summarize(values)
    return summary


def environment(brokers: str) -> dict[str, Any]:
    """environment records what the figures depend on: machine, load, versions, commit."""
    import confluent_kafka
    import rocksdict  # noqa: F401 - imported to prove it is importable; it has no version attribute

    try:
        commit = subprocess.run(["git", "-C", str(BENCH_DIR), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": platform.node(), "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
        "python": platform.python_version(), "confluent_kafka": confluent_kafka.version()[0],
        "librdkafka": confluent_kafka.libversion()[0], "git_commit": commit, "brokers": brokers,
    }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def markdown(title: str, result: dict[str, Any]) -> str:
    """markdown renders a result: environment, parameters, and a median/min/max table per phase."""
    lines = [f"# {title}", "", f"- time: {result['environment']['time_utc']}, commit "
             f"{result['environment']['git_commit']}, {result['environment']['cpus']} CPUs, load "
             f"{', '.join(f'{x:.2f}' for x in result['environment']['load_avg'])}",
             f"- parameters: {', '.join(f'{k}={v}' for k, v in result['parameters'].items())}", ""]
    for phase, metrics in result["summary"].items():
        lines += [f"## {phase}", "", "| metric | median | min | max | spread |", "|---|---:|---:|---:|---:|"]
        for metric, stats in metrics.items():
            lines.append(f"| {metric} | {_fmt(stats['median'])} | {_fmt(stats['min'])} | {_fmt(stats['max'])} | "
                         f"{stats['spread']:.1%} |")
        lines.append("")
    if result.get("ratios"):
        lines += ["## ratios", "", "| ratio | value |", "|---|---:|"]
        lines += [f"| {name} | {value:.2f} |" for name, value in result["ratios"].items()]
        lines.append("")
    return "\n".join(lines)


def write_results(name: str, title: str, result: dict[str, Any], json_path: Path | None) -> Path:
    """write_results writes bench/results/<name>-<time>.json and .md (and json_path); returns the .md path."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = RESULTS_DIR / f"{name}-{stamp}"
    text = json.dumps(result, indent=2, sort_keys=False)
    base.with_suffix(".json").write_text(text + "\n")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(text + "\n")
    md = markdown(title, result)
    base.with_suffix(".md").write_text(md)
    print(md)
    print(f"results: {base}.json, {base}.md")
    return base.with_suffix(".md")
