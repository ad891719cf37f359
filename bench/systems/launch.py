"""How bench/compare.py starts each system and reads its result back from Kafka (see docs/benchmarks.md).

Every system is started the same way, as its own OS process(es) running the program under
bench/systems/<system>/, and its result is read from Kafka the same way: its state topic (the group
table of pygoka and Goka, the changelog of Kafka Streams' and Quix Streams' RocksDB store) or the
join's output topic. Nothing here is timed.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build import BUILDERS

SYSTEMS_DIR = Path(__file__).resolve().parent
#: SYSTEMS are the systems compare.py can run; pygoka-eos is pygoka with guarantee="exactly_once",
#: pygoka-kip848 pygoka in Kafka 4's consumer group protocol (group.protocol=consumer, incremental).
SYSTEMS = ("pygoka", "pygoka-eos", "pygoka-kip848", "goka", "quix", "kstreams")
#: BASELINE_SYSTEMS run pygoka's program on the runtime in $PYGOKA_BENCH_BASELINE (compare.py --baseline).
BASELINE_SYSTEMS = ("pygoka-base", "pygoka-eos-base")
#: BASELINE_ENV names the directory holding the baseline's pygoka package.
BASELINE_ENV = "PYGOKA_BENCH_BASELINE"


class Launcher:
    """Launcher builds (or finds cached) programs and makes each system's command lines."""

    def __init__(self, systems: list[str]) -> None:
        self.programs = {name: BUILDERS[name]() for name in systems if name in BUILDERS}

    def command(self, system: str, mode: str, brokers: str, *args: str) -> list[str]:
        """command is the command line of system in mode (count, join, view, recover) with its arguments."""
        if is_pygoka(system):
            return [sys.executable, str(SYSTEMS_DIR / "pygoka" / "app.py"), mode, brokers, *args]
        if system == "quix":
            return [str(self.programs["quix"]), str(SYSTEMS_DIR / "quix" / "app.py"), mode, brokers, *args]
        if system == "kstreams":
            # A bounded heap like the processes of the other systems; G1 is the JVM's default.
            return ["java", "-Xmx512m", "-jar", str(self.programs["kstreams"]), mode, brokers, *args]
        if system == "goka":
            return [str(self.programs["goka"]), *goka_flags(mode, brokers, args)]
        raise ValueError(f"unknown system {system}")


def goka_flags(mode: str, brokers: str, args: tuple[str, ...]) -> list[str]:
    """goka_flags turns the positional arguments every program takes into the Go program's flags."""
    if mode == "view":
        table, state = args
        return [mode, "-brokers", brokers, "-table", table, "-state", state]
    group, input_topic, state, *rest = args
    flags = [mode, "-brokers", brokers, "-group", group, "-input", input_topic, "-state", state]
    if mode == "join":
        flags += ["-profiles", rest[0], "-output", rest[1]]
    if mode == "recover":
        flags += ["-keys", rest[0]]
    return flags


def is_pygoka(system: str) -> bool:
    """is_pygoka tells whether system is pygoka's program (either guarantee, this checkout's or the baseline)."""
    return system in ("pygoka", "pygoka-eos", "pygoka-kip848", *BASELINE_SYSTEMS)


def environment(system: str) -> dict[str, str]:
    """environment is the process environment of a system: quiet Python warnings of Quix's dependencies,
    the guarantee of pygoka's program."""
    env = dict(os.environ)
    if system == "quix":
        env["PYTHONWARNINGS"] = "ignore"
    env["PYGOKA_GUARANTEE"] = "exactly_once" if system.startswith("pygoka-eos") else "at_least_once"
    env["PYGOKA_GROUP_PROTOCOL"] = "consumer" if system == "pygoka-kip848" else "classic"
    if system in BASELINE_SYSTEMS:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env[BASELINE_ENV], env.get("PYTHONPATH")) if p)
    return env


def table_topics_to_create(system: str, group: str) -> list[str]:
    """table_topics_to_create are the compacted topics the harness creates (Goka runs with NoCreate)."""
    return [f"{group}-table"] if system == "goka" else []


def state_topic(system: str, group: str, input_topic: str) -> str:
    """state_topic is where system keeps the durable copy of its count per key."""
    if is_pygoka(system) or system == "goka":
        return f"{group}-table"
    if system == "kstreams":
        return f"{group}-counts-changelog"
    return f"changelog__{group}--{input_topic}--default"


def _ascii(key: bytes, value: bytes) -> tuple[str, int]:
    return key.decode(), int(value)


def _long(key: bytes, value: bytes) -> tuple[str, int]:
    return key.decode(), struct.unpack(">q", value)[0]


def _quix(key: bytes, value: bytes) -> tuple[str, int]:
    # Quix Streams' changelog keys are <JSON message key>|<JSON state key>, values JSON.
    message_key, _, _ = key.partition(b"|")
    return json.loads(message_key), int(json.loads(value))


#: DECODERS turn a state topic record into (key, count); None values (tombstones) never occur here.
DECODERS: dict[str, Callable[[bytes, bytes], tuple[str, int]]] = {
    "pygoka": _ascii, "pygoka-eos": _ascii, "pygoka-kip848": _ascii, "pygoka-base": _ascii, "pygoka-eos-base": _ascii,
    "goka": _ascii, "kstreams": _long, "quix": _quix,
}
