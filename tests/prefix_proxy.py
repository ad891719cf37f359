"""PrefixProxy: a reverse proxy that serves an upstream under a path prefix and strips it, as the Kubernetes API
server's service proxy (/api/v1/namespaces/NS/services/NAME:PORT/proxy/...) and path-based Ingresses do.

Anything outside the prefix is 404, so a page that uses an absolute URL breaks behind it as it would behind the
API server; the prefix itself without its trailing slash is redirected to it, as the API server does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
from aiohttp import web

#: SERVICE_PROXY is the prefix of a Service's port through the API server.
SERVICE_PROXY = "/api/v1/namespaces/apps/services/click-count-view:http/proxy"


@contextmanager
def prefix_proxy(upstream: str, prefix: str = SERVICE_PROXY) -> Iterator[str]:
    """prefix_proxy runs the proxy on a free port and yields its URL of the prefix (with the trailing slash)."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()
    url: list[str] = []

    async def forward(request: web.Request) -> web.StreamResponse:
        if request.path == prefix:
            raise web.HTTPFound(prefix + "/")
        if not request.path.startswith(prefix + "/"):
            return web.Response(status=404, text=f"not under {prefix}/: {request.path}")
        target = upstream + request.path_qs[len(prefix):]
        async with aiohttp.ClientSession() as session, session.get(target, headers={
                key: value for key, value in request.headers.items() if key.lower() != "host"}) as answer:
            body = await answer.read()
            headers = {key: value for key, value in answer.headers.items()
                       if key.lower() in ("content-type", "cache-control")}
            return web.Response(status=answer.status, body=body, headers=headers)

    async def serve() -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        url.append(f"http://127.0.0.1:{port}{prefix}/")
        ready.set()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield url[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
