"""trio-only tests for ApplicationCommunicator: the plain form without a nursery."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from asgibridge_any.testing import ApplicationCancelled, ApplicationCommunicator

Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


def test_plain_form_app_left_running_is_cancelled_when_the_run_ends() -> None:
    ended: list[str] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        try:
            await trio.sleep_forever()
        finally:
            ended.append("cancelled at the end of trio.run")

    async def main() -> None:
        comm = ApplicationCommunicator(app, {})
        assert await comm.receive_nothing(timeout=0)
        await trio.testing.wait_all_tasks_blocked()

    trio.run(main)
    assert ended == ["cancelled at the end of trio.run"]


async def test_plain_form_failure_does_not_crash_the_trio_run() -> None:
    """Test that an exception in the system task is kept for the test, not raised by trio."""

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        raise OSError("kept for the communicator")

    comm = ApplicationCommunicator(app, {})
    with pytest.raises(OSError, match="kept for the communicator"):
        await comm.wait()


async def test_trio_cancellation_of_the_caller_does_not_leak_into_the_app() -> None:
    received: list[Any] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        received.append(await receive())
        await send("after the caller's cancellation")

    comm = ApplicationCommunicator(app, {})
    with trio.move_on_after(0.01):
        await comm.receive_output(timeout=30)
    # The caller's cancel scope ended the wait, not the application.
    await comm.send_input("go")
    assert await comm.receive_output() == "after the caller's cancellation"
    assert received == ["go"]


async def test_calls_after_a_timeout_raise_application_cancelled_under_trio() -> None:
    """Test that trio gets the communicator's own class, and its run is not cancelled."""

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await trio.sleep_forever()

    comm = ApplicationCommunicator(app, {})
    with pytest.raises(TimeoutError):
        await comm.receive_output(timeout=0.01)
    with pytest.raises(ApplicationCancelled) as caught:
        await comm.send_input({"type": "websocket.disconnect"})
    assert not isinstance(caught.value, trio.Cancelled)
    await trio.lowlevel.checkpoint()  # the caller is not inside a cancelled scope
