"""Goka's 5-multiple example in pygoka: several instances of one processor group, each with a web monitor.

Emitters send clicks of "user-<i % 50>" to "input-A" and of "user-<i % 60>" to "input-B". The group
"multiInput" counts each user's clicks from both streams in its table (JSON {"Clicks": n}). --instances
processes run that group, started --stagger seconds apart, so you can watch Kafka rebalance the partitions
among them: each prints its partitions when they change and serves pygoka's monitor (pygoka.web) on
--monitor-port + its number. A view of the group table adds up all clicks.

    python examples/5-multiple/main.py --instances 3 --stagger 10
    # then open http://127.0.0.1:9190/ , :9191/ , :9192/

It emits --messages clicks per stream (default: until Ctrl-C or --duration), waits until the view has
counted them all and every partition has exactly one instance, prints the assignment, then stops.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pygoka import Context, Emitter, Input, Persist, Processor, View, codec, define_group
from pygoka.kafka.config import admin_config
from pygoka.topic_manager import KafkaTopicManager

DEFAULT_BROKERS = os.environ.get("PYGOKA_BROKERS", "127.0.0.1:9092")
#: WAIT_SECONDS bounds the waits for counting and for the partitions to settle.
WAIT_SECONDS = 90.0
PARTITIONS_LINE = re.compile(r"^instance (\d+): partitions \[([\d, ]*)\]$")
MONITOR_LINE = re.compile(r"^instance (\d+): monitor at (\S+)$")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """parse_args reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default=DEFAULT_BROKERS,
                        help="Kafka bootstrap servers (default $PYGOKA_BROKERS or 127.0.0.1:9092)")
    parser.add_argument("--input-a", default="input-A", help="first input stream (default input-A)")
    parser.add_argument("--input-b", default="input-B", help="second input stream (default input-B)")
    parser.add_argument("--group", default="multiInput", help="processor group (default multiInput)")
    parser.add_argument("--instances", type=int, default=2, help="processor instances (processes) (default 2)")
    parser.add_argument("--stagger", type=float, default=5.0, help="seconds between instance starts (default 5)")
    parser.add_argument("--monitor-host", default="127.0.0.1", help="address of the monitors (default 127.0.0.1)")
    parser.add_argument("--monitor-port", type=int, default=9190,
                        help="monitor port of instance 0, +1 for each next one (default 9190; 0: any)")
    parser.add_argument("--partitions", type=int, default=8, help="partitions of created topics (default 8)")
    parser.add_argument("--messages", type=int, default=None, help="clicks to emit per stream")
    parser.add_argument("--duration", type=float, default=None, help="emit for this many seconds")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between two clicks (default 0.1)")
    parser.add_argument("--state-dir", default=None, help="directory for the instances' RocksDB (default: temp)")
    parser.add_argument("--instance", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def define(args: argparse.Namespace) -> Any:
    """define is the group graph: both streams count into the same user entry."""

    def process(ctx: Context, msg: str) -> None:
        user = ctx.value() or {"Clicks": 0}
        ctx.set_value({"Clicks": user["Clicks"] + 1})

    return define_group(
        args.group,
        Input(args.input_a, codec.String(), process),
        Input(args.input_b, codec.String(), process),
        Persist(codec.Json()),
    )


def run_instance(args: argparse.Namespace) -> int:
    """run_instance is one child process: a processor with its own monitor, reporting its partitions."""
    from pygoka.web import MonitorServer  # only the instances serve a monitor

    number = args.instance
    state_dir = Path(args.state_dir or tempfile.mkdtemp(prefix="pygoka-5-multiple-")) / f"instance-{number}"
    processor = Processor(args.brokers, define(args), state_dir=state_dir,
                          consumer_config={"session.timeout.ms": 10000, "heartbeat.interval.ms": 1000})
    port = 0 if args.monitor_port == 0 else args.monitor_port + number
    monitor = MonitorServer(args.monitor_host, port)
    monitor.attach_processor(processor)
    monitor.start()
    print(f"instance {number}: monitor at {monitor.url}/", flush=True)
    stop = threading.Event()

    def report() -> None:
        shown: list[int] | None = None
        while not stop.wait(0.2):
            partitions = processor.active_partitions() if processor.recovered() else []
            if partitions != shown:
                shown = partitions
                print(f"instance {number}: partitions {partitions}", flush=True)

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        processor.run()  # on the main thread: SIGTERM stops it cleanly
    finally:
        stop.set()
        monitor.stop()
    return 0


class Instances:
    """Instances starts the child processes and keeps what they report."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.procs: list[subprocess.Popen[str]] = []
        self.partitions: dict[int, list[int]] = {}
        self.monitors: dict[int, str] = {}
        self.lock = threading.Lock()

    def start(self, number: int) -> None:
        argv = [sys.executable, __file__, *sys.argv[1:], "--instance", str(number)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            print(line, flush=True)
            with self.lock:
                if match := PARTITIONS_LINE.match(line):
                    numbers = match.group(2)
                    self.partitions[int(match.group(1))] = [int(n) for n in numbers.split(",")] if numbers else []
                elif match := MONITOR_LINE.match(line):
                    self.monitors[int(match.group(1))] = match.group(2)

    def settled(self) -> bool:
        """settled is true when every instance holds partitions and each partition has exactly one of them."""
        with self.lock:
            held = [self.partitions.get(n, []) for n in range(self.args.instances)]
        everything = sorted(p for partitions in held for p in partitions)
        return all(held) and everything == list(range(self.args.partitions))

    def failed(self) -> bool:
        return any(proc.poll() not in (None, 0) for proc in self.procs)

    def stop(self) -> int:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(60) for proc in self.procs]
        return max(codes, default=0)


def readiness(url: str) -> int:
    """readiness is the HTTP status of a monitor's /readyz."""
    try:
        with urllib.request.urlopen(url + "readyz", timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def main(argv: list[str] | None = None) -> int:
    """main starts the instances, emits, and checks with a view that every click was counted."""
    args = parse_args(argv)
    if args.instance is not None:
        return run_instance(args)

    manager = KafkaTopicManager(admin_config(args.brokers))
    try:
        for stream in (args.input_a, args.input_b):
            manager.ensure_stream(stream, args.partitions)
        # Created here too, so that the view can start before the first instance did.
        manager.ensure_table(f"{args.group}-table", args.partitions)
    finally:
        manager.close()

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    instances = Instances(args)
    view = View(args.brokers, f"{args.group}-table", codec.Json())
    view.start()
    emitter_a = Emitter(args.brokers, args.input_a, codec.String())
    emitter_b = Emitter(args.brokers, args.input_b, codec.String())
    code = 0
    try:
        next_start = time.monotonic()
        deadline = None if args.duration is None else time.monotonic() + args.duration
        emitted = 0
        while not stop.is_set() and not instances.failed():
            now = time.monotonic()
            if len(instances.procs) < args.instances and now >= next_start:
                instances.start(len(instances.procs))
                next_start = now + args.stagger
            if (args.messages is not None and emitted >= args.messages) or (deadline is not None and now >= deadline):
                if len(instances.procs) == args.instances:
                    break
                time.sleep(0.1)
                continue
            value = str(time.time())
            emitter_a.emit(f"user-{emitted % 50}", value)
            emitter_b.emit(f"user-{emitted % 60}", value)
            emitted += 1
            stop.wait(args.interval)
        emitter_a.flush()
        emitter_b.flush()

        def total() -> int:
            return sum(value["Clicks"] for _, value in view.iterate()) if view.recovered() else -1

        give_up = time.monotonic() + WAIT_SECONDS
        while not stop.is_set() and not instances.failed() and time.monotonic() < give_up:
            if total() == 2 * emitted and instances.settled():
                break
            time.sleep(0.2)
        print(f"emitted {2 * emitted} clicks, the view counted {total()}", flush=True)
        with instances.lock:
            assignment = " ".join(f"instance-{n}={instances.partitions.get(n, [])}" for n in range(args.instances))
            monitors = dict(instances.monitors)
        print(f"assignment: {assignment}{'' if instances.settled() else ' (not settled)'}", flush=True)
        for number, url in sorted(monitors.items()):
            print(f"instance {number}: monitor /readyz answered {readiness(url)}", flush=True)
        if total() != 2 * emitted or not instances.settled():
            code = 1
    finally:
        emitter_a.finish()
        emitter_b.finish()
        view.stop()
        code = max(code, instances.stop())
    print(f"stopped (exit code {code})", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
