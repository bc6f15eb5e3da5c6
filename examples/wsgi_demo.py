"""
Serve examples/flask_app.py on hypercorn's trio worker and talk to it over HTTP.

The server listens on a free port of 127.0.0.1; the demo fetches the page, a streamed
download and uploads a body with httpx, prints what came back, and shuts the server down.

Run it with ``python examples/wsgi_demo.py`` (or ``make demo``).
"""

from __future__ import annotations

import hashlib
import socket
from functools import partial
from typing import TYPE_CHECKING, cast

import httpx
import trio
from flask_app import application
from hypercorn.config import Config
from hypercorn.trio import serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from hypercorn.typing import Framework


async def talk_to(url: str) -> None:
    """Make the three requests and print their results."""
    async with httpx.AsyncClient(base_url=url) as client:
        page = await client.get("/")
        print(
            f"GET /            -> {page.status_code}, {len(page.text)} characters of HTML"
        )
        heading = page.text.split("<h1>")[1].split("</h1>")[0]
        print(f"                    {heading}")

        print("GET /stream      -> ", end="")
        async with client.stream("GET", "/stream", params={"lines": 3}) as response:
            print(response.status_code, response.headers.get("transfer-encoding"))
            async for line in response.aiter_lines():
                print(f"                    {line}")

        body = b"0123456789abcdef" * 65536  # 1 MiB, sent in chunks
        upload = await client.post("/upload", content=chunks(body))
        result = upload.json()
        print(
            f"POST /upload     -> {upload.status_code}, {result['size']} bytes received"
        )
        same = result["sha256"] == hashlib.sha256(body).hexdigest()
        print(f"                    sha256 matches what was sent: {same}")


async def chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """Yield ``body`` in pieces, so that httpx sends it with chunked encoding."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def main() -> None:
    # Listen before hypercorn starts: clients can connect at once, no readiness polling.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(100)
    sock.setblocking(False)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.graceful_timeout = 2
    stop = trio.Event()
    print(f"hypercorn (trio worker) serving examples/flask_app.py on {url}")
    async with trio.open_nursery() as nursery:
        # hypercorn types its ASGI messages with TypedDicts of its own; ours are the
        # ASGI spec's, which mypy cannot match up, hence the cast.
        asgi_app = cast("Framework", application)
        nursery.start_soon(partial(serve, asgi_app, config, shutdown_trigger=stop.wait))
        try:
            await talk_to(url)
        finally:
            stop.set()
    print("server stopped")


if __name__ == "__main__":
    trio.run(main)
