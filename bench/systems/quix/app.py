"""Quix Streams side of bench/compare.py: the same logic as pygoka's click count and join, RocksDB state.

    app.py count BROKERS GROUP INPUT STATE_DIR                  count per key (state key "count")
    app.py join  BROKERS GROUP INPUT STATE_DIR PROFILES OUTPUT  as-of join with the co-partitioned
           profile table, count per key and produce "<profile>,<count>" to OUTPUT for every click

Runs until SIGTERM (Quix Streams stops gracefully on it). It runs in its own virtualenv (see
requirements.txt); completion is judged by the harness from the group's committed offsets, the result
from the changelog topic (count) or the output topic (join).
"""

from __future__ import annotations

import sys
from typing import Any

from quixstreams import Application, State


def main() -> None:
    mode, brokers, group, input_topic, state_dir = sys.argv[1:6]
    # commit_interval 1 s like pygoka's and Goka's checkpoints (Quix Streams' default is 5 s).
    app = Application(broker_address=brokers, consumer_group=group, auto_offset_reset="earliest",
                      state_dir=state_dir, commit_interval=1.0, loglevel="WARNING",
                      consumer_extra_config={"session.timeout.ms": 10000, "heartbeat.interval.ms": 1000})
    clicks = app.dataframe(app.topic(input_topic, key_deserializer="str", value_deserializer="bytes"))

    def count(value: Any, state: State) -> int:
        total: int = state.get("count", 0) + 1
        state.set("count", total)
        return total

    if mode == "count":
        clicks.update(lambda value, state: count(value, state), stateful=True)
    elif mode == "join":
        profiles_topic, output_topic = sys.argv[6:8]
        profiles = app.dataframe(app.topic(profiles_topic, key_deserializer="str", value_deserializer="str"))
        output = app.topic(output_topic, key_serializer="str", value_serializer="str")
        joined = clicks.join_asof(profiles, on_merge=lambda click, profile: profile)

        def emit(profile: str, state: State) -> str:
            return f"{profile},{count(None, state)}"

        joined = joined.apply(emit, stateful=True)
        joined.to_topic(output)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print("RUNNING", flush=True)
    app.run()


if __name__ == "__main__":
    main()
