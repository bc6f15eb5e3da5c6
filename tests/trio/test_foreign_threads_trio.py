"""async_to_sync in threads that ``trio.to_thread.run_sync`` started."""

from __future__ import annotations

import math
import threading

import trio

from asgibridge_any.sync import async_to_sync, sync_to_async

from .._loop_bound import LoopBoundDoubler


async def test_coroutine_uses_a_channel_of_the_run_that_started_the_thread() -> None:
    service = LoopBoundDoubler()
    token = trio.lowlevel.current_trio_token()

    async def ask() -> tuple[trio.lowlevel.TrioToken, int, threading.Thread]:
        answer = await service.ask(21)
        sensitive = await sync_to_async(threading.current_thread)()
        return trio.lowlevel.current_trio_token(), answer, sensitive

    def worker() -> tuple[
        threading.Thread, trio.lowlevel.TrioToken, int, threading.Thread
    ]:
        return threading.current_thread(), *async_to_sync(ask)()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.serve)
            worker_thread, run_token, answer, sensitive = await trio.to_thread.run_sync(
                worker
            )
            nursery.cancel_scope.cancel()
    assert run_token is token
    assert answer == 42
    assert sensitive is worker_thread
    assert worker_thread is not threading.current_thread()


async def test_force_new_loop_runs_outside_the_trio_run() -> None:
    async def where() -> trio.lowlevel.TrioToken | None:
        try:
            return trio.lowlevel.current_trio_token()
        except RuntimeError:  # not in a trio run at all
            return None

    def worker() -> trio.lowlevel.TrioToken | None:
        return async_to_sync(where, force_new_loop=True, backend="trio")()

    with trio.fail_after(20):
        other = await trio.to_thread.run_sync(worker)
    assert other is not None
    assert other is not trio.lowlevel.current_trio_token()


async def test_cancelling_the_scope_around_to_thread_cancels_the_coroutine() -> None:
    started = threading.Event()
    log: list[str] = []

    async def inner() -> None:
        started.set()
        try:
            # Without the cancellation this gives up (and the test fails) in time.
            with trio.fail_after(20):
                await trio.sleep_forever()
        except trio.Cancelled:
            log.append("inner cancelled")
            raise

    def worker() -> None:
        try:
            async_to_sync(inner)()
        except BaseException as exc:
            log.append(f"worker got {type(exc).__name__}")
            raise

    scope = trio.CancelScope(deadline=math.inf)

    async def call_worker() -> None:
        with scope:
            await trio.to_thread.run_sync(worker)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(call_worker)
            assert await trio.to_thread.run_sync(started.wait, 10)
            scope.cancel()
    assert scope.cancelled_caught
    assert log == ["inner cancelled", "worker got Cancelled"]


async def test_deadline_of_a_move_on_after_around_to_thread_reaches_the_coroutine() -> (
    None
):
    started = threading.Event()
    log: list[str] = []

    async def inner() -> None:
        started.set()
        try:
            with trio.fail_after(20):
                await trio.sleep_forever()
        except trio.Cancelled:
            log.append("inner cancelled")
            raise

    def worker() -> None:
        async_to_sync(inner)()

    async def expire(scope: trio.CancelScope) -> None:
        # The deadline passes only once the coroutine runs, so the test does not
        # depend on how fast the thread starts.
        assert await trio.to_thread.run_sync(started.wait, 10)
        scope.deadline = trio.current_time()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            with trio.move_on_after(math.inf) as scope:
                nursery.start_soon(expire, scope)
                await trio.to_thread.run_sync(worker)
    assert scope.cancelled_caught
    assert log == ["inner cancelled"]
