"""service: the HTTP front end. POST /{user}/send emits a message to message_sent; GET /{user}/feed reads
the user's latest messages from a view of the collector's table.

    curl -X POST -d '{"to": "bob", "content": "hello"}' http://127.0.0.1:8080/alice/send
    curl http://127.0.0.1:8080/bob/feed     # [{"From": "alice", "To": "bob", "Content": "hello"}]
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable

from aiohttp import web
from pygoka import Emitter, NotRunningError, View

from messaging import collector
from messaging.message import Message, MessageCodec, MessageListCodec, Names


def feed_view(brokers: str, names: Names) -> View:
    """feed_view is the view of the collector's table that GET /{user}/feed reads."""
    return View(brokers, names.table(collector.COMPONENT), MessageListCodec())


def app(emitter: Emitter, view: View) -> web.Application:
    """app routes POST /{user}/send to the emitter and GET /{user}/feed to the view."""

    async def send(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            to, content = body.get("to", body.get("To")), body.get("content", body.get("Content", ""))
        except (json.JSONDecodeError, AttributeError):
            return web.json_response({"error": 'expected a JSON object {"to": ..., "content": ...}'}, status=400)
        if not isinstance(to, str) or not to or not isinstance(content, str):
            return web.json_response({"error": '"to" and "content" must be strings'}, status=400)
        message = Message(sender=request.match_info["user"], to=to, content=content)
        # Keyed by the sender: the filter joins the sender's block state, the detector counts per sender.
        delivery = await asyncio.wrap_future(emitter.emit(message.sender, message))
        return web.json_response({"sent": message.to_json(), "partition": delivery.partition,
                                  "offset": delivery.offset})

    async def feed(request: web.Request) -> web.Response:
        user = request.match_info["user"]
        try:
            messages: list[Message] | None = view.get(user)
        except NotRunningError:
            return web.json_response({"error": "the view is starting"}, status=503)
        if messages is None:
            return web.json_response({"error": f"{user} not found"}, status=404)
        return web.json_response([message.to_json() for message in messages])

    application = web.Application()
    application.router.add_post("/{user}/send", send)
    application.router.add_get("/{user}/feed", feed)
    return application


async def serve(brokers: str, names: Names, host: str, port: int, running: Callable[[], bool]) -> None:
    """serve runs the front end until running() turns false; it prints the address it listens on."""
    view = feed_view(brokers, names)
    view.start()
    emitter = Emitter(brokers, names.sent_stream, MessageCodec())
    # Bind the socket ourselves so that port 0 works and the real port can be printed.
    sock = socket.create_server((host, port))
    runner = web.AppRunner(app(emitter, view))
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
        print(f"service: listening at http://{host}:{sock.getsockname()[1]}/", flush=True)
        while running():
            if view.error is not None:
                raise view.error
            await asyncio.sleep(0.2)
    finally:
        await runner.cleanup()
        emitter.finish()
        view.stop()
