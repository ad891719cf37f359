"""Shared setup of the web tests: a click-counting processor, a view of its table, HTTP and monitor page helpers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pygoka import Context, Emitter, GroupGraph, Input, Persist, Processor, View, codec, define_group, group_table

if TYPE_CHECKING:
    from playwright.sync_api import Page

PARTITIONS = 2
FAST = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
USERS = ["alice", "bob", "carol", "dave"]
#: CHROMIUM is Debian's (scripts/lib/chromium.sh installs it), driven headless by playwright.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def count_clicks(ctx: Context, message: Any) -> None:
    """count_clicks fails on a 'boom' click (to test failure reporting) and counts the others per user."""
    if message == "boom":
        raise ValueError("boom click")
    ctx.set_value((ctx.value() or 0) + 1)


@dataclass
class ClickApp:
    """ClickApp names the topics of one test's click counter."""

    brokers: str
    group: str
    clicks: str

    @property
    def table(self) -> str:
        return group_table(self.group)

    def graph(self) -> GroupGraph:
        return define_group(self.group, Input(self.clicks, codec.String(), count_clicks), Persist(codec.Int64()))

    def processor(self, state_dir: Path) -> Processor:
        return Processor(self.brokers, self.graph(), state_dir=state_dir, consumer_config=dict(FAST),
                         partitions=PARTITIONS, commit_interval=0.2)

    def view(self, state_dir: Path) -> View:
        return View(self.brokers, self.table, codec.Int64(), state_dir=state_dir)

    def emit(self, clicks: list[tuple[str, str]]) -> None:
        """emit sends (user, click) records synchronously."""
        with Emitter(self.brokers, self.clicks, codec.String(), partitions=PARTITIONS) as emitter:
            for user, click in clicks:
                emitter.emit_sync(user, click, timeout=30)


def expected_counts(clicks: list[tuple[str, str]]) -> dict[str, int]:
    """expected_counts is what count_clicks stores for clicks."""
    counts: dict[str, int] = {}
    for user, _ in clicks:
        counts[user] = counts.get(user, 0) + 1
    return counts


def get(url: str) -> tuple[int, str, str]:
    """get fetches url and returns (status, content type, body), also for error statuses."""
    request = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


def get_json(url: str) -> tuple[int, Any]:
    """get_json fetches url and decodes its JSON body."""
    status, _, body = get(url)
    return status, json.loads(body)


@dataclass(frozen=True)
class PartitionRow:
    """PartitionRow is one partition row of the monitor page: its number, state and processed count."""

    partition: int
    state: str | None
    processed: int


def partition_rows(page: Page, group: str, count: int, timeout_ms: float) -> list[PartitionRow]:
    """partition_rows waits until the monitor page shows count partition rows of group and reads every row."""
    rows = page.locator(f'div.processor[data-group="{group}"] tr.partition')
    rows.nth(count - 1).wait_for(timeout=timeout_ms)
    return [PartitionRow(int(row.locator("td").nth(0).inner_text()), row.get_attribute("data-state"),
                         int(row.locator("td").nth(2).inner_text())) for row in rows.all()]


def query_form(page: Page, table: str, key: str, status: int, timeout_ms: float) -> str:
    """query_form asks the monitor page's query form for key in table and returns the answer with that status."""
    page.select_option("#query-table", table)
    page.fill("#query-key", key)
    page.click("#query-submit")
    result = page.locator(f'#query-result[data-status="{status}"]')
    result.wait_for(timeout=timeout_ms)
    return result.inner_text()
