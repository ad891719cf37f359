"""Goka's 10-visit example in pygoka: Processor.visit_all resets every counter of a group table.

An emitter sends the value 1 with keys "key-0" .. "key-9" to "example-visit-clicks-input"; the group
"example-visit-group" adds them up per key (Int64). After --messages messages were counted, visit_all runs the
visitor "reset" over every key of the group table, which sets each counter to --reset-to (0). Then
--messages-after more messages are counted on top of the reset values.

    python examples/10-visit/main.py --messages 20 --messages-after 5
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any

from pygoka import Context, Emitter, Input, Persist, Processor, Visitor, codec, define_group

DEFAULT_BROKERS = os.environ.get("PYGOKA_BROKERS", "127.0.0.1:9092")
#: WAIT_SECONDS bounds each wait for the processor (recovery, counting what was emitted).
WAIT_SECONDS = 60.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """parse_args reads the command line; the defaults are those of Goka's example."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default=DEFAULT_BROKERS,
                        help="Kafka bootstrap servers (default $PYGOKA_BROKERS or 127.0.0.1:9092)")
    parser.add_argument("--topic", default="example-visit-clicks-input", help="input stream")
    parser.add_argument("--group", default="example-visit-group", help="processor group")
    parser.add_argument("--keys", type=int, default=10, help="number of keys (default 10)")
    parser.add_argument("--messages", type=int, default=50, help="messages counted before the reset (default 50)")
    parser.add_argument("--messages-after", type=int, default=20, help="messages counted after it (default 20)")
    parser.add_argument("--reset-to", type=int, default=0, help="value the visitor sets (default 0)")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between two emits (default 0.1)")
    parser.add_argument("--partitions", type=int, default=8, help="partitions of a created stream (default 8)")
    parser.add_argument("--state-dir", default=None, help="RocksDB directory (default /tmp/pygoka/<group>)")
    return parser.parse_args(argv)


def wait_for(condition: Any, what: str) -> None:
    """wait_for polls condition, failing with what after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    """main counts, resets with visit_all, counts again and prints the counters at each step."""
    args = parse_args(argv)
    keys = [f"key-{i}" for i in range(args.keys)]

    def count(ctx: Context, msg: int) -> None:
        ctx.set_value((ctx.value() or 0) + msg)

    def reset(ctx: Context, meta: int) -> None:
        print(f"resetting {ctx.key}: {ctx.value()} -> {meta}", flush=True)
        ctx.set_value(meta)

    group = define_group(
        args.group,
        Input(args.topic, codec.Int64(), count),
        Visitor("reset", reset),
        Persist(codec.Int64()),
    )
    options: dict[str, Any] = {"state_dir": args.state_dir} if args.state_dir else {}
    emitter = Emitter(args.brokers, args.topic, codec.Int64(), partitions=args.partitions)
    processor = Processor(args.brokers, group, **options)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            processor.run()
        except Exception as exc:  # noqa: BLE001 - reported by main
            failure.append(exc)

    thread = threading.Thread(target=run, name="processor")
    thread.start()

    def emit(count: int, start: int) -> None:
        for i in range(start, start + count):
            emitter.emit_sync(keys[i % len(keys)], 1)
            time.sleep(args.interval)

    def counters() -> str:
        return " ".join(f"{key}={processor.get(key)}" for key in keys)

    def total() -> int:
        # Read back from the table: the callback's set_value is applied only after it returned.
        return sum(processor.get(key) or 0 for key in keys)

    try:
        wait_for(lambda: processor.recovered() or failure, "the processor to recover")
        emit(args.messages, 0)
        wait_for(lambda: total() >= args.messages or failure, f"{args.messages} messages to be counted")
        print(f"before reset: {counters()}", flush=True)
        visited = processor.visit_all("reset", args.reset_to, timeout=WAIT_SECONDS)
        print(f"visited {visited} values", flush=True)
        print(f"after reset: {counters()}", flush=True)
        emit(args.messages_after, args.messages)
        expected = visited * args.reset_to + args.messages_after
        wait_for(lambda: total() >= expected or failure, f"{args.messages_after} more messages to be counted")
        print(f"after {args.messages_after} more: {counters()}", flush=True)
    except Exception as exc:  # noqa: BLE001 - e.g. a timeout: reported below
        failure.append(exc)
    finally:
        emitter.finish()
        processor.stop()
        thread.join()
    if failure:
        print(f"failed: {failure[0]}", file=sys.stderr, flush=True)
        return 1
    print("done.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
