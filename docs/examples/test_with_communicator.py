"""Testing an ASGI application with ApplicationCommunicator, under asyncio and trio."""

from __future__ import annotations

from typing import Any

import pytest

from asgibridge_any.testing import ApplicationCommunicator


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    message = await receive()
    if message["body"] == b"boom":
        raise ValueError("bad body")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": message["body"][::-1]})


SCOPE = {"type": "http", "method": "POST", "path": "/"}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    # With anyio's pytest plugin (anyio_mode = "auto"), every async test runs on both.
    return str(request.param)


async def test_app_reverses_the_body() -> None:
    async with ApplicationCommunicator(app, SCOPE) as comm:
        await comm.send_input({"type": "http.request", "body": b"abc"})
        start = await comm.receive_output()
        assert start["status"] == 200
        body = await comm.receive_output()
        assert body["body"] == b"cba"
        assert await comm.receive_nothing()


async def test_app_errors_reach_the_test() -> None:
    comm = ApplicationCommunicator(app, SCOPE)  # the plain form, as in asgiref
    await comm.send_input({"type": "http.request", "body": b"boom"})
    with pytest.raises(ValueError, match="bad body"):
        await comm.receive_output()
