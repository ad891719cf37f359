"""Goka's 6-reconnecting-view example in pygoka: a view that survives broker outages.

A View of the table "restartable-view-test-table" runs with auto_reconnect (pygoka's default): when it
loses the connection to Kafka it logs a warning, keeps serving its last values, and reconnects once the
broker is back. To have values to show, an emitter writes a counter per key to the table topic every
--emit-interval seconds, and every --print-interval seconds the view's values are printed.

    python examples/6-reconnecting-view/main.py
    # in another terminal, watch it reconnect (KEEP_DATA: the restarted broker still has the table):
    scripts/kafka.sh stop; sleep 10; PYGOKA_KAFKA_KEEP_DATA=1 scripts/kafka.sh start

It runs until Ctrl-C, or for --duration seconds.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time

from confluent_kafka import KafkaException
from pygoka import Emitter, View, codec
from pygoka.kafka.config import admin_config
from pygoka.topic_manager import KafkaTopicManager

DEFAULT_BROKERS = os.environ.get("PYGOKA_BROKERS", "127.0.0.1:9092")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """parse_args reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default=DEFAULT_BROKERS,
                        help="Kafka bootstrap servers (default $PYGOKA_BROKERS or 127.0.0.1:9092)")
    parser.add_argument("--table", default="restartable-view-test-table", help="table topic of the view")
    parser.add_argument("--keys", type=int, default=3, help="keys the emitter writes (default 3)")
    parser.add_argument("--emit-interval", type=float, default=1.0,
                        help="seconds between two writes to the table, 0: none (default 1)")
    parser.add_argument("--print-interval", type=float, default=1.0, help="seconds between two prints (default 1)")
    parser.add_argument("--reconnect-backoff", type=float, default=1.0,
                        help="seconds the view waits before reconnecting (default 1)")
    parser.add_argument("--partitions", type=int, default=8, help="partitions of a created table (default 8)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    return parser.parse_args(argv)


def emit_counters(emitter: Emitter, keys: list[str], interval: float, stop: threading.Event) -> None:
    """emit_counters writes 1, 2, 3, ... to each key until stopped; writes that fail (an outage) are skipped."""
    counter = 0
    while not stop.wait(interval):
        counter += 1
        for key in keys:
            try:
                # Asynchronous: during an outage librdkafka buffers and retries, and the emitter goes on.
                emitter.emit(key, counter)
            except KafkaException as exc:
                print(f"emit failed: {exc}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """main runs the view (and the emitter) and prints its state and values until stopped."""
    args = parse_args(argv)
    # pygoka.view logs lost connections and reconnects as warnings.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    manager = KafkaTopicManager(admin_config(args.brokers))
    try:
        manager.ensure_table(args.table, args.partitions)
    finally:
        manager.close()

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    keys = [f"key-{i}" for i in range(args.keys)]
    view = View(args.brokers, args.table, codec.Int64(), auto_reconnect=True,
                reconnect_backoff=args.reconnect_backoff)
    view.start()
    emitter = Emitter(args.brokers, args.table, codec.Int64())
    writer = None
    if args.emit_interval > 0:
        writer = threading.Thread(target=emit_counters, args=(emitter, keys, args.emit_interval, stop),
                                  name="emitter", daemon=True)
        writer.start()

    deadline = None if args.duration is None else time.monotonic() + args.duration
    state = ""
    try:
        while not stop.wait(args.print_interval):
            if deadline is not None and time.monotonic() >= deadline:
                break
            if view.error is not None:
                # Only without auto_reconnect does a lost connection end the view.
                print(f"view failed: {view.error}", file=sys.stderr, flush=True)
                return 1
            new_state = "recovered" if view.recovered() else "recovering"
            if new_state != state:
                state = new_state
                print(f"view is {state}", flush=True)
            if view.recovered():
                print("values: " + " ".join(f"{key}={view.get(key)}" for key in keys), flush=True)
    finally:
        stop.set()
        if writer is not None:
            writer.join()
        emitter.finish()
        view.stop()
    print("view stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
