"""An ASGI application for the AsgiToWsgi tests, with a probe the tests watch it through.

One app answers every path the tests need (state, scope, downloads, echo, events,
errors, endless streams).  It records what happened in a :class:`Probe` whose
``threading.Event`` s let a test wait for the app, and let the app wait for the test,
without sleeping.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

Message = dict[str, Any]
CHUNK = 64 * 1024
#: bytes of the /download response: 8 MiB
DOWNLOAD_CHUNKS = 128
WAIT = 10.0


def pattern(index: int) -> bytes:
    """Return chunk ``index`` of the /download body (each chunk different)."""
    return hashlib.sha256(str(index).encode()).digest() * (CHUNK // 32)


@dataclass
class Probe:
    """What the test app saw, and events for both sides to wait on."""

    lifespan: list[str] = field(default_factory=list)
    loop_threads: set[int] = field(default_factory=set)
    client_has_first: threading.Event = field(default_factory=threading.Event)
    streaming: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)
    send_failed: list[BaseException] = field(default_factory=list)
    lifespan_support: bool = True
    fail_startup: bool = False
    hang_startup: bool = False


async def _lifespan(probe: Probe, scope: Message, receive: Any, send: Any) -> None:
    if not probe.lifespan_support:
        raise RuntimeError("this app has no lifespan support")
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if probe.hang_startup:
                await anyio.sleep_forever()
            if probe.fail_startup:
                await send(
                    {"type": "lifespan.startup.failed", "message": "no database"}
                )
                return
            scope["state"]["greeting"] = "hello from startup"
            probe.lifespan.append("startup")
            await send({"type": "lifespan.startup.complete"})
        else:
            probe.lifespan.append("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _reply(send: Any, body: bytes, status: int = 200) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def make_app(probe: Probe) -> Any:
    """Return the test ASGI application reporting to ``probe``."""

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(probe, scope, receive, send)
            return
        probe.loop_threads.add(threading.get_ident())
        path = scope["path"]
        if path == "/state":
            state = scope.get("state")
            report = json.dumps({"state": dict(state) if state is not None else None})
            if state is not None:
                state["mutated"] = True  # must not reach the next request
            await _reply(send, report.encode())
        elif path.startswith("/scope"):
            await _reply(send, json.dumps(describe(scope)).encode())
        elif path == "/download":
            await _download(send)
        elif path == "/echo":
            await _echo(receive, send)
        elif path == "/events":
            await _events(probe, send)
        elif path == "/endless":
            await _endless(probe, receive, send)
        elif path == "/boom":
            raise RuntimeError("boom before the response")
        elif path == "/boom-late":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"100")],
                }
            )
            await send(
                {"type": "http.response.body", "body": b"x" * 10, "more_body": True}
            )
            raise RuntimeError("boom in the middle of the body")
        else:
            await _reply(send, b'"not found"', 404)

    return app


def describe(scope: Message) -> dict[str, Any]:
    """Return the scope fields a test checks, JSON-ready (bytes as latin-1 text)."""
    return {
        "type": scope["type"],
        "asgi": scope["asgi"],
        "http_version": scope["http_version"],
        "method": scope["method"],
        "scheme": scope["scheme"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "root_path": scope["root_path"],
        "query_string": scope["query_string"].decode("latin-1"),
        "headers": [
            [k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]
        ],
        "client": list(scope["client"]) if scope["client"] else None,
        "server": list(scope["server"]) if scope["server"] else None,
    }


async def _download(send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/octet-stream")],
        }
    )
    for index in range(DOWNLOAD_CHUNKS):
        await send(
            {"type": "http.response.body", "body": pattern(index), "more_body": True}
        )
    await send({"type": "http.response.body", "body": b""})


async def _echo(receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/octet-stream")],
        }
    )
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        more = message.get("more_body", False)
        await send(
            {"type": "http.response.body", "body": message["body"], "more_body": more}
        )
        if not more:
            return


async def _events(probe: Probe, send: Any) -> None:
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
    # the second event goes out only once the client has read the first
    seen = await anyio.to_thread.run_sync(probe.client_has_first.wait, WAIT)
    second = b"data: 2\n\n" if seen else b"data: client never saw event 1\n\n"
    await send({"type": "http.response.body", "body": second})


async def _endless(probe: Probe, receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/octet-stream")],
        }
    )

    async def produce() -> None:
        try:
            # 4 GiB at most: far beyond any server's buffering, so the test fails
            # instead of running forever if the disconnect never arrives
            for _ in range(65536):
                await send(
                    {
                        "type": "http.response.body",
                        "body": b"z" * CHUNK,
                        "more_body": True,
                    }
                )
                probe.streaming.set()
        except OSError as exc:
            probe.send_failed.append(exc)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(produce)
        while (await receive())["type"] != "http.disconnect":
            pass
        probe.disconnected.set()
        tasks.cancel_scope.cancel()
