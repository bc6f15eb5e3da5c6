"""abandon_on_cancel=True under asyncio's own timeouts: wait_for, asyncio.timeout, task.cancel()."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import anyio
import pytest

from asgibridge_any.sync import sync_to_async

if TYPE_CHECKING:
    from collections.abc import Callable

#: Short: the timeout is the behaviour under test, and nothing waits for it to pass.
TIMEOUT = 0.05


def _blocker() -> tuple[
    threading.Event, threading.Event, threading.Event, Callable[[], None]
]:
    started, release, finished = (threading.Event() for _ in range(3))

    def block() -> None:
        started.set()
        release.wait(10)
        finished.set()

    return started, release, finished, block


async def test_wait_for_returns_while_the_function_still_blocks() -> None:
    """The asgiref-migration case: asyncio.wait_for around a blocking call."""
    _, release, finished, block = _blocker()
    limiter = anyio.CapacityLimiter(1)
    call = sync_to_async(
        block, thread_sensitive=False, limiter=limiter, abandon_on_cancel=True
    )
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(call(), TIMEOUT)
        assert not finished.is_set()
    finally:
        release.set()
    assert await asyncio.to_thread(finished.wait, 10)
    async with asyncio.timeout(20), limiter:  # free once the abandoned call ended
        assert limiter.borrowed_tokens == 1
    assert limiter.borrowed_tokens == 0


async def test_asyncio_timeout_returns_while_the_sensitive_function_blocks() -> None:
    _, release, finished, block = _blocker()
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(TIMEOUT):
                await sync_to_async(block, abandon_on_cancel=True)()
        assert not finished.is_set()
    finally:
        release.set()
    assert await asyncio.to_thread(finished.wait, 10)


async def test_task_cancel_returns_while_the_function_still_blocks() -> None:
    started, release, finished, block = _blocker()
    task = asyncio.create_task(
        sync_to_async(block, thread_sensitive=False, abandon_on_cancel=True)()
    )
    try:
        assert await asyncio.to_thread(started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 20)
        assert not finished.is_set()
    finally:
        release.set()
    assert await asyncio.to_thread(finished.wait, 10)


async def test_blocker_in_the_sensitive_thread_is_left_behind_by_a_timeout() -> None:
    """
    Test asgiref's ``test_sync_to_async_with_blocker_thread_sensitive``, with
    ``abandon_on_cancel=True``.

    One task waits, on the thread-sensitive thread, for an event that another task
    sets through a thread-sensitive call too — which queues behind the waiter. With
    ``asyncio.timeout`` around the waiter, the timeout handler sets the event itself.
    asgiref expects this to fail; a cancelled call that waits for its thread would
    deadlock here. Abandoned, the waiter's caller gets TimeoutError at once, the
    handler unblocks the thread, and the setter's call runs after the waiter ended.
    asgiref sleeps one second before setting the event; the setter here waits until
    the waiter runs instead.
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

    async def async_process_waiting_on_event() -> int:
        await sync_to_async(wait_for_event, abandon_on_cancel=True)()
        return 42

    async def async_process_that_triggers_event() -> None:
        await asyncio.to_thread(waiter_started.wait, 10)
        await sync_to_async(set_event)()

    trigger_task = asyncio.ensure_future(async_process_that_triggers_event())
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(TIMEOUT):
                assert await async_process_waiting_on_event() == 42
        # Control came back while the waiter still blocked its thread.
        assert order == []
        event.set()
    finally:
        event.set()
        await asyncio.wait_for(trigger_task, 20)
    assert order == ["waiter ends", "setter runs"]
