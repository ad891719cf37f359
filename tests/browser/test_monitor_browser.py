"""The monitor page in headless Chromium: partitions of a running processor, and a table query from the form."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from helpers import Names, Start, wait_until
from playwright.sync_api import sync_playwright
from prefix_proxy import prefix_proxy
from pygoka.web import MonitorServer
from web_helpers import CHROMIUM, CHROMIUM_ARGS, USERS, ClickApp, expected_counts, get_json, partition_rows, query_form

pytestmark = pytest.mark.kafka

CLICKS = [(USERS[i % 4], f"click-{i}") for i in range(10)]


@pytest.mark.parametrize("behind_prefix", [False, True], ids=["direct", "service-proxy-prefix"])
def test_monitor_page_shows_partitions_and_answers_queries(brokers: str, names: Names, tmp_path: Path,
                                                            start: Start, behind_prefix: bool) -> None:
    """The page lists both partitions as running with their processed counts; the form returns a count.

    Also behind a prefix-stripping proxy shaped like the API server's service proxy: every URL of the page
    (its script, style, state polls and queries) is relative, or the page would stay empty there."""
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run scripts/lib/chromium.sh"
    app = ClickApp(brokers, names("browser-group"), names("browser-clicks"))
    app.emit(CLICKS)
    processor = app.processor(tmp_path / "state")
    server = MonitorServer(host="127.0.0.1", port=0)
    server.attach_processor(processor)
    server.start()
    try:
        start(processor)
        wait_until(lambda: get_json(f"{server.url}/readyz")[0] == 200, message="processor recovered")
        wait_until(lambda: sum(p["processed"] for p in get_json(f"{server.url}/api/state")[1]["processors"][0]
                               ["partitions"]) == len(CLICKS), message="clicks processed")
        counts = expected_counts(CLICKS)
        with contextlib.ExitStack() as stack, sync_playwright() as playwright:
            url = stack.enter_context(prefix_proxy(server.url)) if behind_prefix else server.url
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 700})
                # Without the trailing slash, as people type it: the proxy redirects, as the API server does.
                page.goto(url.rstrip("/") if behind_prefix else url)
                rows = partition_rows(page, app.group, 2, timeout_ms=15_000)
                assert len(rows) == 2
                assert [row.state for row in rows] == ["running", "running"]
                assert [row.partition for row in rows] == [0, 1]
                assert sum(row.processed for row in rows) == len(CLICKS)

                answer = query_form(page, app.table, "alice", 200, timeout_ms=10_000)
                assert f'"value": {counts["alice"]}' in answer
                query_form(page, app.table, "nobody", 404, timeout_ms=10_000)
                query_form(page, app.table, "alice", 200, timeout_ms=10_000)
                screenshot = tmp_path / "monitor.png"
                page.screenshot(path=str(screenshot), full_page=True)
                assert screenshot.stat().st_size > 10_000
                # The navigation links resolve under the page's own path too.
                for link in page.locator("nav a").all():
                    href = link.evaluate("a => a.href")
                    assert href.startswith(url) and page.request.get(href).status in (200, 503), href
            finally:
                browser.close()
    finally:
        server.stop()
