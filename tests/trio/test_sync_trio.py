"""Bridge behaviour seen from trio: cancel scopes, nurseries, the run's token."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import trio
import trio.testing

from asgibridge_any.sync import async_to_sync, sync_to_async

if TYPE_CHECKING:
    import outcome


async def test_cancel_scope_waits_for_the_thread_then_raises_cancelled() -> None:
    started, release = threading.Event(), threading.Event()
    done: list[bool] = []

    def block() -> None:
        started.set()
        release.wait(10)
        done.append(True)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sync_to_async(block, thread_sensitive=False))
            assert await trio.to_thread.run_sync(started.wait, 10)
            nursery.cancel_scope.cancel()
            with trio.CancelScope(shield=True):
                await trio.testing.wait_all_tasks_blocked()
                assert done == []
            release.set()
    assert nursery.cancel_scope.cancelled_caught
    assert done == [True]


async def test_result_is_dropped_when_the_scope_was_cancelled_meanwhile() -> None:
    """Test that trio's level-triggered cancellation wins over a late result."""
    started, release = threading.Event(), threading.Event()
    outcomes: list[str] = []

    def block() -> str:
        started.set()
        release.wait(10)
        return "value"

    async def call() -> None:
        try:
            outcomes.append(await sync_to_async(block)())
        except trio.Cancelled:
            outcomes.append("cancelled")
            raise

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            assert await trio.to_thread.run_sync(started.wait, 10)
            nursery.cancel_scope.cancel()
            release.set()
    assert outcomes == ["cancelled"]


async def test_round_trip_runs_the_coroutine_as_a_task_of_this_run() -> None:
    token = trio.lowlevel.current_trio_token()

    async def inner() -> tuple[trio.lowlevel.TrioToken, str]:
        await trio.lowlevel.checkpoint()
        return trio.lowlevel.current_trio_token(), trio.lowlevel.current_task().name

    def middle() -> tuple[trio.lowlevel.TrioToken, str]:
        return async_to_sync(inner)()

    same_token, name = await sync_to_async(middle, thread_sensitive=False)()
    assert same_token is token
    assert name  # a named task of this very run


async def test_nursery_children_can_use_the_bridge_concurrently() -> None:
    results: list[int] = []

    def square(x: int) -> int:
        return x * x

    async with trio.open_nursery() as nursery:
        for i in range(20):

            async def one(i: int = i) -> None:
                results.append(await sync_to_async(square, thread_sensitive=False)(i))

            nursery.start_soon(one)
    assert sorted(results) == [i * i for i in range(20)]


def test_async_to_sync_with_trio_backend_runs_under_trio() -> None:
    async def inside() -> bool:
        return trio.lowlevel.in_trio_task()

    assert async_to_sync(inside, backend="trio")() is True


def test_sync_to_async_works_in_trio_guest_mode_on_asyncio() -> None:
    """Test that trio code hosted by an asyncio loop in one thread waits as trio."""
    import asyncio

    async def trio_main() -> list[int]:
        return [
            await sync_to_async(lambda: 1)(),
            await sync_to_async(lambda: 2, thread_sensitive=False)(),
        ]

    async def host() -> list[int]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[outcome.Outcome[list[int]]] = loop.create_future()
        trio.lowlevel.start_guest_run(
            trio_main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=done.set_result,
            host_uses_signal_set_wakeup_fd=True,
        )
        return (await done).unwrap()

    assert asyncio.run(host()) == [1, 2]
