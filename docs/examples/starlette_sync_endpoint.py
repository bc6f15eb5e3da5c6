"""A Starlette sync endpoint calling async code that belongs to the server's event loop."""

from __future__ import annotations

import socket
import threading
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import sniffio
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asgibridge_any.sync import async_to_sync

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyio.streams.memory import MemoryObjectSendStream
    from starlette.requests import Request

    Requests = MemoryObjectSendStream[tuple[str, MemoryObjectSendStream[int]]]

PRICES = {"apple": 3, "pear": 4}


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    # A price service running on the server's loop. Its memory streams belong to that
    # loop: used from any other loop they fail (or, worse, misbehave).
    requests, incoming = anyio.create_memory_object_stream[
        tuple[str, "MemoryObjectSendStream[int]"]
    ]()

    async def price_service() -> None:
        async for item, reply in incoming:
            await reply.send(PRICES[item])

    with requests, incoming:
        async with anyio.create_task_group() as tg:
            tg.start_soon(price_service)
            yield {"requests": requests}
            tg.cancel_scope.cancel()


async def price(requests: Requests, item: str) -> int:
    reply, answer = anyio.create_memory_object_stream[int](1)
    with reply, answer:
        await requests.send((item, reply))
        return await answer.receive()


def checkout(request: Request) -> PlainTextResponse:
    # A sync endpoint: Starlette runs it in a worker thread (anyio.to_thread.run_sync).
    # async_to_sync sends each price() back to the server's loop, as a task there.
    items = request.query_params["items"].split(",")
    total = sum(async_to_sync(price)(request.state.requests, item) for item in items)
    in_worker = threading.current_thread() is not threading.main_thread()
    return PlainTextResponse(f"total {total} (in a worker thread: {in_worker})")


app = Starlette(routes=[Route("/checkout", checkout)], lifespan=lifespan)


async def serve_and_ask(server: str) -> None:
    # Serve the app on a free port of 127.0.0.1, make one request, stop the server.
    sock = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/checkout?items=apple,pear,pear"
    async with anyio.create_task_group() as tg:
        if server == "uvicorn":
            import uvicorn

            config = uvicorn.Config(app, log_level="warning", lifespan="on")
            uvicorn_server = uvicorn.Server(config)
            tg.start_soon(uvicorn_server.serve, [sock])
        else:
            from hypercorn.config import Config
            from hypercorn.trio import serve

            hypercorn_config = Config()
            hypercorn_config.bind = [f"fd://{sock.detach()}"]
            hypercorn_config.loglevel = "WARNING"
            stop = anyio.Event()
            tg.start_soon(
                lambda: serve(app, hypercorn_config, shutdown_trigger=stop.wait)
            )
        async with httpx.AsyncClient() as client:
            response = await client.get(url)
        print(f"{server} ({sniffio.current_async_library()}):", response.text)
        if server == "uvicorn":
            uvicorn_server.should_exit = True
        else:
            stop.set()


anyio.run(serve_and_ask, "uvicorn", backend="asyncio")
anyio.run(serve_and_ask, "hypercorn", backend="trio")
