"""The process-wide cap on ThreadSensitiveContext threads, on both loops."""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING

import anyio
import pytest

from asgibridge_any import stats
from asgibridge_any._threads import _LaneThread
from asgibridge_any.sync import (
    ThreadSensitiveContext,
    async_to_sync,
    get_context_thread_limit,
    set_context_thread_limit,
    sync_to_async,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def capped() -> Iterator[None]:
    """Let earlier tests' context threads finish exiting; lift the cap afterwards."""
    for thread in threading.enumerate():
        if isinstance(thread, _LaneThread) and thread.lane.closed:
            thread.join(10)
    try:
        yield
    finally:
        set_context_thread_limit(None)


class _Peak:
    """Counts the context threads running a call at once, and the most seen."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: set[threading.Thread] = set()
        self.peak = 0
        self.most_alive = 0

    def enter(self) -> None:
        with self.lock:
            self.running.add(threading.current_thread())
            self.peak = max(self.peak, len(self.running))
            alive = stats().sensitive.context_threads
            self.most_alive = max(self.most_alive, alive)

    def leave(self) -> None:
        with self.lock:
            self.running.discard(threading.current_thread())


async def _requests(count: int, peak: _Peak) -> None:
    # Each request: its own context, a sync call that goes back to async code which
    # enters a nested context and calls sync code again (the same thread), and a
    # second call of the context (the same thread, without waiting for the cap).
    def leaf() -> threading.Thread:
        return threading.current_thread()

    async def middle() -> threading.Thread:
        async with ThreadSensitiveContext():
            return await sync_to_async(leaf)()

    def body() -> threading.Thread:
        peak.enter()
        try:
            me = threading.current_thread()
            assert async_to_sync(middle)() is me
            return me
        finally:
            peak.leave()

    async def request() -> None:
        async with ThreadSensitiveContext():
            first = await sync_to_async(body)()
            assert await sync_to_async(leaf)() is first

    async with anyio.create_task_group() as tasks:
        for _ in range(count):
            tasks.start_soon(request)


@pytest.mark.usefixtures("capped")
async def test_cap_holds_under_200_contexts_on_two_loops_with_nested_calls(
    anyio_backend: str,
) -> None:
    """
    Test that 200 contexts, half on this loop and half on the other kind of loop in
    another thread, never have more than the cap of threads, and all finish.
    """
    set_context_thread_limit(3)
    peak = _Peak()
    other = "trio" if anyio_backend == "asyncio" else "asyncio"
    with anyio.fail_after(120):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(
                functools.partial(
                    anyio.to_thread.run_sync,
                    functools.partial(anyio.run, _requests, 100, peak, backend=other),
                )
            )
            tasks.start_soon(_requests, 100, peak)
    assert 1 <= peak.peak <= 3
    assert peak.most_alive <= 3
    assert stats().sensitive.contexts_waiting == 0


@pytest.mark.usefixtures("capped")
async def test_a_cap_of_one_does_not_deadlock_nested_calls(anyio_backend: str) -> None:
    set_context_thread_limit(1)
    peak = _Peak()
    with anyio.fail_after(60):
        await _requests(5, peak)
    assert peak.peak == 1


class _Holder:
    """A context whose thread-sensitive call holds its thread until released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def _hold(self) -> None:
        self.started.set()
        self.release.wait(10)

    async def run(self) -> None:
        async with ThreadSensitiveContext():
            await sync_to_async(self._hold)()


@pytest.mark.usefixtures("capped")
async def test_waiting_for_a_context_thread_is_cancellable(anyio_backend: str) -> None:
    set_context_thread_limit(1)
    holding = _Holder()

    async def waiter() -> None:
        async with ThreadSensitiveContext():
            await sync_to_async(int)()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(holding.run)
            assert await anyio.to_thread.run_sync(holding.started.wait, 10)
            async with anyio.create_task_group() as waiting:
                waiting.start_soon(waiter)
                await anyio.wait_all_tasks_blocked()
                assert stats().sensitive.contexts_waiting == 1
                waiting.cancel_scope.cancel()
            # The cancelled context no longer waits, and nothing ran for it.
            assert stats().sensitive.contexts_waiting == 0
            holding.release.set()
        # The holder's slot came back: a new context gets a thread.
        async with ThreadSensitiveContext():
            assert await sync_to_async(lambda: 7)() == 7


@pytest.mark.usefixtures("capped")
async def test_waiting_contexts_get_threads_in_the_order_they_asked(
    anyio_backend: str,
) -> None:
    set_context_thread_limit(1)
    holding = _Holder()
    order: list[int] = []

    async def queued(number: int) -> None:
        async with ThreadSensitiveContext():
            await sync_to_async(order.append)(number)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(holding.run)
            assert await anyio.to_thread.run_sync(holding.started.wait, 10)
            for number in range(3):
                tasks.start_soon(queued, number)
                await anyio.wait_all_tasks_blocked()
            assert stats().sensitive.contexts_waiting == 3
            holding.release.set()
    assert order == [0, 1, 2]


@pytest.mark.usefixtures("capped")
async def test_raising_the_cap_lets_waiting_contexts_start(anyio_backend: str) -> None:
    set_context_thread_limit(1)
    holding = _Holder()
    done = anyio.Event()
    alive: list[int] = []

    async def second() -> None:
        async with ThreadSensitiveContext():
            await sync_to_async(int)()
            alive.append(stats().sensitive.context_threads)
        done.set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(holding.run)
            assert await anyio.to_thread.run_sync(holding.started.wait, 10)
            tasks.start_soon(second)
            await anyio.wait_all_tasks_blocked()
            assert not done.is_set()
            set_context_thread_limit(2)
            await done.wait()  # while the first still holds its thread
            holding.release.set()
    assert alive == [2]


def test_limit_is_read_back_and_validated() -> None:
    try:
        set_context_thread_limit(8)
        assert get_context_thread_limit() == 8
    finally:
        set_context_thread_limit(None)
    assert get_context_thread_limit() is None
    for bad in (0, -1, 2.5, True, "4"):
        with pytest.raises(ValueError, match="positive number of threads, or None"):
            set_context_thread_limit(bad)  # type: ignore[arg-type]
