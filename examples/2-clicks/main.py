"""Goka's 2-clicks example in pygoka: emitter -> click-count processor group -> view served over HTTP.

An emitter sends a click of "user-0" .. "user-9" to the stream "user-click" every --interval
seconds. The processor group "mini-group" counts the clicks per user in its group table
("mini-group-table", JSON values like {"Clicks": 3}, as Goka's userCodec writes them), stored
locally in RocksDB. A View follows that table and is served over HTTP:

    python examples/2-clicks/main.py --brokers 127.0.0.1:9092
    curl http://127.0.0.1:9095/user-3          # {"Clicks": 42}

Every second the view's counts are printed. It runs until Ctrl-C, or stops by itself after
--duration seconds; with --messages it stops emitting after that many clicks and keeps serving.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from aiohttp import web
from pygoka import (
    Context,
    Emitter,
    GroupGraph,
    Input,
    NotRunningError,
    Persist,
    Processor,
    View,
    codec,
    define_group,
    group_table,
)

DEFAULT_BROKERS = os.environ.get("PYGOKA_BROKERS", "127.0.0.1:9092")


class Stats:
    """Stats counts what this run emitted and processed, for the once-a-second report."""

    def __init__(self) -> None:
        self.emitted = 0
        self.processed = 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """parse_args reads the command line; the defaults are those of Goka's example."""
    parser = argparse.ArgumentParser(description="Goka's 2-clicks example: click counts served by a view.")
    parser.add_argument("--brokers", default=DEFAULT_BROKERS,
                        help="Kafka bootstrap servers (default $PYGOKA_BROKERS or 127.0.0.1:9092)")
    parser.add_argument("--topic", default="user-click", help="click stream (default user-click)")
    parser.add_argument("--group", default="mini-group", help="processor group (default mini-group)")
    parser.add_argument("--users", type=int, default=10, help="number of users clicking (default 10)")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between two clicks (default 0.1)")
    parser.add_argument("--messages", type=int, default=None, help="stop emitting after this many clicks")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP address of the view (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9095, help="HTTP port of the view (default 9095; 0: any)")
    parser.add_argument("--partitions", type=int, default=8,
                        help="partitions of the stream if it has to be created (default 8)")
    parser.add_argument("--state-dir", default=None,
                        help="where the group table's RocksDB lives (default $PYGOKA_STATE_DIR or /tmp/pygoka/<group>)")
    parser.add_argument("--quiet", action="store_true", help="do not print a line per processed click")
    return parser.parse_args(argv)


def click_group(args: argparse.Namespace, stats: Stats) -> GroupGraph:
    """click_group is the processor group: Input(clicks as String) -> Persist(user as JSON)."""

    def process(ctx: Context, msg: Any) -> None:
        user = ctx.value() or {"Clicks": 0}
        user["Clicks"] += 1
        ctx.set_value(user)
        stats.processed += 1
        if not args.quiet:
            print(f"[proc] key: {ctx.key} clicks: {user['Clicks']}, msg: {msg}", flush=True)

    return define_group(
        args.group,
        Input(args.topic, codec.String(), process),
        Persist(codec.Json()),
    )


def run_emitter(args: argparse.Namespace, emitter: Emitter, stats: Stats, stop: threading.Event) -> None:
    """run_emitter clicks for user-0 .. user-<users-1> in turn until stopped or --messages were sent."""
    while not stop.is_set() and (args.messages is None or stats.emitted < args.messages):
        emitter.emit_sync(f"user-{stats.emitted % args.users}", time.strftime("%Y-%m-%d %H:%M:%S"))
        stats.emitted += 1
        stop.wait(args.interval)


def http_app(view: View) -> web.Application:
    """http_app serves GET /<user> with the user's entry of the view as JSON (404 if it has none)."""

    async def get_user(request: web.Request) -> web.Response:
        try:
            value = view.get(request.match_info["user"])
        except NotRunningError:
            return web.json_response({"error": "the view is starting"}, status=503)
        return web.json_response(value, status=200 if value is not None else 404)

    app = web.Application()
    app.router.add_get("/{user}", get_user)
    return app


def report(view: View, stats: Stats) -> str:
    """report is one line with what was emitted and processed and the counts the view holds."""
    counts = " ".join(f"{key}={value['Clicks']}" for key, value in view.iterate())
    return f"[view] emitted={stats.emitted} processed={stats.processed} {counts}".rstrip()


async def serve(args: argparse.Namespace, view: View, stats: Stats, stop: threading.Event,
                failed: threading.Event) -> None:
    """serve runs the HTTP server and prints the view's counts every second until stopped."""
    # Bind the socket ourselves so that --port 0 works and the real port can be printed.
    sock = socket.create_server((args.host, args.port))
    runner = web.AppRunner(http_app(view))
    await runner.setup()
    await web.SockSite(runner, sock).start()
    print(f"View opened at http://{args.host}:{sock.getsockname()[1]}/", flush=True)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    try:
        while not stop.is_set() and not failed.is_set() and view.error is None:
            if deadline is not None and time.monotonic() >= deadline:
                break
            await asyncio.sleep(1.0)
            if view.recovered():
                print(report(view, stats), flush=True)
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """main starts processor, view and emitter, serves HTTP until told to stop, then stops them all."""
    args = parse_args(argv)
    stats = Stats()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    failed = threading.Event()
    errors: list[str] = []

    options: dict[str, Any] = {}
    if args.state_dir:
        options["state_dir"] = args.state_dir
    # The emitter creates the click stream if it is missing; the processor then creates its table.
    emitter = Emitter(args.brokers, args.topic, codec.String(), partitions=args.partitions)
    processor = Processor(args.brokers, click_group(args, stats), **options)

    def run_processor() -> None:
        try:
            processor.run()
        except BaseException as exc:  # noqa: BLE001 - reported by main
            errors.append(f"processor failed: {exc}")
            failed.set()

    processor_thread = threading.Thread(target=run_processor, name="processor")
    processor_thread.start()
    emitter_thread: threading.Thread | None = None
    view = View(args.brokers, group_table(args.group), codec.Json())
    try:
        # The view needs the group table topic, which the processor creates when it starts.
        while not processor.recovered() and not failed.is_set() and not stop.is_set():
            time.sleep(0.05)
        if not failed.is_set() and not stop.is_set():
            view.start()
            emitter_thread = threading.Thread(target=run_emitter, args=(args, emitter, stats, stop), name="emitter")
            emitter_thread.start()
            asyncio.run(serve(args, view, stats, stop, failed))
    finally:
        stop.set()
        if emitter_thread is not None:
            emitter_thread.join()
        emitter.finish()
        processor.stop()
        processor_thread.join()
        view.stop()
    if view.error is not None:
        errors.append(f"view failed: {view.error}")
    for error in errors:
        print(error, file=sys.stderr, flush=True)
    if errors:
        return 1
    print(f"emitted {stats.emitted} clicks, processed {stats.processed}; stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
