"""abandon_on_cancel=True under trio's own timeouts and cancel scopes."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import anyio
import pytest
import trio

from asgibridge_any._threads import thread_is_idle
from asgibridge_any.sync import sync_to_async

if TYPE_CHECKING:
    from collections.abc import Callable

#: Short: the timeout is the behaviour under test, and nothing waits for it to pass.
TIMEOUT = 0.05


async def test_move_on_after_returns_while_the_function_still_blocks() -> None:
    release, finished = threading.Event(), threading.Event()

    def block() -> None:
        release.wait(10)
        finished.set()

    try:
        with trio.move_on_after(TIMEOUT) as scope:
            await sync_to_async(block, thread_sensitive=False, abandon_on_cancel=True)()
        assert scope.cancelled_caught
        assert not finished.is_set()
    finally:
        release.set()
    assert await trio.to_thread.run_sync(finished.wait, 10)


async def test_blocker_in_the_sensitive_thread_is_left_behind_by_a_timeout() -> None:
    """
    Test asgiref's ``test_sync_to_async_with_blocker_thread_sensitive``, with
    ``abandon_on_cancel=True``, under trio: ``trio.fail_after`` around the waiter,
    whose handler of ``TooSlowError`` sets the event the waiter blocks on.

    See the asyncio version in tests/asyncio/ for the story.
    """
    event = threading.Event()
    waiter_started = threading.Event()
    order: list[str] = []

    def wait_for_event() -> None:
        waiter_started.set()
        event.wait(10)
        order.append("waiter ends")

    def set_event() -> None:
        order.append("setter runs")
        event.set()

    async def process_waiting_on_event() -> int:
        await sync_to_async(wait_for_event, abandon_on_cancel=True)()
        return 42

    async def process_that_triggers_event() -> None:
        await trio.to_thread.run_sync(waiter_started.wait, 10)
        await sync_to_async(set_event)()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(process_that_triggers_event)
            try:
                with pytest.raises(trio.TooSlowError):
                    with trio.fail_after(TIMEOUT):
                        assert await process_waiting_on_event() == 42
                # Control came back while the waiter still blocked its thread.
                assert order == []
                event.set()
            finally:
                event.set()
    assert order == ["waiter ends", "setter runs"]


def _wait_until(condition: Callable[[], bool]) -> None:
    # Blocks the trio thread on purpose: trio must not run anything meanwhile.
    deadline = time.monotonic() + 10
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, "the abandoned call did not end"
        pause.wait(0.001)


async def _abandon_a_call_that_ends_meanwhile() -> None:
    limiter = anyio.CapacityLimiter(1)
    started, release = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []

    def block() -> None:
        threads.append(threading.current_thread())
        started.set()
        release.wait(10)

    call = sync_to_async(
        block, thread_sensitive=False, limiter=limiter, abandon_on_cancel=True
    )
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            assert await trio.to_thread.run_sync(started.wait, 10)
            nursery.cancel_scope.cancel()  # abandoned now; the task runs later
            release.set()
            _wait_until(lambda: thread_is_idle(threads[0]))
        async with limiter:  # only once the abandoned call gave its token back
            pass
    assert limiter.borrowed_tokens == 0


async def test_limiter_token_comes_back_when_the_call_ends_before_the_task_resumes() -> (
    None
):
    """
    Test that an abandoned call gives its limiter token back when it ends between
    trio's delivery of the cancellation (which decides to abandon it) and the
    cancelled task's next step: the loop may then hear of its end first.

    Which of the two trio runs first varies, so the test tries a few times.
    """
    for _ in range(10):
        await _abandon_a_call_that_ends_meanwhile()
