"""Prometheus metrics: a custom collector that reads the monitored objects' state at scrape time.

Nothing is counted per message for these metrics: the runner's own counters (PartitionRun.processed,
table offsets, the per-checkpoint duration buckets) are turned into metric families when scraped.
Per-partition counters restart when a partition is assigned again, which Prometheus treats as a
counter reset.

Label names mean one thing across all metrics: group is a processor group (its consumer group), topic an input
topic, table a table topic, partition a partition number, and source whether a table partition is a
processor's ("processor", with its group) or a view's ("view").
"""

from __future__ import annotations

import platform
from collections.abc import Iterator

import confluent_kafka
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

import pygoka
from pygoka.checkpoint import CHECKPOINT_BUCKETS
from pygoka.table import PartitionState, PartitionTable
from pygoka.web.monitor import Monitor, processor_table, recovery_progress, table_size

_STATES = [state.value for state in PartitionState]


class _TableFamilies:
    """_TableFamilies are the metric families describing table partitions, of processors and views."""

    labels = ["source", "group", "table", "partition"]

    def __init__(self) -> None:
        self.offset = GaugeMetricFamily("pygoka_table_offset", "Table topic offset of the last stored update.",
                                        labels=self.labels)
        self.high_watermark = GaugeMetricFamily(
            "pygoka_table_high_watermark", "End of the table topic partition that recovery catches up with.",
            labels=self.labels)
        self.progress = GaugeMetricFamily("pygoka_table_recovery_progress",
                                          "Recovery progress of a table partition from 0 to 1.", labels=self.labels)
        self.keys = GaugeMetricFamily("pygoka_table_keys_estimate",
                                      "Estimated number of keys in the local table partition.", labels=self.labels)
        self.state = GaugeMetricFamily("pygoka_table_state", "1 for the state a table partition is in.",
                                       labels=[*self.labels, "state"])

    def add(self, source: str, group: str, table: PartitionTable) -> None:
        labels = [source, group, table.topic, str(table.partition)]
        offset = table.offset()
        if offset is not None:
            self.offset.add_metric(labels, offset)
        if table.high_watermark is not None:
            self.high_watermark.add_metric(labels, table.high_watermark)
        self.progress.add_metric(labels, recovery_progress(table))
        size = table_size(table)
        if size is not None:
            self.keys.add_metric(labels, size)
        for state in _STATES:
            self.state.add_metric([*labels, state], 1.0 if table.state.value == state else 0.0)

    def families(self) -> list[Metric]:
        return [self.offset, self.high_watermark, self.progress, self.keys, self.state]


class PygokaCollector(Collector):
    """PygokaCollector yields the metrics of a Monitor's processors and views when scraped."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        processed = CounterMetricFamily("pygoka_messages_processed", "Messages processed by an active partition.",
                                        labels=["group", "partition"])
        rate = GaugeMetricFamily("pygoka_messages_per_second", "Messages processed per second (1 s samples).",
                                 labels=["group", "partition"])
        lag = GaugeMetricFamily("pygoka_consumer_lag", "Messages of an input partition not yet processed.",
                                labels=["group", "topic", "partition"])
        failures = CounterMetricFamily("pygoka_processor_failures", "Processor runs that ended with an error.",
                                       labels=["group"])
        restarts = CounterMetricFamily("pygoka_processor_restarts",
                                       "Times run() started over with new clients after the broker aborted a "
                                       "transaction during an outage (exactly-once).", labels=["group"])
        running = GaugeMetricFamily("pygoka_processor_running", "1 while the processor runs.", labels=["group"])
        recovered = GaugeMetricFamily("pygoka_processor_recovered", "1 once the processor's partitions recovered.",
                                      labels=["group"])
        rebalances = CounterMetricFamily("pygoka_rebalances", "Partition assignments and revocations of the run.",
                                         labels=["group"])
        view_recovered = GaugeMetricFamily("pygoka_view_recovered", "1 once a view has recovered.", labels=["table"])
        view_failed = GaugeMetricFamily("pygoka_view_failed", "1 when a view's run() failed.", labels=["table"])
        checkpoints = HistogramMetricFamily("pygoka_checkpoint_seconds",
                                            "Duration of checkpoints (flush, table write, offset commit).",
                                            labels=["group"])
        tables = _TableFamilies()
        monitor = self.monitor
        for processor in monitor.processors:
            group = processor.graph.group
            state = monitor.processor_state(processor)
            failures.add_metric([group], processor.failures)
            restarts.add_metric([group], processor.restarts)
            running.add_metric([group], 1.0 if state["status"] == "running" else 0.0)
            recovered.add_metric([group], 1.0 if state["recovered"] else 0.0)
            for partition in state["partitions"]:
                labels = [group, str(partition["partition"])]
                processed.add_metric(labels, partition["processed"])
                rate.add_metric(labels, partition["rate"])
                for item in partition["inputs"]:
                    if item["lag"] is not None:
                        lag.add_metric([group, item["topic"], str(partition["partition"])], item["lag"])
            if processor_table(processor) is not None:
                for table in processor.table_partitions():
                    tables.add("processor", group, table)
            rebalances.add_metric([group], processor.rebalances())
            stats = processor.checkpoint_stats()
            if stats is not None:
                cumulative, buckets = 0, []
                for bound, count in zip([*map(str, CHECKPOINT_BUCKETS), "+Inf"], stats.counts, strict=True):
                    cumulative += count
                    buckets.append((bound, float(cumulative)))
                checkpoints.add_metric([group], buckets, stats.seconds_sum)
        for view in monitor.views:
            view_recovered.add_metric([view.table], 1.0 if view.recovered() else 0.0)
            view_failed.add_metric([view.table], 1.0 if view.error is not None else 0.0)
            for table in view.partitions():
                tables.add("view", "", table)
        yield build_info()
        yield from [processed, rate, lag, failures, restarts, running, recovered, rebalances, checkpoints,
                    view_recovered, view_failed]
        yield from tables.families()


def build_registry(monitor: Monitor) -> CollectorRegistry:
    """build_registry is a registry of its own per server (with process metrics), so servers never clash."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PygokaCollector(monitor))
    ProcessCollector(registry=registry)
    return registry


def build_info() -> GaugeMetricFamily:
    """build_info is pygoka_build_info: 1, with the versions of pygoka, Python, confluent-kafka and librdkafka."""
    info = GaugeMetricFamily("pygoka_build_info", "Versions pygoka runs with (the value is always 1).",
                             labels=["version", "python", "confluent_kafka", "librdkafka"])
    info.add_metric([pygoka.__version__, platform.python_version(), confluent_kafka.version()[0],
                     confluent_kafka.libversion()[0]], 1.0)
    return info


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """render is the exposition of a registry in the format the Accept header asks for (Prometheus text, or
    OpenMetrics for a scraper that prefers it), with its content type, as prometheus_client's handlers do."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


