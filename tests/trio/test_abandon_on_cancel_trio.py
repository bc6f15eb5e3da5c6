"""abandon_on_cancel=True under trio's own timeouts and cancel scopes."""

from __future__ import annotations

import threading

import pytest
import trio

from asgibridge_any.sync import sync_to_async

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
