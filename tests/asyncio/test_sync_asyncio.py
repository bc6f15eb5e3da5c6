"""Bridge behaviour that only asyncio has: task.cancel(), shield, asyncio.timeout."""

from __future__ import annotations

import asyncio
import threading

import pytest

from asgibridge_any.sync import async_to_sync, sync_to_async


async def test_task_cancel_waits_for_the_thread_then_raises() -> None:
    started, release = threading.Event(), threading.Event()
    done: list[bool] = []

    def block() -> None:
        started.set()
        release.wait(10)
        done.append(True)

    task = asyncio.create_task(sync_to_async(block, thread_sensitive=False)())
    assert await asyncio.to_thread(started.wait, 10)
    task.cancel()
    # Cancelled again while it waits: still no early return.
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)
    assert not task.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert done == [True]


async def test_timeout_surfaces_as_timeout_error_after_the_thread() -> None:
    started, release = threading.Event(), threading.Event()

    def block() -> str:
        started.set()
        release.wait(10)
        return "finished"

    async def release_when_started() -> None:
        await asyncio.to_thread(started.wait, 10)
        release.set()

    helper = asyncio.create_task(release_when_started())
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):
            await sync_to_async(block)()
    await helper
    assert release.is_set()


async def test_inner_coroutine_that_absorbs_the_cancellation_finishes_then_cancels() -> (
    None
):
    """Test that a coroutine below async_to_sync may shield itself, yet the caller is cancelled."""
    inner_started = asyncio.Event()
    finished: list[str] = []

    async def shielded_work() -> None:
        await asyncio.sleep(0)
        finished.append("work")

    async def view() -> str:
        inner_started.set()
        work = asyncio.create_task(shielded_work())
        try:
            await asyncio.shield(asyncio.Event().wait())
        except asyncio.CancelledError:
            await work
            finished.append("view")
        return "response"

    def middleware() -> str:
        return async_to_sync(view)()

    task = asyncio.create_task(sync_to_async(middleware)())
    await inner_started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished == ["work", "view"]


async def test_cancellation_before_the_inner_task_starts_still_unwinds() -> None:
    """Test that a cancel landing before async_to_sync's task begins doesn't hang."""
    entered = threading.Event()
    proceed = threading.Event()

    async def inner() -> None:
        await asyncio.Event().wait()

    def middle() -> None:
        entered.set()
        proceed.wait(10)
        async_to_sync(inner)()

    task = asyncio.create_task(sync_to_async(middle)())
    assert await asyncio.to_thread(entered.wait, 10)
    task.cancel()
    await asyncio.sleep(0)
    proceed.set()
    async with asyncio.timeout(20):
        with pytest.raises(asyncio.CancelledError):
            await task


# Python 3.12+ warns about fork() in a process with threads; this test forks on purpose.
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_async_to_sync_in_a_forked_child_does_not_use_the_parent_loop() -> None:
    import multiprocessing

    async def answer() -> int:
        return 42

    def child(queue: multiprocessing.Queue[int]) -> None:
        queue.put(async_to_sync(answer)())

    async def parent() -> int:
        context = multiprocessing.get_context("fork")
        queue: multiprocessing.Queue[int] = context.Queue()

        def fork_and_wait() -> int:
            process = context.Process(target=child, args=(queue,))
            process.start()
            process.join(20)
            return queue.get(timeout=5)

        return await sync_to_async(fork_and_wait)()

    assert asyncio.run(parent()) == 42


def test_async_to_sync_falls_back_to_a_new_loop_when_the_origin_stopped() -> None:
    """Test that a thread whose loop stopped meanwhile gets a fresh loop, not a hang."""
    release = threading.Event()
    results: list[object] = []
    finished = threading.Event()

    async def where() -> object:
        return asyncio.get_running_loop()

    def outlives_its_loop() -> None:
        release.wait(10)
        results.append(async_to_sync(where)())
        finished.set()

    loop = asyncio.new_event_loop()

    async def start() -> asyncio.Task[None]:
        return asyncio.create_task(sync_to_async(outlives_its_loop)())

    try:
        task = loop.run_until_complete(start())
        assert not loop.is_running()
        release.set()
        assert finished.wait(10)
        assert results
        assert results[0] is not loop
        # Let the bridge deliver the finished call so nothing is left pending.
        loop.run_until_complete(task)
    finally:
        loop.close()
