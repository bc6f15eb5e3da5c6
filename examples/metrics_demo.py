"""
Serve examples/metrics_app.py on hypercorn's asyncio worker and scrape ``/metrics`` once.

The server listens on a free port of 127.0.0.1; the demo loads the page, fetches the
Prometheus text from ``/metrics``, prints it, and shuts the server down.

Run it with ``python examples/metrics_demo.py`` (or ``make demo``).
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, cast

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config
from metrics_app import application

if TYPE_CHECKING:
    from hypercorn.typing import Framework


async def scrape(url: str) -> None:
    """Load the page, then print what /metrics answers."""
    async with httpx.AsyncClient(base_url=url) as client:
        page = await client.get("/")
        print(f"GET /        -> {page.status_code}")
        metrics = await client.get("/metrics")
        print(
            f"GET /metrics -> {metrics.status_code} {metrics.headers['content-type']}"
        )
        print(metrics.text, end="")


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
    stop = asyncio.Event()
    print(f"hypercorn (asyncio worker) serving examples/metrics_app.py on {url}")
    # hypercorn types its ASGI messages with TypedDicts of its own; ours are the
    # ASGI spec's, which mypy cannot match up, hence the cast.
    server = asyncio.create_task(
        serve(cast("Framework", application), config, shutdown_trigger=stop.wait)
    )
    try:
        await scrape(url)
    finally:
        stop.set()
        await server
    print("server stopped")


if __name__ == "__main__":
    asyncio.run(main())
