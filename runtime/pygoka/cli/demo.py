"""`pygoka demo`: the click-count demo (emitter -> processor with RocksDB -> view), shared with examples/2-clicks."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import time
from typing import Any

from pygoka.codec import Json, String
from pygoka.context import Context
from pygoka.emitter import Emitter
from pygoka.graph import GroupGraph, Input, Persist, define_group, group_table
from pygoka.processor import Processor
from pygoka.view import View


class Stats:
    """Stats counts what this run emitted and processed, for the once-a-second report."""

    def __init__(self) -> None:
        self.emitted = 0
        self.processed = 0


def add_demo_flags(parser: argparse.ArgumentParser, default_brokers: str | None) -> None:
    """add_demo_flags adds the demo's options; the defaults are those of Goka's 2-clicks example."""
    parser.add_argument("--brokers", default=default_brokers,
                        help="Kafka bootstrap servers (default $PYGOKA_BROKERS)")
    parser.add_argument("--topic", default="user-click", help="click stream (default user-click)")
    parser.add_argument("--group", default="mini-group", help="processor group (default mini-group)")
    parser.add_argument("--users", type=int, default=10, help="number of users clicking (default 10)")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between two clicks (default 0.1)")
    parser.add_argument("--messages", type=int, default=None, help="stop emitting after this many clicks")
    parser.add_argument("--partitions", type=int, default=8,
                        help="partitions of the stream if it has to be created (default 8)")
    parser.add_argument("--state-dir", default=None,
                        help="where the group table's RocksDB lives (default $PYGOKA_STATE_DIR or /tmp/pygoka/<group>)")
    parser.add_argument("--quiet", action="store_true", help="do not print a line per processed click")


def click_group(args: argparse.Namespace, stats: Stats) -> GroupGraph:
    """click_group is the processor group: Input(clicks as String) -> Persist(user as JSON)."""

    def process(ctx: Context, msg: Any) -> None:
        user = ctx.value() or {"Clicks": 0}
        user["Clicks"] += 1
        ctx.set_value(user)
        stats.processed += 1
        if not args.quiet:
            print(f"[proc] key: {ctx.key} clicks: {user['Clicks']}, msg: {msg}", flush=True)

    return define_group(args.group, Input(args.topic, String(), process), Persist(Json()))


def run_emitter(args: argparse.Namespace, emitter: Emitter, stats: Stats, stop: threading.Event) -> None:
    """run_emitter clicks for user-0 .. user-<users-1> in turn until stopped or --messages were sent."""
    while not stop.is_set() and (args.messages is None or stats.emitted < args.messages):
        emitter.emit_sync(f"user-{stats.emitted % args.users}", time.strftime("%Y-%m-%d %H:%M:%S"))
        stats.emitted += 1
        stop.wait(args.interval)


def report(view: View, stats: Stats) -> str:
    """report is one line with what was emitted and processed and the counts the view holds."""
    counts = " ".join(f"{key}={value['Clicks']}" for key, value in view.iterate())
    return f"[view] emitted={stats.emitted} processed={stats.processed} {counts}".rstrip()


class ClickDemo:
    """ClickDemo runs emitter, processor and view of the demo; start(), then wait on stop, then close()."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stats = Stats()
        self.stop = threading.Event()
        self.failed = threading.Event()
        self.errors: list[str] = []
        options: dict[str, Any] = {"state_dir": args.state_dir} if args.state_dir else {}
        # The emitter creates the click stream if it is missing; the processor then creates its table.
        self.emitter = Emitter(args.brokers, args.topic, String(), partitions=args.partitions)
        self.processor = Processor(args.brokers, click_group(args, self.stats), **options)
        self.view = View(args.brokers, group_table(args.group), Json())
        self._processor_thread = threading.Thread(target=self._run_processor, name="processor")
        self._emitter_thread: threading.Thread | None = None

    def stop_on_signals(self) -> None:
        """stop_on_signals makes SIGINT and SIGTERM end the demo cleanly."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, frame: self.stop.set())

    def start(self) -> bool:
        """start runs the processor, then (once it recovered) the view and the emitter; False if it failed."""
        self._processor_thread.start()
        # The view needs the group table topic, which the processor creates when it starts.
        while not self.processor.recovered() and not self.failed.is_set() and not self.stop.is_set():
            time.sleep(0.05)
        if self.failed.is_set() or self.stop.is_set():
            return False
        self.view.start()
        self._emitter_thread = threading.Thread(target=run_emitter, name="emitter",
                                                args=(self.args, self.emitter, self.stats, self.stop))
        self._emitter_thread.start()
        return True

    def report(self) -> str:
        """report is the line of counts printed every second."""
        return report(self.view, self.stats)

    def close(self) -> int:
        """close stops everything, prints errors or the summary line, and returns the exit code."""
        self.stop.set()
        if self._emitter_thread is not None:
            self._emitter_thread.join()
        self.emitter.finish()
        self.processor.stop()
        if self._processor_thread.ident is not None:
            self._processor_thread.join()
        self.view.stop()
        if self.view.error is not None:
            self.errors.append(f"view failed: {self.view.error}")
        for error in self.errors:
            print(error, file=sys.stderr, flush=True)
        if self.errors:
            return 1
        print(f"emitted {self.stats.emitted} clicks, processed {self.stats.processed}; stopped", flush=True)
        return 0

    def _run_processor(self) -> None:
        try:
            self.processor.run()
        except BaseException as exc:  # noqa: BLE001 - reported by close()
            self.errors.append(f"processor failed: {exc}")
            self.failed.set()


def register(commands: Any) -> None:
    """register adds the demo subcommand."""
    parser = commands.add_parser("demo", help="run the click-count demo against Kafka",
                                 description="Emit clicks, count them per user in a processor group with "
                                             "RocksDB state, and print the counts a view holds every second.")
    add_demo_flags(parser, None)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds to run (default 20)")
    parser.add_argument("--http-port", type=int, default=0,
                        help="serve the view with pygoka.web's monitor on this port (default 0: no HTTP)")
    parser.add_argument("--http-host", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """handle runs the demo for --duration seconds (or until SIGINT/SIGTERM)."""
    from pygoka.cli.run import brokers_of

    args.brokers = brokers_of(args)
    demo = ClickDemo(args)
    demo.stop_on_signals()
    server: Any = None
    try:
        if demo.start():
            if args.http_port:
                server = importlib.import_module("pygoka.web").MonitorServer(host=args.http_host, port=args.http_port)
                server.attach_view(demo.view)
                server.start()
                print(f"View served at http://{args.http_host}:{server.port}/tables/{demo.view.table}/", flush=True)
            deadline = time.monotonic() + args.duration
            while (not demo.stop.is_set() and not demo.failed.is_set() and demo.view.error is None
                   and time.monotonic() < deadline):
                demo.stop.wait(min(1.0, max(0.0, deadline - time.monotonic())))
                if demo.view.recovered():
                    print(demo.report(), flush=True)
    finally:
        if server is not None:
            server.stop()
        code = demo.close()
    return code
