"""pygoka side of bench/compare.py, with the same command line as the other systems' programs.

    app.py count   BROKERS GROUP INPUT STATE_DIR                  Input(String) -> Persist(Int64), count per key
    app.py join    BROKERS GROUP INPUT STATE_DIR PROFILES OUTPUT  Join(PROFILES); count per key and emit
                   "<profile>,<count>" to OUTPUT for every click
    app.py view    BROKERS TABLE STATE_DIR                        recover a View, print "RECOVERED <keys> <sum>"
    app.py recover BROKERS GROUP INPUT STATE_DIR                  a processor (recover_ahead) recovers its
                   preloaded group table, print "RECOVERED <keys> <sum>"

count and join run until SIGTERM, then print "STATS rebalances=N unassigned_s=S recovery_s=S" (Processor's
rebalances, unassigned_seconds and recovery_seconds) and stop. Every mode prints "RUNNING" once recovered.
$PYGOKA_GUARANTEE (at_least_once or exactly_once) is the processors' guarantee, $PYGOKA_GROUP_PROTOCOL (classic
or consumer) their consumer group protocol.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

from pygoka import Context, Input, Join, Output, Persist, Processor, View, codec, define_group


def _announce_when(condition: Any, failed: Any) -> None:
    """_announce_when prints RUNNING once condition() holds (polled, as the harness polls the others)."""
    while not condition():
        if failed():
            return
        time.sleep(0.01)
    print("RUNNING", flush=True)


def main() -> None:
    mode, brokers = sys.argv[1:3]
    if mode == "view":
        table, state_dir = sys.argv[3:5]
        view = View(brokers, table, codec.Int64(), state_dir=state_dir)
        view.start()
        while not view.recovered():
            if view.error is not None:
                raise SystemExit(f"view failed: {view.error!r}")
            time.sleep(0.01)
        print("RUNNING", flush=True)
        values = [value for _, value in view.iterate()]
        print(f"RECOVERED {len(values)} {sum(values)}", flush=True)
        view.stop()
        return
    group, input_topic, state_dir = sys.argv[3:6]
    if mode == "count":
        def count(ctx: Context, msg: Any) -> None:
            value = ctx.value()
            ctx.set_value(1 if value is None else value + 1)

        graph = define_group(group, Input(input_topic, codec.String(), count), Persist(codec.Int64()))
    elif mode == "join":
        profiles, output = sys.argv[6:8]

        def join(ctx: Context, msg: Any) -> None:
            value = ctx.value()
            total = 1 if value is None else value + 1
            ctx.set_value(total)
            ctx.emit(output, ctx.key, f"{ctx.join(profiles)},{total}")

        graph = define_group(group, Input(input_topic, codec.String(), join), Join(profiles, codec.String()),
                             Output(output, codec.String()), Persist(codec.Int64()))
    elif mode == "recover":
        graph = define_group(group, Input(input_topic, codec.String(), lambda ctx, msg: None),
                             Persist(codec.Int64()))
    else:
        raise SystemExit(f"unknown mode {mode}")
    protocol = os.environ.get("PYGOKA_GROUP_PROTOCOL", "classic")
    processor = Processor(brokers, graph, state_dir=state_dir, recover_ahead=mode == "recover",
                          guarantee=os.environ.get("PYGOKA_GUARANTEE", "at_least_once"),
                          consumer_config={} if protocol == "classic" else {"group.protocol": protocol})
    if mode == "recover":
        runner = threading.Thread(target=processor.run, daemon=True)
        runner.start()
        _announce_when(processor.recovered, lambda: not runner.is_alive())
        if not runner.is_alive():
            raise SystemExit(f"processor failed: {processor.error!r}")
        keys = total = 0
        for partition in processor.table_partitions():
            for _, value in partition.iterate():
                keys += 1
                total += int(value)
        print(f"RECOVERED {keys} {total}", flush=True)
        processor.stop()
        runner.join(60)
        return
    threading.Thread(target=_announce_when, args=(processor.recovered, lambda: processor.error is not None),
                     daemon=True).start()
    # run() on a thread of its own, so that the figures of the run can be printed before it is stopped.
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    runner = threading.Thread(target=processor.run, daemon=True)
    runner.start()
    while runner.is_alive() and not stopping.wait(0.05):
        pass
    if not runner.is_alive():
        raise SystemExit(f"processor failed: {processor.error!r}")
    # getattr: compare.py --baseline runs this program on runtimes older than these figures.
    unassigned = getattr(processor, "unassigned_seconds", lambda: float("nan"))()
    recovery = getattr(processor, "recovery_seconds", lambda: float("nan"))()
    print(f"STATS rebalances={processor.rebalances()} unassigned_s={unassigned:.3f} recovery_s={recovery:.3f}",
          flush=True)
    processor.stop()
    runner.join(60)


if __name__ == "__main__":
    main()
