"""
async_to_sync in threads that anyio's ``to_thread.run_sync`` started, on both loops.

Such a thread runs the coroutine as a task on the loop that started it, so objects
bound to that loop work; the thread serves thread-sensitive calls meanwhile, and
cancelling the outer ``to_thread`` call cancels the coroutine. trio's own
``trio.to_thread.run_sync`` is covered in tests/trio/.
"""

from __future__ import annotations

import math
import threading
import time

import anyio
import anyio.to_thread
import pytest

from asgibridge_any._serving import WATCH_INTERVAL
from asgibridge_any.sync import async_to_sync, sync_to_async

from ._bridge_helpers import current_loop
from ._loop_bound import LoopBoundDoubler


async def test_coroutine_uses_an_object_bound_to_the_worker_threads_loop() -> None:
    service = LoopBoundDoubler()
    app_loop = current_loop()

    async def ask() -> tuple[object, int]:
        return current_loop(), await service.ask(21)

    def endpoint() -> tuple[object, int]:
        return async_to_sync(ask)()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            await tg.start(service.serve)
            loop, answer = await anyio.to_thread.run_sync(endpoint)
            tg.cancel_scope.cancel()
    assert loop is app_loop
    assert answer == 42


async def test_thread_sensitive_call_inside_lands_on_the_worker_thread() -> None:
    app_loop = current_loop()

    async def inner() -> tuple[object, threading.Thread, threading.Thread]:
        sensitive = await sync_to_async(threading.current_thread)()
        loose = await sync_to_async(threading.current_thread, thread_sensitive=False)()
        return current_loop(), sensitive, loose

    def worker() -> tuple[threading.Thread, object, threading.Thread, threading.Thread]:
        return threading.current_thread(), *async_to_sync(inner)()

    with anyio.fail_after(20):
        worker_thread, loop, sensitive, loose = await anyio.to_thread.run_sync(worker)
    assert loop is app_loop
    assert worker_thread is not threading.current_thread()
    assert sensitive is worker_thread
    assert loose is not worker_thread


async def test_nested_bridges_keep_to_the_worker_thread_and_the_loop() -> None:
    """Test that worker -> coroutine -> sensitive sync -> coroutine stays on both."""
    app_loop = current_loop()

    async def innermost() -> tuple[object, threading.Thread]:
        return current_loop(), await sync_to_async(threading.current_thread)()

    def middle() -> tuple[object, threading.Thread]:
        return async_to_sync(innermost)()

    async def outer() -> tuple[object, threading.Thread]:
        return await sync_to_async(middle)()

    def worker() -> tuple[threading.Thread, object, threading.Thread]:
        return threading.current_thread(), *async_to_sync(outer)()

    with anyio.fail_after(20):
        worker_thread, loop, thread = await anyio.to_thread.run_sync(worker)
    assert loop is app_loop
    assert thread is worker_thread


async def test_force_new_loop_runs_the_coroutine_on_a_loop_of_its_own() -> None:
    app_loop = current_loop()
    app_thread = threading.current_thread()

    async def where() -> tuple[object, threading.Thread]:
        return current_loop(), threading.current_thread()

    def worker() -> tuple[object, threading.Thread]:
        return async_to_sync(where, force_new_loop=True)()

    with anyio.fail_after(20):
        loop, thread = await anyio.to_thread.run_sync(worker)
    assert loop is not app_loop
    assert thread is not app_thread


async def _cancel_reaches_the_coroutine(
    cancel_by_deadline: bool, busy: bool
) -> list[str]:
    # A worker thread waits in async_to_sync for a coroutine on the app's loop that
    # sleeps (idle) or keeps sending thread-sensitive work back to the thread (busy);
    # the outer to_thread call is then cancelled.
    started = threading.Event()
    log: list[str] = []
    cancelled_exc = anyio.get_cancelled_exc_class()

    def step() -> None:
        # A slow thread-sensitive call (a database query, say): the thread is never
        # idle for a whole watch interval while the coroutine keeps calling.
        started.set()
        time.sleep(WATCH_INTERVAL)

    async def inner() -> None:
        try:
            if busy:
                # Bounded, so that a cancellation that never arrives fails the test.
                for _ in range(100):
                    await sync_to_async(step)()
            else:
                started.set()
                with anyio.fail_after(20):
                    await anyio.sleep_forever()
        except cancelled_exc:
            log.append("inner cancelled")
            raise

    def worker() -> None:
        try:
            async_to_sync(inner)()
        except BaseException as exc:
            log.append(f"worker got {type(exc).__name__}")
            raise
        log.append("worker returned")

    scope = anyio.CancelScope(deadline=math.inf)

    async def call_worker() -> None:
        with scope:
            await anyio.to_thread.run_sync(worker)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(call_worker)
            assert await anyio.to_thread.run_sync(started.wait, 10)
            if cancel_by_deadline:
                scope.deadline = anyio.current_time()
            else:
                scope.cancel()
    # The cancel scope around to_thread caught it, as it would any cancellation.
    assert scope.cancelled_caught
    log.append("caller back")
    return log


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
@pytest.mark.parametrize("cancel_by_deadline", [False, True], ids=["cancel", "timeout"])
async def test_cancelling_the_outer_call_cancels_the_coroutine(
    cancel_by_deadline: bool, busy: bool
) -> None:
    """
    Test that the cancellation reaches the coroutine, the worker thread gets it
    raised from async_to_sync, and the scope around the to_thread call catches it —
    also while the coroutine keeps the thread busy with thread-sensitive calls.
    """
    name = anyio.get_cancelled_exc_class().__name__
    log = await _cancel_reaches_the_coroutine(cancel_by_deadline, busy)
    assert log == ["inner cancelled", f"worker got {name}", "caller back"]
