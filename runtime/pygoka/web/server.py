"""MonitorServer: an aiohttp server, on a thread of its own, serving the monitor, queries, probes, metrics.

Every endpoint only reads: handlers are registered for GET (and the HEAD aiohttp adds), so any
other method is answered 405. With query_port set, the table query API (/tables...) is served only on
that port, so that a Kubernetes Service can expose the queries and nothing else; the main port keeps
the monitor page, probes and metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from pygoka.processor import Processor
from pygoka.view import View
from pygoka.web import metrics
from pygoka.web.monitor import Monitor
from pygoka.web.query import query

log = logging.getLogger("pygoka.web")

STATIC = Path(__file__).resolve().parent / "static"
SAMPLE_INTERVAL = 1.0


class MonitorServer:
    """MonitorServer serves the monitor page, the table query API, probes and metrics of attached objects.

    start() returns once the server listens; port (and query_port) are then the actual ports (also for 0).
    """

    def __init__(self, host: str = "0.0.0.0", port: int = 8080, *, query_port: int | None = None,
                 query_host: str | None = None) -> None:
        self.host = host
        self.port = port
        #: query_port serves the table query API apart from the main port (None: on the main port).
        self.query_port = query_port
        self.query_host = query_host if query_host is not None else host
        self.monitor = Monitor()
        self.registry = metrics.build_registry(self.monitor)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []
        self._stopped: asyncio.Event | None = None

    @property
    def url(self) -> str:
        """url is the server's base URL (a wildcard host is shown as 127.0.0.1)."""
        return _url(self.host, self.port)

    @property
    def query_url(self) -> str:
        """query_url is the base URL of the table query API (url unless query_port is set)."""
        return self.url if self.query_port is None else _url(self.query_host, self.query_port)

    def attach_processor(self, processor: Processor) -> None:
        """attach_processor shows a processor on the monitor and makes its group table queryable."""
        self.monitor.attach_processor(processor)

    def attach_view(self, view: View) -> None:
        """attach_view shows a view on the monitor and makes its table queryable."""
        self.monitor.attach_view(view)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """start runs the server in a background thread and returns once it listens (or raises why not)."""
        if self._thread is not None:
            raise RuntimeError("monitor server already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, args=(ready, failure), name="pygoka-web", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]

    def stop(self) -> None:
        """stop closes the server and waits for its thread to end."""
        loop, thread, stopped = self._loop, self._thread, self._stopped
        if loop is None or thread is None or stopped is None:
            return
        loop.call_soon_threadsafe(stopped.set)
        thread.join(30)
        self._thread = None

    def alive(self) -> bool:
        """alive tells whether the server thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready, failure))
        except BaseException as exc:  # noqa: BLE001 - handed to start() or logged
            if not ready.is_set():
                failure.append(exc)
            else:
                log.error("monitor server stopped: %s", exc)
        finally:
            ready.set()
            loop.close()
            self._loop = None

    async def _main(self, ready: threading.Event, failure: list[BaseException]) -> None:
        self._stopped = asyncio.Event()
        try:
            self.port = await self._listen(self._app(), self.host, self.port)
            if self.query_port is not None:
                self.query_port = await self._listen(self._query_app(), self.query_host, self.query_port)
            ready.set()
            sampler = asyncio.create_task(self._sample())
            await self._stopped.wait()
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        finally:
            for runner in self._runners:
                await runner.cleanup()
            self._runners = []

    async def _listen(self, app: web.Application, host: str, port: int) -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        await web.TCPSite(runner, host, port).start()
        bound: int = runner.addresses[0][1]
        return bound

    async def _sample(self) -> None:
        while True:
            try:
                self.monitor.sample()
            except Exception as exc:  # noqa: BLE001 - a failed sample must not end the server
                log.warning("monitor sample failed: %s", exc)
            await asyncio.sleep(SAMPLE_INTERVAL)

    # -- handlers --------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC)
        app.router.add_get("/api/state", self._state)
        if self.query_port is None:
            self._add_query_routes(app)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

    def _query_app(self) -> web.Application:
        app = web.Application()
        self._add_query_routes(app)
        return app

    def _add_query_routes(self, app: web.Application) -> None:
        app.router.add_get("/tables", self._tables)
        app.router.add_get("/tables/{table}/{key:.+}", self._query)

    async def _index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _state(self, request: web.Request) -> web.Response:
        # The page's query form works only where the query API is served.
        return web.json_response({**self.monitor.snapshot(), "query_port": self.query_port})

    async def _tables(self, request: web.Request) -> web.Response:
        return web.json_response({"tables": self.monitor.table_names()})

    async def _query(self, request: web.Request) -> web.Response:
        table, key = request.match_info["table"], request.match_info["key"]
        try:
            result = query(self.monitor, table, key)
        except Exception as exc:  # noqa: BLE001 - e.g. a store closed by a rebalance during the read
            return web.json_response({"error": f"cannot read '{key}' of '{table}': {exc}"}, status=503)
        return web.json_response(result.body, status=result.status)

    async def _healthz(self, request: web.Request) -> web.Response:
        problems = self.monitor.health()
        body: dict[str, Any] = {"status": "fail" if problems else "ok", "problems": problems}
        return web.json_response(body, status=503 if problems else 200)

    async def _readyz(self, request: web.Request) -> web.Response:
        reasons = self.monitor.readiness()
        body: dict[str, Any] = {"status": "not ready" if reasons else "ready", "reasons": reasons}
        return web.json_response(body, status=503 if reasons else 200)

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = metrics.render(self.registry, request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"
