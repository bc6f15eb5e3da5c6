"""asyncio-only tests for ApplicationCommunicator: cancellation bookkeeping, native tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from asgibridge_any.testing import ApplicationCommunicator

Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


async def forever_app(scope: Any, receive: Receive, send: Send) -> None:
    await asyncio.Event().wait()


@pytest.mark.parametrize("method", ["receive_output", "wait"])
async def test_handled_timeout_leaves_the_caller_not_cancelling(method: str) -> None:
    task = asyncio.current_task()
    assert task is not None
    before = task.cancelling()
    comm = ApplicationCommunicator(forever_app, {})
    with pytest.raises(TimeoutError):
        await getattr(comm, method)(timeout=0.01)
    assert task.cancelling() == before


async def test_plain_form_works_with_asyncio_gather() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send(await receive())

    comms = [ApplicationCommunicator(app, {}) for _ in range(3)]
    await asyncio.gather(*(comm.send_input(n) for n, comm in enumerate(comms)))
    results = await asyncio.gather(*(comm.receive_output() for comm in comms))
    assert results == [0, 1, 2]


async def test_calls_after_a_timeout_raise_asyncio_cancelled_error_as_asgiref() -> None:
    """Test the asgiref contract that Channels' ``disconnect()`` after a timeout relies on."""
    task = asyncio.current_task()
    assert task is not None
    before = task.cancelling()
    comm = ApplicationCommunicator(forever_app, {})
    with pytest.raises(TimeoutError):
        await comm.receive_output(timeout=0.01)
    with pytest.raises(asyncio.CancelledError):
        await comm.send_input({"type": "websocket.disconnect"})
    # The caller's task is not being cancelled: it goes on as usual.
    assert task.cancelling() == before
    await asyncio.sleep(0)
