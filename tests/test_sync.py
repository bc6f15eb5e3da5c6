"""sync_to_async and the thread-sensitive machinery, on asyncio and trio."""

from __future__ import annotations

import contextvars
import functools
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest

from asgibridge_any.sync import (
    SyncToAsync,
    ThreadSensitiveContext,
    async_to_sync,
    iscoroutinefunction,
    sync_to_async,
)

from ._bridge_helpers import current_loop

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


async def test_sync_to_async_returns_result_from_another_thread() -> None:
    loop_thread = threading.current_thread()

    def add(a: int, b: int = 0) -> tuple[threading.Thread, int]:
        return threading.current_thread(), a + b

    for sensitive in (True, False):
        thread, value = await sync_to_async(add, thread_sensitive=sensitive)(1, b=2)
        assert value == 3
        assert thread is not loop_thread


async def test_exception_reaches_caller_unchanged() -> None:
    error = ValueError("boom")

    def fail() -> None:
        raise error

    for sensitive in (True, False):
        with pytest.raises(ValueError, match="boom") as info:
            await sync_to_async(fail, thread_sensitive=sensitive)()
        assert info.value is error


async def test_caller_exception_is_visible_in_sys_exc_info() -> None:
    def current() -> BaseException | None:
        return sys.exc_info()[1]

    caught: BaseException | None = None
    try:
        raise KeyError("outer")
    except KeyError as exc:
        caught = exc
        seen = [
            await sync_to_async(current)(),
            await sync_to_async(current, thread_sensitive=False)(),
        ]
    assert seen == [caught, caught]
    assert await sync_to_async(current)() is None


async def test_thread_sensitive_calls_share_one_thread_one_at_a_time() -> None:
    lock = threading.Lock()
    active = 0
    peak = 0
    threads: set[threading.Thread] = set()

    def work() -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
            threads.add(threading.current_thread())
        with lock:
            active -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(sync_to_async(work))
    assert len(threads) == 1
    assert peak == 1


async def test_non_sensitive_calls_are_bounded_by_the_limiter() -> None:
    limiter = anyio.CapacityLimiter(2)
    gate = threading.Event()
    arrived = threading.Semaphore(0)
    lock = threading.Lock()
    active = 0
    peak = 0

    def work() -> threading.Thread:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        arrived.release()
        assert gate.wait(10)
        with lock:
            active -= 1
        return threading.current_thread()

    call = sync_to_async(work, thread_sensitive=False, limiter=limiter)
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(call)
            for _ in range(2):
                assert await anyio.to_thread.run_sync(arrived.acquire, True, 10)
            await anyio.wait_all_tasks_blocked()
            assert limiter.borrowed_tokens == 2
            gate.set()
    assert peak == 2
    assert limiter.borrowed_tokens == 0


async def test_non_sensitive_calls_use_anyio_default_limiter() -> None:
    gate, arrived = threading.Event(), threading.Event()
    limiter = anyio.to_thread.current_default_thread_limiter()

    def work() -> None:
        arrived.set()
        gate.wait(10)

    async with anyio.create_task_group() as tg:
        tg.start_soon(sync_to_async(work, thread_sensitive=False))
        assert await anyio.to_thread.run_sync(arrived.wait, 10)
        # One token for the call, one for the to_thread helper that just returned.
        assert limiter.borrowed_tokens >= 1
        gate.set()
    assert limiter.borrowed_tokens == 0


async def test_given_executor_runs_the_call() -> None:
    with ThreadPoolExecutor(1, thread_name_prefix="custom-executor") as executor:
        name = await sync_to_async(
            lambda: threading.current_thread().name,
            thread_sensitive=False,
            executor=executor,
        )()
    assert name.startswith("custom-executor")


async def test_context_variables_flow_both_ways() -> None:
    var.set("caller")

    def work() -> str:
        seen = var.get()
        var.set("callee")
        return seen

    assert await sync_to_async(work)() == "caller"
    assert var.get() == "callee"
    var.set("caller")
    assert await sync_to_async(work, thread_sensitive=False)() == "caller"
    assert var.get() == "callee"


async def test_context_changes_come_back_when_the_function_raises() -> None:
    var.set("caller")

    def fail() -> None:
        var.set("set before raising")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await sync_to_async(fail)()
    assert var.get() == "set before raising"


async def test_given_context_is_the_one_updated() -> None:
    var.set("caller")
    context = contextvars.copy_context()

    def work() -> None:
        var.set("inside")

    await sync_to_async(work, context=context)()
    assert context[var] == "inside"
    assert var.get() == "caller"


async def test_round_trip_returns_to_the_originating_loop() -> None:
    origin = current_loop()
    loop_thread = threading.current_thread()

    async def inner() -> tuple[object, threading.Thread]:
        return current_loop(), threading.current_thread()

    def middle() -> tuple[object, threading.Thread]:
        return async_to_sync(inner)()

    for sensitive in (True, False):
        loop, thread = await sync_to_async(middle, thread_sensitive=sensitive)()
        assert loop is origin
        assert thread is loop_thread


async def test_sensitive_call_below_async_to_sync_lands_on_the_blocked_thread() -> None:
    async def middle() -> threading.Thread:
        return await sync_to_async(threading.current_thread)()

    def outer() -> tuple[threading.Thread, threading.Thread]:
        return threading.current_thread(), async_to_sync(middle)()

    for sensitive in (True, False):
        outer_thread, inner_thread = await sync_to_async(
            outer, thread_sensitive=sensitive
        )()
        assert inner_thread is outer_thread


async def test_cancelled_call_waits_for_the_function_then_propagates() -> None:
    started, release = threading.Event(), threading.Event()
    done: list[bool] = []

    def block() -> None:
        started.set()
        release.wait(10)
        done.append(True)

    for sensitive in (True, False):
        done.clear()
        started.clear()
        release.clear()
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(sync_to_async(block, thread_sensitive=sensitive))
                assert await anyio.to_thread.run_sync(started.wait, 10)
                tg.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    # The task still waits for the thread: nothing finished yet.
                    await anyio.wait_all_tasks_blocked()
                    assert done == []
                release.set()
        assert tg.cancel_scope.cancelled_caught
        assert done == [True]


async def test_cancellation_unwinds_a_coroutine_blocked_in_async_to_sync() -> None:
    started = anyio.Event()
    reached_end: list[bool] = []

    async def inner() -> None:
        started.set()
        await anyio.sleep_forever()

    def middle() -> None:
        try:
            async_to_sync(inner)()
        finally:
            reached_end.append(True)

    with anyio.fail_after(20):
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sync_to_async(middle, thread_sensitive=False))
                await started.wait()
                scope.cancel()
    assert scope.cancelled_caught
    assert reached_end == [True]


async def test_call_needing_its_own_blocked_thread_raises_deadlock_error() -> None:
    token = anyio.lowlevel.current_token()

    def blocked_on_loop() -> None:
        # Waits for the loop without async_to_sync: the loop's thread-sensitive call
        # below could only run on this very thread.
        anyio.from_thread.run(sync_to_async(threading.current_thread), token=token)

    with anyio.fail_after(20), pytest.raises(RuntimeError, match="deadlock"):
        await sync_to_async(blocked_on_loop)()


async def test_thread_sensitive_contexts_get_threads_of_their_own() -> None:
    current = sync_to_async(threading.current_thread)
    default_thread = await current()
    async with ThreadSensitiveContext():
        first = await current()
        assert await current() is first
        async with ThreadSensitiveContext():
            # Nested: the outermost context decides.
            assert await current() is first
    async with ThreadSensitiveContext():
        second = await current()
    assert len({default_thread, first, second}) == 3


async def test_tasks_started_in_a_context_share_its_thread() -> None:
    current = sync_to_async(threading.current_thread)
    threads: list[threading.Thread] = []

    async def record() -> None:
        threads.append(await current())

    async with ThreadSensitiveContext():
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(record)
        assert await current() is threads[0]
    assert len(set(threads)) == 1


async def test_leaving_a_context_does_not_wait_for_its_busy_thread() -> None:
    started, release = threading.Event(), threading.Event()

    def block() -> threading.Thread:
        started.set()
        release.wait(10)
        return threading.current_thread()

    result: list[threading.Thread] = []

    async def call() -> None:
        result.append(await sync_to_async(block)())

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            async with ThreadSensitiveContext():
                tg.start_soon(call)
                assert await anyio.to_thread.run_sync(started.wait, 10)
            # The context has exited although its thread is still busy.
            assert not release.is_set()
            release.set()
    assert result[0].name == "asgibridge_any context"


async def test_context_with_executor_uses_it_and_leaves_it_running() -> None:
    with ThreadPoolExecutor(1, thread_name_prefix="own-lane") as executor:
        async with ThreadSensitiveContext(executor=executor):
            name = await sync_to_async(lambda: threading.current_thread().name)()
        assert name.startswith("own-lane")
        # Not shut down: still usable by its owner.
        assert executor.submit(lambda: 42).result(10) == 42


async def test_task_outliving_an_executor_context_gets_runtime_error() -> None:
    exited = anyio.Event()
    errors: list[BaseException] = []

    async def late() -> None:
        await exited.wait()
        try:
            await sync_to_async(threading.current_thread)()
        except RuntimeError as exc:
            errors.append(exc)

    with ThreadPoolExecutor(1) as executor:
        async with anyio.create_task_group() as tg:
            context = ThreadSensitiveContext(executor=executor)
            async with context:
                tg.start_soon(late)
            exited.set()
        with pytest.raises(RuntimeError, match="cannot be entered again"):
            async with context:
                pass
    assert len(errors) == 1
    assert "has exited" in str(errors[0])


async def test_async_to_sync_in_a_loop_thread_raises() -> None:
    async def coro() -> None:
        pass

    with pytest.raises(RuntimeError, match="await the async function directly"):
        async_to_sync(coro)()


async def test_sync_to_async_from_a_task_group_child_keeps_its_context() -> None:
    results: list[str] = []

    async def child(value: str) -> None:
        var.set(value)
        results.append(await sync_to_async(var.get, thread_sensitive=False)())

    async with anyio.create_task_group() as tg:
        for value in ("a", "b", "c"):
            tg.start_soon(child, value)
    assert sorted(results) == ["a", "b", "c"]


def test_wrapper_looks_like_the_wrapped_coroutine_function() -> None:
    def documented(x: int) -> int:
        """Doc of the wrapped function."""
        return x

    wrapped = sync_to_async(documented)
    assert isinstance(wrapped, SyncToAsync)
    assert iscoroutinefunction(wrapped)
    assert wrapped.__name__ == "documented"
    assert wrapped.__doc__ == "Doc of the wrapped function."
    assert wrapped.__wrapped__ is documented
    assert wrapped.__qualname__ == documented.__qualname__
    assert wrapped.__module__ == documented.__module__
    documented.flag = "set on the function"  # type: ignore[attr-defined]
    assert wrapped.flag == "set on the function"  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="no_such_attribute"):
        wrapped.no_such_attribute  # type: ignore[attr-defined]  # noqa: B018
    twice = sync_to_async(functools.wraps(documented)(lambda x: x))
    assert twice.__name__ == "documented"
    if sys.version_info >= (3, 12):
        import inspect

        assert inspect.iscoroutinefunction(wrapped)


async def test_decorator_forms_and_method_binding() -> None:
    class Thing:
        @sync_to_async
        def plain(self) -> Thing:
            return self

        @sync_to_async(thread_sensitive=False)
        def loose(self) -> Thing:
            return self

    thing = Thing()
    assert await thing.plain() is thing
    assert await thing.loose() is thing
    bound = sync_to_async(thing.plain.__wrapped__.__get__(thing))  # type: ignore[attr-defined]
    assert bound.__self__ is thing  # type: ignore[attr-defined]


def test_sync_to_async_rejects_what_it_cannot_run() -> None:
    async def coroutine_function() -> None:
        pass

    class AsyncCallable:
        async def __call__(self) -> None:
            pass

    bad: list[object] = [
        1,
        coroutine_function,
        functools.partial(coroutine_function),
        AsyncCallable(),
    ]
    for obj in bad:
        with pytest.raises(TypeError, match="can only be applied to sync functions"):
            sync_to_async(obj)  # type: ignore[call-overload]
    with (
        ThreadPoolExecutor(1) as executor,
        pytest.raises(TypeError, match="thread_sensitive=False"),
    ):
        sync_to_async(print, thread_sensitive=True, executor=executor)
    with pytest.raises(TypeError, match="limiter"):
        sync_to_async(print, limiter=anyio.CapacityLimiter(1))


def test_markcoroutinefunction_marks_a_sync_function_returning_a_coroutine() -> None:
    from asgibridge_any.sync import markcoroutinefunction

    async def real() -> int:
        return 1

    def factory() -> object:
        return real()

    assert not iscoroutinefunction(factory)
    assert markcoroutinefunction(factory) is factory
    assert iscoroutinefunction(factory)
    assert async_to_sync(factory)() == 1  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sync functions"):
        sync_to_async(factory)
