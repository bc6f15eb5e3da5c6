"""Tests for asgibridge_any.testing.ApplicationCommunicator, under asyncio and trio."""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from asgibridge_any.testing import ApplicationCancelled, ApplicationCommunicator

Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


async def echo_app(scope: Any, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message == "stop":
            return
        await send({"echo": message, "scope": scope.get("type")})


class Tracked:
    """An application that records whether it started and how it ended."""

    def __init__(self) -> None:
        self.started = False
        self.finished = False

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        self.started = True
        try:
            await anyio.sleep_forever()
        finally:
            self.finished = True


class Failure(Exception):
    pass


async def failing_app(scope: Any, receive: Receive, send: Send) -> None:
    await receive()
    raise Failure("application failed")


async def test_plain_form_exchanges_messages() -> None:
    comm = ApplicationCommunicator(echo_app, {"type": "test"})
    await comm.send_input("hi")
    assert await comm.receive_output() == {"echo": "hi", "scope": "test"}
    await comm.send_input("stop")
    await comm.wait()


async def test_structured_form_exchanges_messages_and_stops_the_app_at_exit() -> None:
    app = Tracked()
    async with ApplicationCommunicator(echo_app, {"type": "test"}) as comm:
        await comm.send_input("hi")
        assert await comm.receive_output() == {"echo": "hi", "scope": "test"}
    async with ApplicationCommunicator(app, {}) as comm:
        assert await comm.receive_nothing(timeout=0)
        await anyio.wait_all_tasks_blocked()
        assert app.started
    assert app.finished


async def test_structured_form_lets_the_body_exception_through_unwrapped() -> None:
    with pytest.raises(KeyError, match="from the test"):  # noqa: PT012 - the block is the subject
        async with ApplicationCommunicator(Tracked(), {}) as comm:
            await comm.receive_nothing(timeout=0)
            raise KeyError("from the test")


async def test_structured_form_cancelled_from_outside_stops_the_app() -> None:
    app = Tracked()
    with anyio.fail_after(10), anyio.move_on_after(0.01) as scope:
        async with ApplicationCommunicator(app, {}) as comm:
            assert await comm.receive_nothing(timeout=0)
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert app.finished


async def test_application_starts_lazily() -> None:
    app = Tracked()
    comm = ApplicationCommunicator(app, {})
    await anyio.wait_all_tasks_blocked()
    assert not app.started
    assert await comm.receive_nothing(timeout=0)
    await anyio.wait_all_tasks_blocked()
    assert app.started
    comm.stop()
    await comm.wait()


def test_communicator_can_be_created_outside_any_event_loop(anyio_backend: str) -> None:
    comm = ApplicationCommunicator(echo_app, {"type": "test"})

    async def use() -> Any:
        await comm.send_input("late")
        return await comm.receive_output()

    assert anyio.run(use, backend=anyio_backend) == {"echo": "late", "scope": "test"}


@pytest.mark.parametrize("structured", [False, True])
async def test_application_runs_in_an_empty_context(structured: bool) -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        seen.append(request_id.get("unset"))
        request_id.set("set by the app")
        await send("done")

    token = request_id.set("set by the test")
    try:
        if structured:
            async with ApplicationCommunicator(app, {}) as comm:
                assert await comm.receive_output() == "done"
        else:
            comm = ApplicationCommunicator(app, {})
            assert await comm.receive_output() == "done"
        assert request_id.get() == "set by the test"
    finally:
        request_id.reset(token)
    assert seen == ["unset"]


async def test_exception_surfaces_from_receive_output() -> None:
    comm = ApplicationCommunicator(failing_app, {})
    await comm.send_input("go")
    with anyio.fail_after(10), pytest.raises(Failure):
        await comm.receive_output(timeout=30)


async def test_exception_surfaces_from_send_input_and_receive_nothing() -> None:
    comm = ApplicationCommunicator(failing_app, {})
    await comm.send_input("go")
    with pytest.raises(Failure):
        await comm.wait()
    with pytest.raises(Failure):
        await comm.send_input("again")
    with pytest.raises(Failure):
        await comm.receive_nothing()


async def test_exception_surfaces_from_stop() -> None:
    comm = ApplicationCommunicator(failing_app, {})
    await comm.send_input("go")
    with pytest.raises(Failure):
        await comm.wait()
    with pytest.raises(Failure):
        comm.stop()
    comm.stop(exceptions=False)


async def test_exception_not_yet_seen_surfaces_at_the_end_of_the_block() -> None:
    with pytest.raises(Failure):  # noqa: PT012 - the block's exit is the subject
        async with ApplicationCommunicator(failing_app, {}) as comm:
            await comm.send_input("go")
            await anyio.wait_all_tasks_blocked()


async def test_exception_already_raised_is_not_raised_again_at_the_end_of_the_block() -> (
    None
):
    async with ApplicationCommunicator(failing_app, {}) as comm:
        await comm.send_input("go")
        with pytest.raises(Failure):
            await comm.wait()


async def test_receive_output_timeout_raises_and_cancels_the_app() -> None:
    app = Tracked()
    comm = ApplicationCommunicator(app, {})
    with pytest.raises(TimeoutError):
        await comm.receive_output(timeout=0.01)
    assert app.finished


async def test_receive_output_after_the_app_returned_fails_without_waiting() -> None:
    comm = ApplicationCommunicator(echo_app, {})
    await comm.send_input("one")
    await comm.send_input("stop")
    assert await comm.receive_output() == {"echo": "one", "scope": None}
    with (
        anyio.fail_after(10),
        pytest.raises(TimeoutError, match="finished without sending"),
    ):
        await comm.receive_output(timeout=30)


async def test_receive_nothing_reports_whether_a_message_is_waiting() -> None:
    comm = ApplicationCommunicator(echo_app, {})
    assert await comm.receive_nothing() is True
    await comm.send_input("x")
    assert await comm.receive_nothing() is False
    assert await comm.receive_nothing() is False  # the message stays
    assert await comm.receive_output() == {"echo": "x", "scope": None}
    assert await comm.receive_nothing(0.01) is True
    comm.stop()


async def test_wait_returns_when_the_app_returns() -> None:
    comm = ApplicationCommunicator(echo_app, {})
    await comm.send_input("stop")
    await comm.wait()


async def test_wait_timeout_raises_and_cancels_the_app() -> None:
    app = Tracked()
    comm = ApplicationCommunicator(app, {})
    with pytest.raises(TimeoutError):
        await comm.wait(timeout=0.01)
    assert app.finished


async def test_stop_returns_none_and_wait_then_waits_for_the_end() -> None:
    app = Tracked()
    comm = ApplicationCommunicator(app, {})
    await comm.receive_nothing(timeout=0)
    await anyio.wait_all_tasks_blocked()
    assert comm.stop() is None  # type: ignore[func-returns-value]
    await comm.wait()  # a cancelled application counts as finished
    assert app.finished


async def test_plain_stop_requests_cancellation_without_waiting() -> None:
    app = Tracked()
    comm = ApplicationCommunicator(app, {})
    await comm.receive_nothing(timeout=0)
    await anyio.wait_all_tasks_blocked()
    comm.stop()
    assert not app.finished
    await anyio.wait_all_tasks_blocked()
    assert app.finished


async def test_stop_before_start_does_nothing() -> None:
    app = Tracked()
    comm = ApplicationCommunicator(app, {})
    assert comm.stop() is None  # type: ignore[func-returns-value]
    await anyio.wait_all_tasks_blocked()
    assert not app.started


async def _cancel_by_receive_output_timeout(comm: ApplicationCommunicator) -> None:
    with pytest.raises(TimeoutError):
        await comm.receive_output(timeout=0.01)


async def _cancel_by_wait_timeout(comm: ApplicationCommunicator) -> None:
    with pytest.raises(TimeoutError):
        await comm.wait(timeout=0.01)


async def _cancel_by_stop(comm: ApplicationCommunicator) -> None:
    await comm.receive_nothing(timeout=0)
    await anyio.wait_all_tasks_blocked()  # the application is running
    comm.stop()
    await comm.wait()


_CANCELLATIONS = {
    "receive_output timeout": _cancel_by_receive_output_timeout,
    "wait timeout": _cancel_by_wait_timeout,
    "stop": _cancel_by_stop,
}


async def _send_input(comm: ApplicationCommunicator) -> None:
    await comm.send_input({"type": "late"})


async def _receive_output(comm: ApplicationCommunicator) -> None:
    await comm.receive_output(timeout=30)


async def _receive_nothing(comm: ApplicationCommunicator) -> None:
    await comm.receive_nothing(timeout=30)


async def _stop(comm: ApplicationCommunicator) -> None:
    comm.stop()


_LATER_CALLS = {
    "send_input": _send_input,
    "receive_output": _receive_output,
    "receive_nothing": _receive_nothing,
    "stop": _stop,
}


@pytest.mark.parametrize("cancel", _CANCELLATIONS.values(), ids=_CANCELLATIONS.keys())
@pytest.mark.parametrize("call", _LATER_CALLS.values(), ids=_LATER_CALLS.keys())
async def test_calls_after_the_communicator_cancelled_the_app_raise_application_cancelled(
    cancel: Callable[[ApplicationCommunicator], Awaitable[None]],
    call: Callable[[ApplicationCommunicator], Awaitable[None]],
) -> None:
    """Test that, as asgiref's raise the cancelled task's CancelledError, later calls raise."""
    app = Tracked()
    comm = ApplicationCommunicator(app, {})
    await cancel(comm)
    assert app.finished
    with anyio.fail_after(10), pytest.raises(ApplicationCancelled, match="cancelled"):
        await call(comm)


@pytest.mark.parametrize("cancel", _CANCELLATIONS.values(), ids=_CANCELLATIONS.keys())
async def test_wait_and_quiet_stop_after_the_app_was_cancelled_return(
    cancel: Callable[[ApplicationCommunicator], Awaitable[None]],
) -> None:
    comm = ApplicationCommunicator(Tracked(), {})
    await cancel(comm)
    await comm.wait()
    comm.stop(exceptions=False)


async def test_application_cancelled_is_a_base_exception_like_cancellations() -> None:
    comm = ApplicationCommunicator(Tracked(), {})
    await _cancel_by_stop(comm)
    with pytest.raises(ApplicationCancelled) as caught:
        await comm.send_input({"type": "late"})
    assert not isinstance(caught.value, Exception)  # so "except Exception" lets it by


async def test_receive_output_waiting_when_stop_is_called_raises_at_once() -> None:
    comm = ApplicationCommunicator(Tracked(), {})
    outcome: list[BaseException] = []

    async def receive() -> None:
        try:
            await comm.receive_output(timeout=30)
        except ApplicationCancelled as exc:
            outcome.append(exc)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(receive)
            await anyio.wait_all_tasks_blocked()
            comm.stop()
    assert len(outcome) == 1


async def test_app_that_absorbs_the_cancellation_counts_as_returned() -> None:
    async def stubborn(scope: Any, receive: Receive, send: Send) -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            return  # absorbed: the application ends normally

    comm = ApplicationCommunicator(stubborn, {})
    with pytest.raises(TimeoutError):
        await comm.receive_output(timeout=0.01)
    assert not comm.future.cancelled()
    comm.stop()  # nothing to raise: the application returned
    with pytest.raises(TimeoutError, match="finished without sending"):
        await comm.receive_output()


async def test_structured_form_lets_application_cancelled_through() -> None:
    with pytest.raises(ApplicationCancelled):  # noqa: PT012 - the block is the subject
        async with ApplicationCommunicator(Tracked(), {}) as comm:
            with pytest.raises(TimeoutError):
                await comm.receive_output(timeout=0.01)
            await comm.send_input({"type": "late"})


async def test_future_starts_the_app_and_awaiting_it_gives_the_outcome() -> None:
    comm = ApplicationCommunicator(echo_app, {})
    future = comm.future
    assert not future.done()
    await comm.send_input("stop")
    await future
    assert future.done()
    assert not future.cancelled()
    failing = ApplicationCommunicator(failing_app, {})
    await failing.send_input("go")
    with pytest.raises(Failure):
        await failing.future
    assert isinstance(failing.future.exception(), Failure)


async def test_future_of_a_cancelled_app_is_cancelled_and_returns_none() -> None:
    """Test the documented difference: asgiref's task would raise CancelledError here."""
    comm = ApplicationCommunicator(Tracked(), {})
    await _cancel_by_receive_output_timeout(comm)
    assert comm.future.cancelled()
    assert comm.future.result() is None  # type: ignore[func-returns-value]
    await comm.future


async def test_double_callable_apps_are_accepted() -> None:
    class Legacy:
        def __init__(self, scope: Any) -> None:
            self.scope = scope

        async def __call__(self, receive: Receive, send: Send) -> None:
            await send(self.scope["type"])

    comm = ApplicationCommunicator(Legacy, {"type": "legacy"})
    assert await comm.receive_output() == "legacy"


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(TypeError, match="needs an ASGI application"):
        ApplicationCommunicator(None, {})
    with pytest.raises(TypeError, match="must be a dict"):
        ApplicationCommunicator(echo_app, [("type", "http")])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"scope\['type'\]"):
        ApplicationCommunicator(echo_app, {"type": b"http"})


async def test_entering_the_block_twice_is_an_error() -> None:
    async with ApplicationCommunicator(echo_app, {}) as comm:
        with pytest.raises(RuntimeError, match="already open"):
            await comm.__aenter__()
