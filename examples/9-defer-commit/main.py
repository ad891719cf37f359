"""Goka's 9-defer-commit example in pygoka: commit an input message only once an asynchronous side effect is done.

An emitter sends the time to "input-topic". The group "forwarder" forwards each message to "forward-topic"
through a thread pool, standing in for any external system written to asynchronously (another cluster, a
database, ...). Its callback returns at once, but ctx.defer_commit() holds the message's commit until the
pool's job calls done(); a failed job calls done(error), which stops the processor. The group "consumer"
prints what arrives on "forward-topic". At the end the forwarder's committed offsets are read from Kafka.

    python examples/9-defer-commit/main.py --messages 10

With --no-commit done() is never called, and the forwarder commits nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from pygoka import Context, Emitter, Input, Processor, codec, define_group

DEFAULT_BROKERS = os.environ.get("PYGOKA_BROKERS", "127.0.0.1:9092")
#: WAIT_SECONDS bounds the waits for forwarding and committing.
WAIT_SECONDS = 60.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """parse_args reads the command line; the defaults are those of Goka's example."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default=DEFAULT_BROKERS,
                        help="Kafka bootstrap servers (default $PYGOKA_BROKERS or 127.0.0.1:9092)")
    parser.add_argument("--input", default="input-topic", help="input stream (default input-topic)")
    parser.add_argument("--forward", default="forward-topic", help="forwarded stream (default forward-topic)")
    parser.add_argument("--forwarder-group", default="forwarder", help="forwarding group (default forwarder)")
    parser.add_argument("--consumer-group", default="consumer", help="printing group (default consumer)")
    parser.add_argument("--messages", type=int, default=10, help="messages to emit (default 10)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between two emits (default 1)")
    parser.add_argument("--work-delay", type=float, default=0.2,
                        help="seconds the asynchronous side effect takes (default 0.2)")
    parser.add_argument("--no-commit", action="store_true", help="never call done(): nothing gets committed")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of created streams (default 6)")
    parser.add_argument("--state-dir", default=None, help="RocksDB directory (default /tmp/pygoka/<group>)")
    return parser.parse_args(argv)


def committed(brokers: str, group: str, topic: str, partitions: int) -> int:
    """committed is how many messages of topic group committed: the sum of its committed offsets."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": False})
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    finally:
        consumer.close()
    # A partition without a commit has a negative offset (OFFSET_INVALID).
    return sum(tp.offset for tp in offsets if tp.offset >= 0)


def main(argv: list[str] | None = None) -> int:
    """main runs the emitter, the forwarder and the consumer, then reports the forwarder's commits."""
    args = parse_args(argv)
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="side-effect")
    # The emitters also create the streams, so that both groups find them co-partitioned.
    input_emitter = Emitter(args.brokers, args.input, codec.String(), partitions=args.partitions)
    forward_emitter = Emitter(args.brokers, args.forward, codec.String(), partitions=args.partitions)
    received = 0

    def side_effect(value: str) -> None:
        time.sleep(args.work_delay)
        forward_emitter.emit_sync("time", value)

    def forward(ctx: Context, value: str) -> None:
        done = ctx.defer_commit()
        job = pool.submit(side_effect, value)
        if not args.no_commit:
            # done() commits this message (once the messages before it are done too); done(error) stops the group.
            job.add_done_callback(lambda finished: done(finished.exception()))

    def consume(ctx: Context, value: str) -> None:
        nonlocal received
        received += 1
        print(f"received message {ctx.key}: {value}", flush=True)

    options: dict[str, Any] = {}
    if args.state_dir:
        options["state_dir"] = args.state_dir
    processors = [
        Processor(args.brokers, define_group(args.forwarder_group, Input(args.input, codec.String(), forward)),
                  **options),
        Processor(args.brokers, define_group(args.consumer_group, Input(args.forward, codec.String(), consume)),
                  **options),
    ]
    failures: list[BaseException] = []

    def run(processor: Processor) -> None:
        try:
            processor.run()
        except Exception as exc:  # noqa: BLE001 - reported by main
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(p,), name=p.graph.group) for p in processors]
    for thread in threads:
        thread.start()

    def wait_for(condition: Any, what: str) -> bool:
        deadline = time.monotonic() + WAIT_SECONDS
        while not condition():
            if failures or time.monotonic() > deadline:
                print(f"gave up waiting for {what}", file=sys.stderr, flush=True)
                return False
            time.sleep(0.1)
        return True

    code = 0
    try:
        wait_for(lambda: all(p.recovered() for p in processors), "the processors to start")
        pending: list[Future[Any]] = []
        for _ in range(args.messages):
            pending.append(input_emitter.emit("time", str(time.time_ns())))
            time.sleep(args.interval)
        for delivery in pending:
            delivery.result(WAIT_SECONDS)
        if not wait_for(lambda: received >= args.messages, f"{args.messages} forwarded messages"):
            code = 1
        elif args.no_commit:
            # Give the forwarder a few checkpoints in which it could wrongly have committed.
            time.sleep(3.0)
        else:
            wait_for(lambda: committed(args.brokers, args.forwarder_group, args.input, args.partitions)
                     >= args.messages, "the forwarder's commits")
        count = committed(args.brokers, args.forwarder_group, args.input, args.partitions)
        print(f"forwarder committed {count} of {args.messages} input messages", flush=True)
    finally:
        for processor in processors:
            processor.stop()
        for thread in threads:
            thread.join()
        pool.shutdown()
        input_emitter.finish()
        forward_emitter.finish()
    if failures:
        print(f"failed: {failures[0]}", file=sys.stderr, flush=True)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
