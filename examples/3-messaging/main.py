"""Goka's 3-messaging example in pygoka: a messaging service with spam detection, blocking and translation.

Users send messages over HTTP (POST /{user}/send) to the stream message_sent. The filter drops those of
blocked users (a Join of the blocker's table), translates words (a Lookup of the translator's table) and
forwards the rest to message_received, where the collector keeps each user's latest messages for
GET /{user}/feed (a view). The detector counts sent and received messages per user (with a Loop) and blocks
spammers through the blocker's stream block_user.

    python examples/3-messaging/main.py --components all --port 8080
    curl -X POST -d '{"to": "bob", "content": "hello world"}' http://127.0.0.1:8080/alice/send
    curl http://127.0.0.1:8080/bob/feed
    python examples/3-messaging/main.py --translate hello hallo      # translate "hello" from now on
    python examples/3-messaging/main.py --block-user alice           # (--unblock to undo)

It runs until Ctrl-C, or for --duration seconds. --prefix is put in front of every topic and group name.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from messaging import blocker, collector, detector, service, translator
from messaging import filter as message_filter
from messaging.message import BlockEvent, BlockEventCodec, Names
from pygoka import Emitter, GroupGraph, Processor, codec
from pygoka.kafka.config import admin_config
from pygoka.topic_manager import KafkaTopicManager

DEFAULT_BROKERS = os.environ.get("PYGOKA_BROKERS", "127.0.0.1:9092")
PROCESSORS = ["collector", "blocker", "filter", "translator", "detector"]
COMPONENTS = [*PROCESSORS, "service"]
DEFAULT_PARTITIONS = 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """parse_args reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default=DEFAULT_BROKERS,
                        help="Kafka bootstrap servers (default $PYGOKA_BROKERS or 127.0.0.1:9092)")
    parser.add_argument("--components", default=None,
                        help=f"comma-separated components to run: {', '.join(COMPONENTS)}, or all")
    parser.add_argument("--prefix", default="", help="prefix of every topic and group name (default none)")
    parser.add_argument("--partitions", type=int, default=None,
                        help="partitions of created topics (default: as many as message_sent has, else 10)")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP address of the service (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port of the service (default 8080; 0: any)")
    parser.add_argument("--state-dir", default=None, help="RocksDB directory (default /tmp/pygoka/<group>)")
    parser.add_argument("--min-messages", type=int, default=200,
                        help="messages a user must have sent and received before counting as spammer")
    parser.add_argument("--max-rate", type=float, default=0.5,
                        help="share of sent messages from which a user is a spammer (default 0.5)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--block-user", metavar="USER", help="emit a block event for USER and exit")
    parser.add_argument("--unblock", action="store_true", help="with --block-user: unblock instead")
    parser.add_argument("--translate", nargs=2, metavar=("WORD", "TRANSLATION"),
                        help="emit a translation of WORD and exit")
    args = parser.parse_args(argv)
    if args.components is None and not args.block_user and not args.translate:
        parser.error("give --components, --block-user or --translate")
    if args.components is not None:
        chosen = COMPONENTS if args.components == "all" else [c.strip() for c in args.components.split(",")]
        unknown = sorted(set(chosen) - set(COMPONENTS))
        if unknown:
            parser.error(f"unknown components: {', '.join(unknown)}")
        args.components = [c for c in COMPONENTS if c in chosen]
    return args


def prepare_topics(brokers: str, names: Names, partitions: int | None) -> None:
    """prepare_topics creates the streams and the tables others read, as Goka's PrepareTopics do.

    The filter joins the blocker's and looks up the translator's table, and the service views the collector's:
    they must exist even if their processors were not started yet.
    """
    manager = KafkaTopicManager(admin_config(brokers))
    try:
        # The filter and the detector need all of them co-partitioned: follow what exists.
        partitions = partitions or manager.partitions(names.sent_stream) or DEFAULT_PARTITIONS
        for stream in (names.sent_stream, names.received_stream, names.block_stream, names.translate_stream):
            manager.ensure_stream(stream, partitions)
        for component in (blocker.COMPONENT, translator.COMPONENT, collector.COMPONENT):
            manager.ensure_table(names.table(component), partitions)
    finally:
        manager.close()


def graphs(args: argparse.Namespace, names: Names) -> dict[str, GroupGraph]:
    """graphs are the group graphs of the chosen processor components."""
    limits = detector.Limits(min_messages=args.min_messages, max_rate=args.max_rate)
    builders: dict[str, Any] = {
        "collector": lambda: collector.define(names),
        "blocker": lambda: blocker.define(names),
        "filter": lambda: message_filter.define(names),
        "translator": lambda: translator.define(names),
        "detector": lambda: detector.define(names, limits),
    }
    return {name: builders[name]() for name in args.components if name in builders}


def emit_tools(args: argparse.Namespace, names: Names) -> None:
    """emit_tools sends what --block-user and --translate ask for (Goka's block-user and translate-word)."""
    if args.block_user:
        with Emitter(args.brokers, names.block_stream, BlockEventCodec()) as emitter:
            emitter.emit_sync(args.block_user, BlockEvent(unblock=args.unblock))
        print(f"{'unblocked' if args.unblock else 'blocked'} {args.block_user}", flush=True)
    if args.translate:
        word, translation = args.translate
        with Emitter(args.brokers, names.translate_stream, codec.String()) as emitter:
            emitter.emit_sync(word, translation)
        print(f"translating {word} -> {translation}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """main runs the chosen components until stopped."""
    args = parse_args(argv)
    names = Names(args.prefix)
    prepare_topics(args.brokers, names, args.partitions)
    emit_tools(args, names)
    if not args.components:
        return 0

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    failures: list[str] = []
    processors: dict[str, Processor] = {}
    threads: list[threading.Thread] = []
    for name, graph in graphs(args, names).items():
        options: dict[str, Any] = {}
        if args.state_dir:
            options["state_dir"] = Path(args.state_dir) / graph.group
        processor = Processor(args.brokers, graph, **options)
        processors[name] = processor

        def run(name: str = name, processor: Processor = processor) -> None:
            try:
                processor.run()
            except Exception as exc:  # noqa: BLE001 - reported by main
                failures.append(f"{name}: {exc}")
                stop.set()

        thread = threading.Thread(target=run, name=name)
        thread.start()
        threads.append(thread)
        print(f"starting {name} (group {graph.group})", flush=True)

    deadline = None if args.duration is None else time.monotonic() + args.duration
    announced = False

    def running() -> bool:
        nonlocal announced
        if not announced and processors and all(p.recovered() for p in processors.values()):
            announced = True
            print(f"processors running: {', '.join(processors)}", flush=True)
        return not stop.is_set() and (deadline is None or time.monotonic() < deadline)

    try:
        if "service" in args.components:
            asyncio.run(service.serve(args.brokers, names, args.host, args.port, running))
        else:
            while running():
                stop.wait(0.2)
    except Exception as exc:  # noqa: BLE001 - reported below
        failures.append(f"service: {exc}")
    finally:
        for processor in processors.values():
            processor.stop()
        for thread in threads:
            thread.join()
    if failures:
        print("failed: " + "; ".join(failures), file=sys.stderr, flush=True)
        return 1
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
