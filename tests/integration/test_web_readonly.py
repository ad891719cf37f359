"""The query API of a View pod is read-only, over real HTTP: `pygoka run --view` (the operator's View command).

Every route answers GET; POST, PUT, PATCH and DELETE are refused with 405 and change nothing. With
PYGOKA_QUERY_PORT the table queries are served on that port only, and nothing else is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import Names, wait_until
from kafka_broker import free_port
from pygoka import Emitter, codec

pytestmark = pytest.mark.kafka
ROUTES = ["/", "/api/state", "/tables", "/tables/{table}/alice", "/tables/{table}/nobody", "/healthz", "/readyz",
          "/metrics", "/static/index.html"]
WRITES = ["POST", "PUT", "PATCH", "DELETE"]


def request(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes, str]:
    """request is (status, body, Allow header) of one HTTP request, also for error statuses."""
    sent = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(sent, timeout=10) as response:
            return response.status, response.read(), response.headers.get("Allow", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("Allow", "")


@pytest.fixture
def view_url(brokers: str, names: Names, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """view_url is the base URL of `pygoka run --view <table> --codec int64` serving a table, and the table."""
    table = names("readonly-table")
    with serve_view(brokers, table, tmp_path, {}) as url:
        yield url, table


@contextmanager
def serve_view(brokers: str, table: str, tmp_path: Path, extra_env: dict[str, str]) -> Iterator[str]:
    """serve_view runs `pygoka run --view` on table (alice=7) and yields its main URL once it is ready."""
    with Emitter(brokers, table, codec.Int64(), partitions=2) as emitter:
        emitter.emit_sync("alice", 7, timeout=30)
    env = {**os.environ, "PYGOKA_BROKERS": brokers, "PYGOKA_HTTP_PORT": str(free_port()),
           "PYGOKA_HTTP_HOST": "127.0.0.1", "PYGOKA_STATE_DIR": str(tmp_path / "state"), **extra_env}
    child = subprocess.Popen([sys.executable, "-m", "pygoka.cli", "run", "--view", table, "--codec", "int64"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(child.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        url = wait_until(lambda: next((m.group(1) for line in list(lines)
                                       if (m := re.search(r"listening on (http://\S+)", line))), None)
                         or child.poll() is not None, timeout=60, message="the HTTP address")
        assert isinstance(url, str), "".join(lines)
        wait_until(lambda: request(f"{url}/readyz")[0] == 200, timeout=60, message="view ready")
        yield url
    finally:
        child.terminate()
        child.wait(30)


def test_query_api_refuses_every_write_method(view_url: tuple[str, str]) -> None:
    """POST/PUT/PATCH/DELETE on every route: 405 with Allow listing only GET/HEAD; the value is unchanged."""
    url, table = view_url
    status, body, _ = request(f"{url}/tables/{table}/alice")
    assert status == 200 and json.loads(body)["value"] == 7
    refused = {}
    for route in ROUTES:
        path = route.format(table=table)
        assert request(f"{url}{path}")[0] in (200, 404), path
        for method in WRITES:
            status, _, allow = request(f"{url}{path}", method, body=b'{"value": 99}')
            refused[(method, path)] = (status, {item.strip() for item in allow.split(",") if item.strip()})
    assert {key: status for key, (status, _) in refused.items()} == dict.fromkeys(refused, 405)
    assert all("GET" in allow and allow <= {"GET", "HEAD"} for _, allow in refused.values()), refused
    status, body, _ = request(f"{url}/tables/{table}/alice")
    assert status == 200 and json.loads(body)["value"] == 7


def test_query_port_serves_the_queries_and_nothing_else(brokers: str, names: Names,
                                                        tmp_path: Path) -> None:
    """With PYGOKA_QUERY_PORT, /tables... answer there only; probes, metrics and the page stay on the main port."""
    table, query_port = names("query-port-table"), free_port()
    with serve_view(brokers, table, tmp_path, {"PYGOKA_QUERY_PORT": str(query_port),
                                               "PYGOKA_QUERY_HOST": "127.0.0.1"}) as url:
        queries = f"http://127.0.0.1:{query_port}"
        status, body, _ = request(f"{queries}/tables/{table}/alice")
        assert status == 200 and json.loads(body)["value"] == 7
        assert json.loads(request(f"{queries}/tables")[1]) == {"tables": [table]}
        for path in ("/", "/api/state", "/healthz", "/readyz", "/metrics", "/static/index.html"):
            assert request(f"{queries}{path}")[0] == 404, path
            assert request(f"{url}{path}")[0] == 200, path
        assert request(f"{url}/tables/{table}/alice")[0] == 404
        assert json.loads(request(f"{url}/api/state")[1])["query_port"] == query_port
        for method in WRITES:
            assert request(f"{queries}/tables/{table}/alice", method, body=b"{}")[0] == 405, method
