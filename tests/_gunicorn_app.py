"""The ASGI app the gunicorn tests serve through AsgiToWsgi, in gunicorn's worker processes.

gunicorn imports ``tests._gunicorn_app:application``.  The event loop is chosen by
``ASGI_TO_WSGI_BACKEND``.  The app talks back to the test process over TCP
(``ASGI_TO_WSGI_PROBE_PORT``): it sends one line ("hold <pid>", "shutdown <pid>", ...) and
waits for a one-byte reply, which lets the test hold a request open or learn what a
worker did, without sleeping.  With ``ASGI_TO_WSGI_WARM_UP`` set (and ``--preload``), the
adapter serves one request in the master before gunicorn forks, so the workers inherit an
adapter whose loop thread did not survive the fork.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import anyio

from asgibridge_any.wsgi import AsgiToWsgi

Message = dict[str, Any]
CHUNK = 64 * 1024


async def tell(line: str) -> bytes:
    """Send ``line`` to the test and return its one-byte answer."""
    port = int(os.environ["ASGI_TO_WSGI_PROBE_PORT"])
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(line.encode() + b"\n")
        return await stream.receive(1)


async def reply_json(send: Any, data: object, status: int = 200) -> None:
    body = json.dumps(data).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def lifespan(scope: Message, receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["startup_pid"] = os.getpid()
            await send({"type": "lifespan.startup.complete"})
        else:
            if os.environ.get("ASGI_TO_WSGI_REPORT_SHUTDOWN"):
                await tell(f"shutdown {os.getpid()}")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Message, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    path = scope["path"]
    report = {"pid": os.getpid(), "startup_pid": scope["state"]["startup_pid"]}
    if path == "/pid":
        await reply_json(send, report)
    elif path == "/hold":
        await tell(f"hold {os.getpid()}")
        await reply_json(send, report)
    elif path == "/echo":
        await send({"type": "http.response.start", "status": 200})
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
            await send(
                {
                    "type": "http.response.body",
                    "body": message["body"],
                    "more_body": more,
                }
            )
    elif path == "/download":
        await send({"type": "http.response.start", "status": 200})
        for index in range(128):
            body = index.to_bytes(4, "big") * (CHUNK // 4)
            await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body"})
    elif path == "/events":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True}
        )
        await tell("sent event 1")  # answered once the client has read it
        await send({"type": "http.response.body", "body": b"data: 2\n\n"})
    elif path == "/endless":
        await endless(receive, send)
    elif path == "/boom":
        raise RuntimeError("boom in a gunicorn worker")
    else:
        await reply_json(send, "not found", 404)


async def endless(receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200})
    async with anyio.create_task_group() as tasks:

        async def produce() -> None:
            try:
                for _ in range(65536):
                    await send(
                        {
                            "type": "http.response.body",
                            "body": b"z" * CHUNK,
                            "more_body": True,
                        }
                    )
            except OSError:
                pass  # the client left; the receive() below reports it

        tasks.start_soon(produce)
        while (await receive())["type"] != "http.disconnect":
            pass
        tasks.cancel_scope.cancel()
    await tell("disconnected")


application = AsgiToWsgi(app, backend=os.environ.get("ASGI_TO_WSGI_BACKEND", "asyncio"))  # type: ignore[arg-type]

if os.environ.get("ASGI_TO_WSGI_WARM_UP"):
    # One request in the master: its loop thread is running when gunicorn forks.
    def _start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        assert status.startswith("200"), status
        return lambda data: None

    _environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/pid",
        "SERVER_NAME": "master",
        "SERVER_PORT": "0",
        "wsgi.input": io.BytesIO(),
    }
    _result = application(_environ, _start_response)
    b"".join(_result)
    _result.close()  # type: ignore[attr-defined]
