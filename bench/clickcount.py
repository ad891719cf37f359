"""Click-count benchmark (workload 1): one pygoka processor counting 1,000,000 clicks over 10,000 keys.

The input topic is preloaded before anything is timed. The processor (Input String -> Persist Int64,
RocksDB state in a temp dir) then runs in a fresh child process, timed from run() until every input
offset is committed; the counts are then checked against the truth for every key. Three floors run the
same way: a bare confluent-kafka consume loop over the same topic, the least a Goka processor does per
message in Python (consume, count in a dict, produce the update to a table topic), and a bare rocksdict
read-increment-write loop. See bench/README.md.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    RESULTS_DIR,
    Meter,
    base_parser,
    click_records,
    consumer_overrides,
    create_topic,
    delete_groups,
    delete_topics,
    end_offsets,
    environment,
    expected_counts,
    key_indices,
    key_name,
    phase_main,
    preload,
    record_count,
    run_phase,
    summarize_runs,
    unique_name,
    write_results,
)

SCRIPT = Path(__file__).resolve()
POLL_SECONDS = 0.02
BATCH = 2000  # the processor's default batch_size, so the consume floor takes batches of the same size


def _check_counts(get: Any, keys: int, truth: dict[int, int], where: str) -> int:
    """_check_counts compares get(key) with the true count of every key; it raises on any difference."""
    wrong = []
    for index in range(keys):
        expected = truth.get(index) or None  # a key never clicked has no table value
        actual = get(key_name(index))
        if actual != expected:
            wrong.append((key_name(index), expected, actual))
    if wrong:
        raise AssertionError(f"{where}: {len(wrong)} of {keys} keys have wrong counts, e.g. {wrong[:5]}")
    return keys


def phase_pygoka(p: dict[str, Any]) -> dict[str, Any]:
    """phase_pygoka runs the click-count processor until every input offset is committed."""
    from pygoka import Context, Input, Persist, Processor, View, codec, define_group

    brokers, topic, group, n, keys = p["brokers"], p["topic"], p["group"], p["messages"], p["keys"]
    truth = dict(expected_counts(n, keys))
    ends = {number: high for number, (_, high) in end_offsets(brokers, topic).items()}
    state = Path(tempfile.mkdtemp(prefix="pygoka-bench-clickcount-"))

    def count(ctx: Context, _msg: Any) -> None:
        value = ctx.value()
        ctx.set_value(1 if value is None else value + 1)

    graph = define_group(group, Input(topic, codec.String(), count), Persist(codec.Int64()))
    processor = Processor(brokers, graph, state_dir=state, consumer_config=p["consumer_config"])
    profiler = Profiler(p["profile_tool"]) if p.get("profile") else None
    failure: list[BaseException] = []

    def run() -> None:
        try:
            if profiler is not None:
                profiler.start()
            processor.run()
        except BaseException as exc:  # noqa: BLE001 - reported by the polling loop
            failure.append(exc)
        finally:
            if profiler is not None:
                profiler.stop()

    def check() -> None:
        if failure:
            raise RuntimeError(f"processor failed: {failure[0]!r}") from failure[0]

    meter = Meter()
    thread = threading.Thread(target=run, name="processor", daemon=True)
    thread.start()
    first: float | None = None
    at_processed: dict[str, float] | None = None
    # Polling reads a few counters of at most `partitions` runs: microseconds every 20 ms.
    while True:
        runs = processor.partition_runs()
        processed = sum(run.processed for run in runs)
        if first is None and processed:
            first = meter.elapsed()
        if at_processed is None and processed >= n:
            at_processed = meter.sample()
        if len(runs) == len(ends) and all(run.committed.get(topic, 0) >= ends[run.partition] for run in runs):
            at_committed = meter.sample()
            break
        check()
        if meter.elapsed() > p["timeout"]:
            raise TimeoutError(f"processed {processed} of {n} messages in {p['timeout']}s")
        time.sleep(POLL_SECONDS)
    assert first is not None and at_processed is not None
    if profiler is not None:
        # Stop at once so that the profile shows the processing, not idle consume() calls during the
        # checks; the counts are then checked through the View below.
        processor.stop()
        thread.join(120)
        check()
        verified = 0
    else:
        verified = _check_counts(processor.get, keys, truth, "processor.get")
    table_records = record_count(brokers, graph.table_topic())
    processor.stop()
    thread.join(120)
    check()
    result: dict[str, Any] = {
        "messages": n, "startup_s": first, "processed_s": at_processed["wall_s"],
        "wall_s": at_committed["wall_s"], "msgs_per_s": n / at_committed["wall_s"],
        "steady_msgs_per_s": n / (at_processed["wall_s"] - first),
        "cpu_s": at_committed["cpu_s"], "cpu_us_per_msg": at_committed["cpu_s"] / n * 1e6,
        "cpu_cores": at_committed["cpu_cores"], "rss_start_mib": at_committed["rss_start_mib"],
        "peak_rss_mib": at_committed["peak_rss_mib"], "table_records": table_records,
        "keys_verified": verified,
    }
    if table_records != n:
        raise AssertionError(f"table topic has {table_records} records, expected one per message ({n})")
    shutil.rmtree(state, ignore_errors=True)
    if profiler is not None:
        profiler.save(Path(p["profile"]))
    if p.get("verify_view"):
        view_state = Path(tempfile.mkdtemp(prefix="pygoka-bench-clickcount-view-"))
        view = View(brokers, graph.table_topic(), codec.Int64(), state_dir=view_state,
                    consumer_config=p["consumer_config"])
        started = time.monotonic()
        view.start()
        if not view.wait_recovered(p["timeout"]):
            raise TimeoutError("the verifying view did not recover")
        result["view_check_s"] = time.monotonic() - started
        result["view_keys_verified"] = _check_counts(view.get, keys, truth, "view.get")
        view.stop()
        shutil.rmtree(view_state, ignore_errors=True)
    return result


def _floor_consumer(p: dict[str, Any]) -> tuple[Any, list[Any]]:
    """_floor_consumer is a floor's consumer and the assignment it reads: every partition of the clicks from the start.

    pygoka's own consumer settings (fetch.queue.backoff.ms above all): a floor with librdkafka's defaults would be
    lower than what the client allows, and than pygoka itself. Assigned by the caller once its Meter runs.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    from pygoka.kafka.config import group_consumer_config

    consumer = Consumer(group_consumer_config(p["brokers"], unique_name("bench-floor"), p["consumer_config"]))
    partitions = sorted(end_offsets(p["brokers"], p["topic"]))
    return consumer, [TopicPartition(p["topic"], number, OFFSET_BEGINNING) for number in partitions]


def _after_batch(meter: Meter, p: dict[str, Any], count: int, first: float) -> float:
    """_after_batch is the time of a floor's first message (first, or now if this batch brought it); it raises
    once the floor has taken longer than its timeout."""
    if not first and count:
        first = meter.elapsed()
    if meter.elapsed() > p["timeout"]:
        raise TimeoutError(f"consumed {count} of {p['messages']} messages in {p['timeout']}s")
    return first


def _floor_figures(count: int, first: float, done: dict[str, float]) -> dict[str, Any]:
    """_floor_figures are a floor's results from its message count, first message time and final sample."""
    return {"messages": count, "startup_s": first, "wall_s": done["wall_s"], "msgs_per_s": count / done["wall_s"],
            "steady_msgs_per_s": count / (done["wall_s"] - first), "cpu_s": done["cpu_s"],
            "cpu_us_per_msg": done["cpu_s"] / count * 1e6, "peak_rss_mib": done["peak_rss_mib"]}


def phase_consume(p: dict[str, Any]) -> dict[str, Any]:
    """phase_consume is the floor: a bare consume loop over the same topic, no state, no callbacks."""
    n = p["messages"]
    consumer, assignment = _floor_consumer(p)
    meter = Meter()
    consumer.assign(assignment)
    count, first = 0, 0.0
    while count < n:
        for message in consumer.consume(num_messages=BATCH, timeout=0.1):
            # The least any processor does per message: check the error, take key and value.
            if message.error() is None:
                message.key()
                message.value()
                count += 1
        first = _after_batch(meter, p, count, first)
    done = meter.sample()
    consumer.close()
    return _floor_figures(count, first, done)


def phase_update(p: dict[str, Any]) -> dict[str, Any]:
    """phase_update is the floor of Goka's semantics: consume, count in a dict, produce each update to a table topic.

    What no processor can leave out: every message's key and value, its key's count, and the update sent to the
    group table. Left out: storage (a dict), commits, callbacks and every check.
    """
    from confluent_kafka import Producer
    from pygoka.kafka.config import producer_config

    brokers, n, keys = p["brokers"], p["messages"], p["keys"]
    consumer, assignment = _floor_consumer(p)
    table = unique_name("bench-floor-table")
    create_topic(brokers, table, len(assignment), {"cleanup.policy": "compact"})
    try:
        producer = Producer(producer_config(brokers))
        produce = producer.produce
        counts: dict[bytes, int] = {}
        meter = Meter()
        consumer.assign(assignment)
        count, first = 0, 0.0
        while count < n:
            for message in consumer.consume(num_messages=BATCH, timeout=0.1):
                if message.error() is None:
                    key = message.key()
                    message.value()
                    value = counts.get(key, 0) + 1
                    counts[key] = value
                    produce(table, str(value).encode(), key, message.partition())
                    count += 1
            producer.poll(0)
            first = _after_batch(meter, p, count, first)
        left = producer.flush(p["timeout"])
        done = meter.sample()
        consumer.close()
        if left:
            raise TimeoutError(f"{left} table updates not delivered within {p['timeout']}s")
        truth = dict(expected_counts(n, keys))
        verified = _check_counts(lambda k: counts.get(k.encode()), keys, truth, "update floor")
        produced = record_count(brokers, table)
        if produced != n:
            raise AssertionError(f"update floor: the table topic has {produced} records, expected {n}")
    finally:
        delete_topics(brokers, [table])
    return {**_floor_figures(count, first, done), "keys_verified": verified}


def phase_rocksdb(p: dict[str, Any]) -> dict[str, Any]:
    """phase_rocksdb is the floor: read-increment-write in rocksdict for the same key sequence, no Kafka."""
    from rocksdict import Options, Rdict

    n, keys = p["messages"], p["keys"]
    names = [key_name(i).encode() for i in range(keys)]
    chunks = list(key_indices(n, keys))
    path = Path(tempfile.mkdtemp(prefix="pygoka-bench-rocksdb-"))
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    db = Rdict(str(path / "db"), options)
    get, put = db.get, db.put
    meter = Meter()
    for chunk in chunks:
        for index in chunk:
            key = names[index]
            raw = get(key)
            put(key, b"1" if raw is None else str(int(raw) + 1).encode())
    done = meter.sample()
    truth = dict(expected_counts(n, keys))
    verified = _check_counts(lambda k: None if (raw := get(k.encode())) is None else int(raw), keys, truth,
                             "rocksdict")
    db.close()
    shutil.rmtree(path, ignore_errors=True)
    return {"messages": n, "wall_s": done["wall_s"], "msgs_per_s": n / done["wall_s"],
            "steady_msgs_per_s": n / done["wall_s"], "cpu_s": done["cpu_s"],
            "cpu_us_per_msg": done["cpu_s"] / n * 1e6, "peak_rss_mib": done["peak_rss_mib"],
            "keys_verified": verified}


PHASES = {"pygoka": phase_pygoka, "consume": phase_consume, "update": phase_update, "rocksdb": phase_rocksdb}
#: FLOORS are the floor phases, in the order they run.
FLOORS = ("consume", "update", "rocksdb")
METRICS = ["msgs_per_s", "steady_msgs_per_s", "wall_s", "startup_s", "processed_s", "cpu_s", "cpu_us_per_msg",
           "cpu_cores", "peak_rss_mib", "view_check_s"]


class Profiler:
    """Profiler profiles the thread that starts it with one of three tools (see --profile).

    cprofile     cProfile in wall time: exact call counts; C calls include their waiting.
    cprofile-cpu cProfile timed by this thread's CPU clock: waiting drops out, per-call overhead grows.
    pyinstrument 1 ms wall-time sampling: least distortion, no call counts.
    """

    def __init__(self, tool: str) -> None:
        self.tool = tool
        self._cprofile: cProfile.Profile | None = None
        self._sampler: Any = None
        if tool == "pyinstrument":
            from pyinstrument import Profiler as Sampler

            self._sampler = Sampler(interval=0.001, async_mode="disabled")
        else:
            self._cprofile = cProfile.Profile(time.thread_time) if tool == "cprofile-cpu" else cProfile.Profile()

    def start(self) -> None:
        if self._sampler is not None:
            self._sampler.start()
        elif self._cprofile is not None:
            self._cprofile.enable()

    def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
        elif self._cprofile is not None:
            self._cprofile.disable()

    def save(self, path: Path, top: int = 25) -> None:
        """save writes the raw profile (.pstats or .html) and the top functions by own time (.txt)."""
        out = io.StringIO()
        if self._cprofile is not None:
            self._cprofile.dump_stats(str(path.with_suffix(".pstats")))
            stats = pstats.Stats(self._cprofile, stream=out)
            stats.sort_stats("tottime").print_stats(top)
            stats.sort_stats("cumulative").print_stats(top)
        else:
            path.with_suffix(".html").write_text(self._sampler.output_html())
            out.write(_sampled_top(self._sampler.last_session.root_frame(), top))
            out.write("\n" + self._sampler.output_text(color=False, unicode=True))
        path.with_suffix(".txt").write_text(out.getvalue())


def _sampled_top(root: Any, top: int) -> str:
    """_sampled_top sums pyinstrument's self time per function over the call tree, largest first."""
    own: dict[str, float] = {}
    total: dict[str, float] = {}
    stack = [(root, frozenset[str]())]
    while stack:
        frame, above = stack.pop()
        name = f"{frame.function} {frame.file_path_short}:{frame.line_no}"
        own[name] = own.get(name, 0.0) + frame.total_self_time
        if name not in above:  # count a recursive function's time once
            total[name] = total.get(name, 0.0) + frame.time
        stack.extend((child, above | {name}) for child in frame.children if not child.is_synthetic)
    whole = root.time or 1.0
    lines = [f"pyinstrument: {whole:.3f} s sampled in the processor thread; top {top} by own time", "",
             f"{'own s':>8} {'own %':>6} {'total s':>8}  function"]
    for name, seconds in sorted(own.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"{seconds:8.3f} {seconds / whole:6.1%} {total[name]:8.3f}  {name}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, help="click messages (default 1,000,000; 100,000 with --quick)")
    parser.add_argument("--keys", type=int, default=10_000, help="distinct keys (default 10,000)")
    parser.add_argument("--quick", action="store_true", help="100,000 messages")
    parser.add_argument("--no-floors", action="store_true", help="skip the consume, update and rocksdict floors")
    parser.add_argument("--no-view-check", action="store_true", help="skip checking the table through a View")
    parser.add_argument("--profile", nargs="?", const="cprofile", choices=("cprofile", "cprofile-cpu", "pyinstrument"),
                        help="run the processor once under a profiler and print the top functions (figures not "
                        "comparable: profiling slows it down); pyinstrument must be installed for that tool")
    args = parser.parse_args()
    if args.phase:
        phase_main(args, PHASES)
        return
    n = args.messages or (100_000 if args.quick else 1_000_000)
    topic = unique_name("bench-clicks")
    groups: list[str] = []
    print(f"preloading {n:,} messages over {args.keys:,} keys into {topic} ({args.partitions} partitions)",
          file=sys.stderr)
    create_topic(args.brokers, topic, args.partitions)
    try:
        produced, seconds = preload(args.brokers, topic, click_records(n, args.keys))
        stored = record_count(args.brokers, topic)
        if stored != n or produced != n:
            raise RuntimeError(f"preloaded {produced} messages but the topic holds {stored}, expected {n}")
        print(f"preloaded {n:,} messages in {seconds:.1f}s ({n / seconds:,.0f}/s)", file=sys.stderr)
        params = {"brokers": args.brokers, "topic": topic, "messages": n, "keys": args.keys,
                  "timeout": args.timeout, "consumer_config": consumer_overrides(args.consumer_config)}
        if args.profile:
            groups.append(unique_name("bench-clickcount"))
            RESULTS_DIR.mkdir(exist_ok=True)
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            dump = RESULTS_DIR / f"clickcount-profile-{args.profile}-{stamp}"
            run = run_phase(SCRIPT, "pygoka", {**params, "group": groups[-1], "profile": str(dump),
                                               "profile_tool": args.profile, "verify_view": True}, args.timeout)
            print(dump.with_suffix(".txt").read_text())
            print(f"profiled run ({args.profile} slows it down): {run['msgs_per_s']:,.0f} msgs/s; "
                  f"files: {dump}.*")
            return
        runs: dict[str, list[dict[str, Any]]] = {"pygoka": [], **{floor: [] for floor in FLOORS}}
        for attempt in range(args.repeat):
            groups.append(unique_name("bench-clickcount"))
            verify_view = not args.no_view_check and attempt == args.repeat - 1
            run = run_phase(SCRIPT, "pygoka", {**params, "group": groups[-1], "verify_view": verify_view},
                            args.timeout)
            runs["pygoka"].append(run)
            print(f"pygoka run {attempt + 1}: {run['msgs_per_s']:,.0f} msgs/s, {run['cpu_s']:.1f} CPU s, "
                  f"peak RSS {run['peak_rss_mib']:.0f} MiB", file=sys.stderr)
            if not args.no_floors:
                for floor in FLOORS:
                    run = run_phase(SCRIPT, floor, params, args.timeout)
                    runs[floor].append(run)
                    print(f"{floor} floor run {attempt + 1}: {run['msgs_per_s']:,.0f} msgs/s", file=sys.stderr)
    finally:
        if not args.keep_topics:
            delete_topics(args.brokers, [topic] + [f"{group}-table" for group in groups])
            delete_groups(args.brokers, groups)
    runs = {phase: phase_runs for phase, phase_runs in runs.items() if phase_runs}
    summary = {phase: summarize_runs(phase_runs, METRICS) for phase, phase_runs in runs.items()}
    ratios: dict[str, float] = {}
    pygoka = summary["pygoka"]
    for floor in FLOORS:
        if floor in summary:
            ratios[f"{floor}_floor_over_pygoka"] = summary[floor]["msgs_per_s"]["median"] / \
                pygoka["msgs_per_s"]["median"]
            ratios[f"{floor}_floor_over_pygoka_steady"] = summary[floor]["steady_msgs_per_s"]["median"] / \
                pygoka["steady_msgs_per_s"]["median"]
    result = {"benchmark": "clickcount", "environment": environment(args.brokers),
              "parameters": {"messages": n, "keys": args.keys, "partitions": args.partitions,
                             "repeat": args.repeat, "preload_msgs_per_s": round(n / seconds),
                             "consumer_config": params["consumer_config"]},
              "summary": summary, "ratios": ratios, "runs": runs}
    write_results("clickcount-quick" if n < 1_000_000 else "clickcount", "pygoka click-count benchmark", result,
                  args.json)


if __name__ == "__main__":
    main()
