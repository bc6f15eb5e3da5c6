"""
The bridge under hostile use: cancellations that must not be swallowed, calls that
outlive their blocks, exceptions crossing many times, workers that must go away.

Each test pins one promise of the public API on both loops; each failed before the
hand-off protocol was rewritten.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import pytest

from asgibridge_any.sync import (
    SyncToAsync,
    ThreadSensitiveContext,
    async_to_sync,
    sync_to_async,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable


def _on_loops() -> pytest.MarkDecorator:
    """Run an async test on both loops."""
    return pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])


def _backends() -> pytest.MarkDecorator:
    """Run a sync test calling ``async_to_sync(..., backend=backend)`` per loop."""
    return pytest.mark.parametrize("backend", ["asyncio", "trio"])


async def _wait_in_thread(event: threading.Event) -> bool:
    """Wait for a thread-side event without blocking the loop (bounded)."""
    return await anyio.to_thread.run_sync(event.wait, 10)


# --- cancellation is never swallowed -------------------------------------------------


class _Blocked:
    """
    A sync function for ``sync_to_async`` that is blocked when the caller is cancelled.

    ``inner="earlier"``: it made an ``async_to_sync`` call earlier, then blocks in
    plain sync code. ``inner="absorbing"``: it is blocked in ``async_to_sync`` on a
    coroutine that catches its cancellation and returns normally.
    """

    def __init__(self, inner: str) -> None:
        self.inner = inner
        self.started = threading.Event()
        self.release = threading.Event()
        self.inner_outcome: list[str] = []

    async def _noop(self) -> None:
        return None

    async def _absorb(self) -> str:
        self.started.set()
        try:
            await anyio.sleep(20)  # a bound only: the call is cancelled long before
        except anyio.get_cancelled_exc_class():
            return "absorbed"
        return "not cancelled"

    def __call__(self) -> str:
        if self.inner == "earlier":
            async_to_sync(self._noop)()
            self.started.set()
            self.release.wait(10)
        else:
            self.inner_outcome.append(async_to_sync(self._absorb)())
        return "function finished"

    def check_inner(self) -> None:
        if self.inner == "absorbing":
            # The cancellation did reach the coroutine, which absorbed it.
            assert self.inner_outcome == ["absorbed"]


_INNER = pytest.mark.parametrize("inner", ["earlier", "absorbing"])


@_INNER
@_on_loops()
async def test_cancel_scope_around_sync_to_async_is_not_swallowed(inner: str) -> None:
    """Test that an anyio scope cancelled around the call sees its cancellation."""
    func = _Blocked(inner)
    reached_after: list[str] = []

    async def cancel_when_blocked(scope: anyio.CancelScope) -> None:
        try:
            assert await _wait_in_thread(func.started)
            scope.cancel()
        finally:
            func.release.set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            with anyio.CancelScope() as scope:
                tg.start_soon(cancel_when_blocked, scope)
                reached_after.append(await sync_to_async(func)())
    assert scope.cancelled_caught
    assert reached_after == []
    func.check_inner()


@_INNER
@_on_loops()
async def test_native_cancellation_of_sync_to_async_is_not_swallowed(
    inner: str, anyio_backend: str
) -> None:
    """
    Test that ``task.cancel()`` (asyncio) or a trio cancel scope propagates.

    On asyncio the task's ``cancelling()`` count reads 1 while the cancellation
    propagates, as for any other awaited operation.
    """
    func = _Blocked(inner)
    seen: list[object] = []

    async def caller() -> None:
        try:
            seen.append(await sync_to_async(func)())
        except BaseException:
            if anyio_backend == "asyncio":
                task = asyncio.current_task()
                assert task is not None
                seen.append(("cancelling", task.cancelling()))
            raise

    with anyio.fail_after(30):
        if anyio_backend == "asyncio":
            task = asyncio.get_running_loop().create_task(caller())
            try:
                assert await _wait_in_thread(func.started)
                task.cancel()
            finally:
                func.release.set()
            await asyncio.wait({task})
            assert task.cancelled()
            assert seen == [("cancelling", 1)]
        else:
            import trio

            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(caller)
                    try:
                        assert await _wait_in_thread(func.started)
                        scope.cancel()
                    finally:
                        func.release.set()
            assert scope.cancelled_caught
            assert seen == []
    func.check_inner()


@_INNER
@_on_loops()
async def test_timeout_around_sync_to_async_expires(
    inner: str, anyio_backend: str
) -> None:
    """Test that ``asyncio.timeout()`` (asyncio) or ``trio.move_on_at`` expires."""
    func = _Blocked(inner)
    reached_after: list[str] = []
    with anyio.fail_after(30):
        if anyio_backend == "asyncio":

            async def expire_when_blocked(cm: asyncio.Timeout) -> None:
                try:
                    assert await _wait_in_thread(func.started)
                    cm.reschedule(asyncio.get_running_loop().time())
                finally:
                    func.release.set()

            task = asyncio.current_task()
            assert task is not None
            before = task.cancelling()
            expired: list[str] = []
            try:
                async with asyncio.timeout(None) as cm:
                    helper = asyncio.get_running_loop().create_task(
                        expire_when_blocked(cm)
                    )
                    reached_after.append(await sync_to_async(func)())
            except TimeoutError:
                expired.append("TimeoutError")
            await helper
            assert expired == ["TimeoutError"]
            assert cm.expired()
            assert task.cancelling() == before
        else:
            import trio

            async def deadline_when_blocked(scope: trio.CancelScope) -> None:
                try:
                    assert await _wait_in_thread(func.started)
                    scope.deadline = trio.current_time()
                finally:
                    func.release.set()

            async with trio.open_nursery() as nursery:
                with trio.move_on_at(trio.current_time() + 1e6) as scope:
                    nursery.start_soon(deadline_when_blocked, scope)
                    reached_after.append(await sync_to_async(func)())
            assert scope.cancelled_caught
    assert reached_after == []
    func.check_inner()


# --- calls that outlive their blocks -------------------------------------------------


@_on_loops()
async def test_late_thread_sensitive_call_runs_while_sync_function_continues() -> None:
    """
    Test that a task outliving its ``async_to_sync`` call can still make a
    thread-sensitive call while the sync function that started it keeps running.

    The sync function is not waiting for that call, so nothing would deadlock: the
    call runs once a thread may take it.
    """
    go = anyio.Event()
    outcomes: list[object] = []

    async def late() -> None:
        await go.wait()
        try:
            outcomes.append(await sync_to_async(lambda: "late call ran")())
        except RuntimeError as exc:
            outcomes.append(exc)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:

            async def spawn() -> None:
                tg.start_soon(late)

            async def kick() -> None:
                # The late task makes its call while this sync function still runs.
                go.set()
                await anyio.wait_all_tasks_blocked()

            def func() -> str:
                async_to_sync(spawn)()
                async_to_sync(kick)()
                return "function finished"

            assert await sync_to_async(func)() == "function finished"
    assert outcomes == ["late call ran"]


def _threads_exit(threads: set[threading.Thread], bound: float) -> bool:
    # Each join is a real wait on the thread's end; ``bound`` only caps a hang.
    deadline = time.monotonic() + bound
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


@pytest.mark.timeout(120)
@_on_loops()
async def test_tasks_outliving_their_thread_sensitive_contexts_leave_no_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """
    Test that 100 contexts, each outlived by a task that makes a thread-sensitive
    call after the block exits, do not leave 100 threads behind once those tasks end.

    At most one thread may stay: the process-wide sensitive thread.
    """
    bound = _short_idle_timeout(monkeypatch)
    threads: set[threading.Thread] = set()

    def record() -> None:
        threads.add(threading.current_thread())

    async def outlive(left: anyio.Event) -> None:
        await left.wait()
        await sync_to_async(record)()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for _ in range(100):
                left = anyio.Event()
                async with ThreadSensitiveContext():
                    tg.start_soon(outlive, left)
                left.set()
    gc.collect()

    def still_running() -> int:
        _threads_exit(threads, bound)
        return sum(thread.is_alive() for thread in threads)

    assert await anyio.to_thread.run_sync(still_running) <= 1


# --- idle workers retire -------------------------------------------------------------


def _short_idle_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    """
    Shorten the idle timeout of the bridge's threads; return how long to wait for them.

    The one private detail of this file: ``asgibridge_any._threads.IDLE_TIMEOUT``,
    the seconds an idle worker is kept. The bound returned covers its original value
    (in case the code under test read it earlier) plus a generous margin.
    """
    from asgibridge_any import _threads

    original = float(getattr(_threads, "IDLE_TIMEOUT", 10.0))
    if hasattr(_threads, "IDLE_TIMEOUT"):
        monkeypatch.setattr(_threads, "IDLE_TIMEOUT", 0.5)
    return original + 10.0


@pytest.mark.timeout(120)
@_on_loops()
async def test_idle_workers_retire_without_new_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """
    Test that the worker threads of a burst of concurrent ``thread_sensitive=False``
    calls exit after the idle timeout, although no new work arrives.
    """
    bound = _short_idle_timeout(monkeypatch)
    burst = 6
    barrier = threading.Barrier(burst)
    threads: set[threading.Thread] = set()

    def meet() -> None:
        # All calls in their threads at once: the burst really needs 6 workers.
        barrier.wait(10)
        threads.add(threading.current_thread())

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(burst):
                tg.start_soon(sync_to_async(meet, thread_sensitive=False))
    assert len(threads) == burst
    assert await anyio.to_thread.run_sync(_threads_exit, threads, bound)


# --- exceptions crossing the bridge --------------------------------------------------


def _traceback_length(exc: BaseException) -> int:
    length, tb = 0, exc.__traceback__
    while tb is not None:
        length, tb = length + 1, tb.tb_next
    return length


@pytest.mark.parametrize("sensitive", [True, False], ids=["sensitive", "worker"])
@_on_loops()
async def test_sync_to_async_leaves_callers_exception_traceback_alone(
    sensitive: bool,
) -> None:
    """
    Test that 100 calls made inside one ``except`` block leave the handled
    exception's traceback as it was, while each call still sees it in
    ``sys.exc_info()``.
    """

    def current() -> BaseException | None:
        return sys.exception()

    try:
        raise ValueError("handled by the caller")
    except ValueError as exc:
        error, before = exc, _traceback_length(exc)
        seen = [
            await sync_to_async(current, thread_sensitive=sensitive)()
            for _ in range(100)
        ]
    assert all(exc is error for exc in seen)
    assert _traceback_length(error) == before


@_backends()
def test_async_to_sync_leaves_callers_exception_traceback_alone(backend: str) -> None:
    """The same from a sync thread: 100 ``async_to_sync`` calls in one ``except``."""

    async def current() -> BaseException | None:
        return sys.exception()

    try:
        raise ValueError("handled by the caller")
    except ValueError as exc:
        error, before = exc, _traceback_length(exc)
        seen = [async_to_sync(current, backend=backend)() for _ in range(100)]
    assert all(exc is error for exc in seen)
    assert _traceback_length(error) == before


@_on_loops()
async def test_thread_handler_receives_callers_exc_info() -> None:
    """
    Test that an overridden ``thread_handler`` gets the caller's ``sys.exc_info()``
    as its ``exc_info`` argument, as asgiref passes it.
    """
    received: list[tuple[Any, Any, Any]] = []

    class Recording(SyncToAsync[[], str]):
        def thread_handler(
            self,
            loop: Any,
            exc_info: tuple[Any, Any, Any],
            task_context: Any,
            func: Callable[..., str],
            *args: Any,
            **kwargs: Any,
        ) -> str:
            received.append(exc_info)
            return super().thread_handler(
                loop, exc_info, task_context, func, *args, **kwargs
            )

    try:
        raise KeyError("handled by the caller")
    except KeyError as exc:
        error = exc
        assert await Recording(lambda: "called")() == "called"
    assert len(received) == 1
    assert received[0][0] is KeyError
    assert received[0][1] is error


# --- async generators ----------------------------------------------------------------


@_backends()
def test_async_generator_left_open_is_closed_before_async_to_sync_returns(
    backend: str,
) -> None:
    """
    Test that an async generator the coroutine started and left open (still
    referenced) has run its ``finally`` by the time ``async_to_sync`` returns.
    """
    events: list[str] = []
    kept: list[AsyncGenerator[int, None]] = []

    async def numbers() -> AsyncGenerator[int, None]:
        try:
            yield 1
            yield 2
        finally:
            events.append("generator closed")

    async def take_one() -> int:
        generator = numbers()
        kept.append(generator)
        return await anext(generator)

    async def close_kept() -> None:
        for generator in kept:
            await generator.aclose()

    try:
        assert async_to_sync(take_one, backend=backend)() == 1
        events.append("call returned")
        assert events == ["generator closed", "call returned"]
    finally:
        # Where the call left it open, close it here rather than at some later
        # garbage collection, which would report it in another test.
        async_to_sync(close_kept, backend=backend)()


@_backends()
def test_async_generator_dropped_unfinished_is_closed_before_async_to_sync_returns(
    backend: str,
) -> None:
    """
    Test that an async generator the coroutine dropped half-way (garbage-collected
    during the call, which the loop would finalize later) has run its ``finally`` by
    the time ``async_to_sync`` returns.
    """
    events: list[str] = []

    async def numbers() -> AsyncGenerator[int, None]:
        try:
            yield 1
            yield 2
        finally:
            events.append("generator closed")

    async def take_one_and_drop() -> int:
        generator = numbers()
        value = await anext(generator)
        del generator  # the last reference: finalized now, unfinished
        await anyio.lowlevel.checkpoint()
        return value

    assert async_to_sync(take_one_and_drop, backend=backend)() == 1
    events.append("call returned")
    assert events == ["generator closed", "call returned"]
