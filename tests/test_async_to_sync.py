"""async_to_sync called from plain sync code, with either backend."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest
import sniffio

from asgibridge_any.sync import (
    AsyncSingleThreadContext,
    AsyncToSync,
    async_to_sync,
    sync_to_async,
)

from ._bridge_helpers import current_loop

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

backends = pytest.mark.parametrize("backend", ["asyncio", "trio"])
var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


@backends
def test_runs_the_coroutine_on_the_chosen_backend(backend: str) -> None:
    async def which(x: int) -> tuple[str, int]:
        return sniffio.current_async_library(), x * 2

    assert async_to_sync(which, backend=backend)(21) == (backend, 42)


@backends
def test_exception_reaches_caller_unchanged(backend: str) -> None:
    error = LookupError("boom")

    async def fail() -> None:
        raise error

    with pytest.raises(LookupError) as info:
        async_to_sync(fail, backend=backend)()
    assert info.value is error


@backends
def test_sensitive_work_lands_back_on_the_calling_thread(backend: str) -> None:
    async def middle() -> tuple[threading.Thread, threading.Thread]:
        sensitive = await sync_to_async(threading.current_thread)()
        loose = await sync_to_async(threading.current_thread, thread_sensitive=False)()
        return sensitive, loose

    sensitive, loose = async_to_sync(middle, backend=backend)()
    assert sensitive is threading.current_thread()
    assert loose is not threading.current_thread()


@backends
def test_double_nesting_stays_on_the_calling_thread(backend: str) -> None:
    async def level1() -> threading.Thread:
        return await sync_to_async(level2)()

    def level2() -> threading.Thread:
        return async_to_sync(level3)()

    async def level3() -> threading.Thread:
        return await sync_to_async(threading.current_thread)()

    assert async_to_sync(level1, backend=backend)() is threading.current_thread()


@backends
def test_sequential_calls_reuse_one_loop_thread(backend: str) -> None:
    async def loop_thread() -> threading.Thread:
        return threading.current_thread()

    call = async_to_sync(loop_thread, backend=backend)
    first = call()
    assert first is not threading.current_thread()
    assert call() is first


@backends
def test_context_variables_flow_both_ways(backend: str) -> None:
    async def swap() -> str:
        seen = var.get()
        var.set("callee")
        return seen

    def run() -> tuple[str, str]:
        var.set("caller")
        seen = async_to_sync(swap, backend=backend)()
        return seen, var.get()

    # A fresh context, so the test leaves the main thread's context alone.
    assert contextvars.Context().run(run) == ("caller", "callee")


@backends
def test_caller_exception_is_visible_inside(backend: str) -> None:
    async def current() -> BaseException | None:
        return sys.exc_info()[1]

    call = async_to_sync(current, backend=backend)
    caught: BaseException | None = None
    try:
        raise KeyError("outer")
    except KeyError as exc:
        caught = exc
        seen = call()
    assert seen is caught
    assert call() is None


def test_no_asyncio_task_or_generator_outlives_the_call() -> None:
    cleaned: list[str] = []
    started = threading.Event()

    async def forever() -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            cleaned.append("task")

    async def numbers() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            cleaned.append("generator")

    async def leaky() -> int:
        task = asyncio.get_running_loop().create_task(forever())
        generator = numbers()
        first = await generator.__anext__()
        await asyncio.sleep(0)
        assert not task.done()
        return first

    assert async_to_sync(leaky)() == 1
    assert started.is_set()
    assert sorted(cleaned) == ["generator", "task"]


@backends
def test_single_thread_context_keeps_every_call_on_one_loop(backend: str) -> None:
    async def loop_and_thread() -> tuple[object, threading.Thread]:
        return current_loop(), threading.current_thread()

    call = async_to_sync(loop_and_thread, backend=backend)
    with AsyncSingleThreadContext():
        first = call()
        with AsyncSingleThreadContext():
            assert call() == first
        assert call() == first


@backends
def test_calls_from_many_threads_at_once(backend: str) -> None:
    async def double(x: int) -> int:
        await sync_to_async(lambda: None, thread_sensitive=False)()
        return 2 * x

    call = async_to_sync(double, backend=backend)
    results: dict[int, list[int]] = {}

    def worker(n: int) -> None:
        results[n] = [call(n * 100 + i) for i in range(20)]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {n: [2 * (n * 100 + i) for i in range(20)] for n in range(6)}


def test_unknown_backend_is_a_value_error() -> None:
    async def coro() -> None:
        pass

    with pytest.raises(ValueError, match="'asyncio', 'trio'"):
        async_to_sync(coro, backend="curio")
    with pytest.raises(ValueError, match="unknown backend"):
        async_to_sync(backend="twisted")


def test_warns_for_callables_that_do_not_look_async() -> None:
    def sync_function() -> None:
        pass

    with pytest.warns(UserWarning, match="non-async-marked callable"):
        async_to_sync(sync_function)  # type: ignore[arg-type]


def test_partials_and_async_callable_objects_count_as_async() -> None:
    async def add(a: int, b: int) -> int:
        return a + b

    class Adder:
        async def __call__(self, a: int) -> int:
            return a + 1

    # filterwarnings=error turns any warning into a failure here.
    assert async_to_sync(functools.partial(add, 1))(2) == 3
    assert async_to_sync(Adder())(1) == 2


def test_decorator_forms_and_method_binding() -> None:
    class Thing:
        @async_to_sync
        async def plain(self) -> Thing:
            return self

        @async_to_sync(backend="trio")
        async def on_trio(self) -> str:
            return sniffio.current_async_library()

    thing = Thing()
    assert thing.plain() is thing
    assert thing.on_trio() == "trio"

    async def method_body(self: object) -> object:
        return self

    bound = async_to_sync(method_body.__get__(thing))
    assert isinstance(bound, AsyncToSync)
    assert bound.__self__ is thing  # type: ignore[attr-defined]
    assert bound() is thing


async def test_force_new_loop_leaves_the_originating_loop(anyio_backend: str) -> None:
    origin = current_loop()

    async def where() -> object:
        return current_loop()

    def from_thread() -> tuple[object, object]:
        return (
            async_to_sync(where)(),
            async_to_sync(where, force_new_loop=True)(),
        )

    same, other = await sync_to_async(from_thread)()
    assert same is origin
    assert other is not origin


@backends
def test_loop_threads_beyond_the_idle_limit_stop_cleanly(backend: str) -> None:
    """Test that loop threads returned to a full pool stop and can be joined."""
    from asgibridge_any import _loops

    threads = [_loops.pool.acquire(backend) for _ in range(_loops.MAX_IDLE + 2)]
    for thread in threads:
        _loops.pool.release(thread)
    stopped = [thread for thread in threads if not thread.is_idle()]
    assert len(stopped) >= 2
    for thread in stopped:
        thread.join(10)
        assert not thread.is_alive()


def test_idle_workers_exit_after_the_idle_timeout_without_new_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Test that after a burst every worker exits on its own."""
    from asgibridge_any import _threads

    monkeypatch.setattr(_threads, "worker_pool", _threads.WorkerPool())
    monkeypatch.setattr(_threads, "IDLE_TIMEOUT", 0.01)
    workers: list[threading.Thread] = []

    async def burst() -> None:
        import anyio

        all_in = threading.Barrier(3, timeout=10)

        def hold() -> None:
            workers.append(threading.current_thread())
            all_in.wait()

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(sync_to_async(hold, thread_sensitive=False))

    async_to_sync(burst)()
    assert len(set(workers)) == 3
    # No new work: the timed-out workers end by themselves (polled, with a bound).
    deadline = time.monotonic() + 10
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        for worker in workers:
            worker.join(0.01)
    alive = [worker for worker in workers if worker.is_alive()]
    assert not alive, alive


def test_warning_points_at_the_callers_line() -> None:
    def sync_function() -> None:
        pass

    with pytest.warns(UserWarning, match="non-async") as record:
        async_to_sync(sync_function)  # type: ignore[arg-type]
    assert record[0].filename == __file__
