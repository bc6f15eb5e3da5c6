"""
sync_to_async(..., abandon_on_cancel=True): a cancelled call gives control back at once.

The function keeps running unobserved in its thread; its outcome and context changes
are dropped; its thread (and, for ``thread_sensitive=False``, its limiter token) stay
taken until it ends. Every function here blocks on a ``threading.Event`` with a
timeout, so that a call that is not abandoned makes the test fail instead of hang.
"""

from __future__ import annotations

import contextvars
import gc
import logging
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import anyio
import anyio.to_thread
import pytest

from asgibridge_any.sync import (
    ThreadSensitiveContext,
    async_to_sync,
    sync_to_async,
)

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="caller")


@dataclass
class Blocker:
    """A function that blocks until released, and tells when it started and ended."""

    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    fail: bool = False

    def __call__(self) -> str:
        self.threads.append(threading.current_thread())
        var.set("changed by the abandoned function")
        self.started.set()
        self.release.wait(10)
        self.finished.set()
        if self.fail:
            # Its outcome is dropped: no "never retrieved" warning either.
            raise LookupError("dropped")
        return "dropped"

    async def wait_finished(self) -> None:
        assert await anyio.to_thread.run_sync(self.finished.wait, 10)


async def _time_out(call: object) -> None:
    # A timeout that expires once the function runs (no dependence on how fast the
    # thread starts): the caller must be back while the function still blocks.
    assert callable(call)
    with anyio.move_on_after(math.inf) as scope:
        async with anyio.create_task_group() as tg:

            async def expire(blocker_started: threading.Event) -> None:
                assert await anyio.to_thread.run_sync(blocker_started.wait, 10)
                scope.deadline = anyio.current_time()

            tg.start_soon(expire, _started_of(call))
            await call()
    assert scope.cancelled_caught


def _started_of(call: object) -> threading.Event:
    func = getattr(call, "func", None)
    assert isinstance(func, Blocker)
    return func.started


@pytest.mark.parametrize("fail", [False, True], ids=["returns", "raises"])
async def test_timed_out_call_returns_while_the_function_still_blocks(
    fail: bool, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = Blocker(fail=fail)
    limiter = anyio.CapacityLimiter(1)
    call = sync_to_async(
        blocker, thread_sensitive=False, limiter=limiter, abandon_on_cancel=True
    )
    try:
        with anyio.fail_after(20):
            await _time_out(call)
            assert not blocker.finished.is_set()
            # The abandoned function still holds its thread's token.
            assert limiter.borrowed_tokens == 1
            assert var.get() == "caller"
    finally:
        blocker.release.set()
    await blocker.wait_finished()
    with anyio.fail_after(20):
        # Acquirable only once the abandoned call gave its token back.
        async with limiter:
            assert limiter.borrowed_tokens == 1
    assert limiter.borrowed_tokens == 0
    # Its context changes never reach the caller, even after it ended.
    assert var.get() == "caller"
    # Its dropped outcome is not reported anywhere ("exception was never retrieved").
    gc.collect()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_cancelled_task_group_is_left_while_the_function_still_blocks() -> None:
    blocker = Blocker()
    try:
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    sync_to_async(
                        blocker, thread_sensitive=False, abandon_on_cancel=True
                    )
                )
                assert await anyio.to_thread.run_sync(blocker.started.wait, 10)
                tg.cancel_scope.cancel()
            assert not blocker.finished.is_set()
    finally:
        blocker.release.set()
    await blocker.wait_finished()


async def test_decorator_form_abandons_too() -> None:
    blocker = Blocker()

    @sync_to_async(abandon_on_cancel=True)
    def sensitive() -> str:
        return blocker()

    @sync_to_async(thread_sensitive=False, abandon_on_cancel=True)
    def loose() -> str:
        return blocker()

    for call in (sensitive, loose):
        blocker.started.clear()
        blocker.finished.clear()
        blocker.release.clear()
        try:
            with anyio.fail_after(20):
                with anyio.move_on_after(math.inf) as scope:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(call)
                        assert await anyio.to_thread.run_sync(blocker.started.wait, 10)
                        scope.deadline = anyio.current_time()
                assert scope.cancelled_caught
                assert not blocker.finished.is_set()
        finally:
            blocker.release.set()
        await blocker.wait_finished()


async def test_uncancelled_call_returns_its_result_and_raises_its_error() -> None:
    @sync_to_async(abandon_on_cancel=True)
    def double(number: int) -> int:
        var.set("set inside")
        return number * 2

    error = LookupError("boom")

    def fail() -> None:
        raise error

    assert await double(21) == 42
    # Context changes of a call that was not abandoned reach the caller, as always.
    assert var.get() == "set inside"
    with pytest.raises(LookupError) as info:
        await sync_to_async(fail, thread_sensitive=False, abandon_on_cancel=True)()
    assert info.value is error


async def test_later_sensitive_call_queues_behind_the_abandoned_one() -> None:
    blocker = Blocker()
    order: list[str] = []

    def later() -> threading.Thread:
        order.append("later call runs")
        return threading.current_thread()

    def blocked() -> str:
        try:
            return blocker()
        finally:
            order.append("abandoned call ends")

    try:
        with anyio.fail_after(20):
            async with ThreadSensitiveContext():
                call = sync_to_async(blocked, abandon_on_cancel=True)
                with anyio.move_on_after(math.inf) as scope:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(call)
                        assert await anyio.to_thread.run_sync(blocker.started.wait, 10)
                        scope.deadline = anyio.current_time()
                assert scope.cancelled_caught
                order.append("caller back")
                async with anyio.create_task_group() as tg:
                    results: list[threading.Thread] = []

                    async def run_later() -> None:
                        results.append(await sync_to_async(later)())

                    tg.start_soon(run_later)
                    # The later call is queued, not run: the thread is still busy.
                    await anyio.wait_all_tasks_blocked()
                    assert order == ["caller back"]
                    blocker.release.set()
    finally:
        blocker.release.set()
    assert order == ["caller back", "abandoned call ends", "later call runs"]
    assert results == blocker.threads


async def test_abandoned_call_blocked_in_async_to_sync_cancels_its_coroutine() -> None:
    """
    Test that the caller is back at once, and the coroutine the function waits for
    is still cancelled: the function then ends with the cancellation, unobserved.
    """
    coroutine_started = threading.Event()
    function_ended = threading.Event()
    caller_back = anyio.Event()
    log: list[str] = []
    cancelled_exc = anyio.get_cancelled_exc_class()

    async def inner() -> None:
        coroutine_started.set()
        try:
            with anyio.fail_after(20):
                await anyio.sleep_forever()
        except cancelled_exc:
            # Unwinds only once the caller is back: it must not wait for this.
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await caller_back.wait()
            log.append("coroutine cancelled")
            raise

    def function() -> None:
        try:
            async_to_sync(inner)()
        except BaseException as exc:
            log.append(f"function got {type(exc).__name__}")
            raise
        finally:
            function_ended.set()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sync_to_async(function, abandon_on_cancel=True))
            assert await anyio.to_thread.run_sync(coroutine_started.wait, 10)
            tg.cancel_scope.cancel()
        log.append("caller back")
        caller_back.set()
        assert await anyio.to_thread.run_sync(function_ended.wait, 10)
    name = cancelled_exc.__name__
    assert log == ["caller back", "coroutine cancelled", f"function got {name}"]


async def test_abandoned_call_on_an_executor_leaves_the_executor_usable() -> None:
    blocker = Blocker()
    with ThreadPoolExecutor(1, thread_name_prefix="abandon") as executor:
        call = sync_to_async(
            blocker, thread_sensitive=False, executor=executor, abandon_on_cancel=True
        )
        try:
            with anyio.fail_after(20):
                await _time_out(call)
                assert not blocker.finished.is_set()
        finally:
            blocker.release.set()
        await blocker.wait_finished()
        run = sync_to_async(
            threading.current_thread, thread_sensitive=False, executor=executor
        )
        assert await run() is blocker.threads[0]
