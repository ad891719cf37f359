"""Goka's 2-clicks example in pygoka: emitter -> click-count processor group -> view served over HTTP.

An emitter sends a click of "user-0" .. "user-9" to the stream "user-click" every --interval
seconds. The processor group "mini-group" counts the clicks per user in its group table
("mini-group-table", JSON values like {"Clicks": 3}, as Goka's userCodec writes them), stored
locally in RocksDB. A View follows that table and is served over HTTP:

    python examples/2-clicks/main.py --brokers 127.0.0.1:9092
    curl http://127.0.0.1:9095/user-3          # {"Clicks": 42}

The emitter, processor group and view are those of `pygoka demo` (pygoka.cli.demo); this example
adds the HTTP endpoint. Every second the view's counts are printed. It runs until Ctrl-C, or stops by itself after
--duration seconds; with --messages it stops emitting after that many clicks and keeps serving.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import threading
import time

from aiohttp import web
from pygoka import NotRunningError, View
from pygoka.cli.demo import ClickDemo, Stats, add_demo_flags, report

DEFAULT_BROKERS = os.environ.get("PYGOKA_BROKERS", "127.0.0.1:9092")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """parse_args reads the command line: pygoka demo's flags plus the HTTP address and --duration."""
    parser = argparse.ArgumentParser(description="Goka's 2-clicks example: click counts served by a view.")
    add_demo_flags(parser, DEFAULT_BROKERS)
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP address of the view (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9095, help="HTTP port of the view (default 9095; 0: any)")
    return parser.parse_args(argv)


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
    """main starts processor, view and emitter (pygoka demo's ClickDemo), serves HTTP until told to stop."""
    args = parse_args(argv)
    demo = ClickDemo(args)
    demo.stop_on_signals()
    try:
        if demo.start():
            asyncio.run(serve(args, demo.view, demo.stats, demo.stop, demo.failed))
    finally:
        code = demo.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
