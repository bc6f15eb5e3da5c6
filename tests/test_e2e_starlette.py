"""
A Starlette sync endpoint, under real servers, calling async code bound to the app's loop.

Starlette runs sync endpoints in ``anyio.to_thread.run_sync`` threads. The endpoint
here calls :func:`async_to_sync` on a service its lifespan created on the server's
event loop; it works only if the coroutine runs on that very loop. Servers are started
on 127.0.0.1 by the helper of tests/test_e2e_servers.py: hypercorn's asyncio and trio
workers and uvicorn, each on the test's own loop.
"""

from __future__ import annotations

import threading
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from asgibridge_any.sync import async_to_sync, sync_to_async

from ._bridge_helpers import current_loop
from ._loop_bound import LoopBoundDoubler
from .test_e2e_servers import SERVERS, serving

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request


def make_app() -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        service = LoopBoundDoubler()  # made on the server's loop
        async with anyio.create_task_group() as tg:
            await tg.start(service.serve)
            yield {"service": service, "loop": current_loop()}
            tg.cancel_scope.cancel()

    def double(request: Request) -> JSONResponse:
        # A sync endpoint: Starlette runs it in a worker thread.
        service: LoopBoundDoubler = request.state.service
        endpoint_thread = threading.current_thread()

        async def ask(number: int) -> dict[str, Any]:
            answer = await service.ask(number)
            sensitive = await sync_to_async(threading.current_thread)()
            return {
                "value": answer,
                "on_the_app_loop": current_loop() is request.state.loop,
                "sensitive_on_endpoint_thread": sensitive is endpoint_thread,
            }

        return JSONResponse(async_to_sync(ask)(int(request.query_params["n"])))

    return Starlette(routes=[Route("/double", double)], lifespan=lifespan)


@pytest.fixture(params=SERVERS)
def server_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def anyio_backend(server_kind: str) -> str:
    return "trio" if server_kind == "hypercorn-trio" else "asyncio"


async def test_sync_endpoint_uses_a_service_bound_to_the_servers_loop(
    server_kind: str,
) -> None:
    with anyio.fail_after(30):
        async with (
            serving(server_kind, make_app()) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as client,
        ):
            responses = [await client.get("/double", params={"n": n}) for n in (1, 21)]
    assert [response.status_code for response in responses] == [200, 200]
    assert [response.json() for response in responses] == [
        {"value": value, "on_the_app_loop": True, "sensitive_on_endpoint_thread": True}
        for value in (2, 42)
    ]
