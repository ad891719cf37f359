"""Goka's 1-simplest example in pygoka: an emitter and a processor group counting messages per key.

The emitter sends "some-value" with key "some-key" to the stream "example-stream" every --interval
seconds. The processor group "example-group" consumes that stream and keeps, per key, how many
messages it has seen in its group table "example-group-table" (Input String -> Persist Int64).

    python examples/1-simplest/main.py --brokers 127.0.0.1:9092

It runs until Ctrl-C. With --duration or --messages it stops emitting after that many seconds or
messages, and exits once everything it emitted was counted. Counts live in Kafka (and in a local
RocksDB): they continue where the previous run stopped.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from typing import Any

from pygoka import Context, Emitter, Input, Persist, Processor, codec, define_group

DEFAULT_BROKERS = os.environ.get("PYGOKA_BROKERS", "127.0.0.1:9092")
#: DRAIN_SECONDS is how long the example waits, once it stopped emitting, for the rest to be counted.
DRAIN_SECONDS = 60.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """parse_args reads the command line; the defaults are those of Goka's example."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default=DEFAULT_BROKERS,
                        help="Kafka bootstrap servers (default $PYGOKA_BROKERS or 127.0.0.1:9092)")
    parser.add_argument("--topic", default="example-stream", help="input stream (default example-stream)")
    parser.add_argument("--group", default="example-group", help="processor group (default example-group)")
    parser.add_argument("--key", default="some-key", help="key of the emitted messages (default some-key)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between two emits (default 1)")
    parser.add_argument("--messages", type=int, default=None,
                        help="emit this many messages, then exit once all were counted")
    parser.add_argument("--duration", type=float, default=None,
                        help="emit for this many seconds, then exit once all were counted")
    parser.add_argument("--partitions", type=int, default=8,
                        help="partitions of the stream if it has to be created (default 8)")
    parser.add_argument("--state-dir", default=None,
                        help="where the group table's RocksDB lives (default $PYGOKA_STATE_DIR or /tmp/pygoka/<group>)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """main runs the emitter in this thread and the processor in another until told to stop."""
    args = parse_args(argv)
    stop = threading.Event()
    processed = 0

    def count(ctx: Context, msg: Any) -> None:
        # ctx.value() is this key's entry of the group table, None before the first message.
        counter = (ctx.value() or 0) + 1
        # set_value stores it locally and in the group table topic "<group>-table".
        ctx.set_value(counter)
        print(f"key = {ctx.key}, counter = {counter}, msg = {msg}", flush=True)
        nonlocal processed
        processed += 1

    group = define_group(
        args.group,
        Input(args.topic, codec.String(), count),
        Persist(codec.Int64()),
    )
    options: dict[str, Any] = {}
    if args.state_dir:
        options["state_dir"] = args.state_dir

    # The emitter creates the stream if it is missing, so that the processor finds it.
    emitter = Emitter(args.brokers, args.topic, codec.String(), partitions=args.partitions)
    processor = Processor(args.brokers, group, **options)
    failure: list[BaseException] = []

    def run_processor() -> None:
        try:
            processor.run()
        except BaseException as exc:  # noqa: BLE001 - reported by main
            failure.append(exc)
        finally:
            stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    thread = threading.Thread(target=run_processor, name="processor")
    thread.start()

    deadline = None if args.duration is None else time.monotonic() + args.duration
    emitted = 0
    drained = True
    try:
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            if args.messages is not None and emitted >= args.messages:
                break
            emitter.emit_sync(args.key, "some-value")
            emitted += 1
            stop.wait(args.interval)
        # Let the processor count what was emitted before stopping it (unless interrupted).
        drain_deadline = time.monotonic() + DRAIN_SECONDS
        while processed < emitted and not stop.is_set() and time.monotonic() < drain_deadline:
            stop.wait(0.05)
        drained = processed >= emitted or stop.is_set()
    finally:
        emitter.finish()
        processor.stop()
        thread.join()

    if failure:
        print(f"processor failed: {failure[0]}", file=sys.stderr, flush=True)
        return 1
    if not drained:
        print(f"only {processed} of {emitted} messages were processed within {DRAIN_SECONDS} s",
              file=sys.stderr, flush=True)
        return 1
    print(f"emitted {emitted} messages, processed {processed}; stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
