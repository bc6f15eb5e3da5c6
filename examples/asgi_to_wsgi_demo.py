"""
Serve a Starlette (ASGI) application with waitress (a WSGI server) through AsgiToWsgi.

The demo starts waitress on a free port of 127.0.0.1, once with the application on an
asyncio loop and once on a trio loop, and talks to it with httpx: a page that shows the
lifespan state, server-sent events arriving one by one while the application produces
them, and a streamed upload.  Then it stops waitress and closes the adapter, which runs
the application's lifespan shutdown.

Run it with ``python examples/asgi_to_wsgi_demo.py`` (or ``make demo``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import sniffio
import waitress  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from waitress import wasyncore

from asgibridge_any.wsgi import AsgiToWsgi

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from starlette.requests import Request


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    print("    lifespan: startup")
    # Starlette hands this dict to every request as request.state
    yield {"loop": sniffio.current_async_library()}
    print("    lifespan: shutdown")


async def home(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "from Starlette", "loop": request.state.loop})


async def events(request: Request) -> StreamingResponse:
    async def stream() -> AsyncIterator[str]:
        for number in range(1, 4):
            yield f"data: event {number}\n\n"
            await anyio.sleep(0.3)  # an event source producing slowly

    return StreamingResponse(stream(), media_type="text/event-stream")


async def upload(request: Request) -> JSONResponse:
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.stream():  # read as the client sends it
        digest.update(chunk)
        size += len(chunk)
    return JSONResponse({"size": size, "sha256": digest.hexdigest()})


starlette_app = Starlette(
    routes=[
        Route("/", home),
        Route("/events", events),
        Route("/upload", upload, methods=["POST"]),
    ],
    lifespan=lifespan,
)


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """Yield ``body`` in pieces, so that httpx sends it with chunked encoding."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def talk_to(url: str) -> None:
    """Make the three requests and print what came back."""
    with httpx.Client(base_url=url, timeout=10) as client:
        page = client.get("/")
        print(f"    GET /        -> {page.status_code} {page.json()}")

        started = time.perf_counter()
        with client.stream("GET", "/events") as response:
            print(f"    GET /events  -> {response.status_code}, events as they come:")
            for line in response.iter_lines():
                if line:
                    print(f"      after {time.perf_counter() - started:.1f} s: {line}")

        body = b"0123456789abcdef" * 65536  # 1 MiB
        result = client.post("/upload", content=chunks(body)).json()
        same = result["sha256"] == hashlib.sha256(body).hexdigest()
        print(f"    POST /upload -> {result['size']} bytes, sha256 matches: {same}")


def serve_and_talk(backend: str) -> None:
    """Serve the app with waitress on a ``backend`` loop, talk to it, stop it all."""
    application = AsgiToWsgi(starlette_app, backend=backend)  # type: ignore[arg-type]
    server = waitress.create_server(application, host="127.0.0.1", port=0)
    url = f"http://127.0.0.1:{server.effective_port}"
    print(f"waitress serving the Starlette app on {url}, backend={backend!r}")
    stop = threading.Event()

    def run() -> None:
        # waitress's run() serves until its sockets are closed, which has to happen in
        # its own thread: this loop serves until asked to stop, then closes them
        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)
        wasyncore.close_all(server._map, ignore_all=True)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        talk_to(url)
    finally:
        server.task_dispatcher.shutdown()  # lets running responses finish
        stop.set()
        thread.join()
        application.close()  # runs the lifespan shutdown


def main() -> None:
    for backend in ("asyncio", "trio"):
        serve_and_talk(backend)
        print()


if __name__ == "__main__":
    main()
