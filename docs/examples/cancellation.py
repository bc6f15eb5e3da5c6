"""Cancelling a bridged call: the thread finishes first, then the cancellation goes on.

Unless the call was made with abandon_on_cancel=True (last part).
"""

from __future__ import annotations

import threading

import anyio
import sniffio

from asgibridge_any.sync import async_to_sync, sync_to_async


async def cancel_while_the_function_runs() -> None:
    started, release = threading.Event(), threading.Event()
    log: list[str] = []

    def slow() -> None:
        started.set()
        release.wait(5)
        log.append("function finished")

    async def caller() -> None:
        try:
            await sync_to_async(slow)()
        except anyio.get_cancelled_exc_class():
            log.append("caller cancelled")
            raise

    async with anyio.create_task_group() as tg:
        tg.start_soon(caller)
        await anyio.to_thread.run_sync(started.wait, 5)
        tg.cancel_scope.cancel()
        log.append("cancel requested")
        release.set()
    print("  " + " -> ".join(log))


async def timeout_while_the_function_runs() -> None:
    release = threading.Event()
    log: list[str] = []

    def slow() -> None:
        release.wait(5)
        log.append("function finished")

    async def release_after(deadline: float) -> None:
        await anyio.sleep_until(deadline + 0.01)  # just after the timeout fired
        log.append("deadline passed")
        release.set()

    async with anyio.create_task_group() as tg:
        with anyio.move_on_after(0.05) as scope:
            tg.start_soon(release_after, scope.deadline)
            await sync_to_async(slow)()
        log.append(f"timed out: {scope.cancelled_caught}")
    print("  " + " -> ".join(log))


async def cancel_a_whole_chain() -> None:
    # task -> sync_to_async(middle) -> async_to_sync(inner): cancelling the task
    # cancels inner, so middle returns promptly and the cancellation reaches the task.
    inner_started = anyio.Event()
    log: list[str] = []

    async def inner() -> None:
        inner_started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            log.append("inner cancelled")
            raise

    def middle() -> None:
        try:
            async_to_sync(inner)()
        except BaseException as exc:
            log.append(f"middle got {type(exc).__name__}")
            raise

    async with anyio.create_task_group() as tg:
        tg.start_soon(sync_to_async(middle))
        await inner_started.wait()
        tg.cancel_scope.cancel()
    log.append("task group done")
    print("  " + " -> ".join(log))


async def give_up_on_a_blocked_function() -> None:
    # abandon_on_cancel=True: the timeout returns at once, the function runs on.
    release, finished = threading.Event(), threading.Event()
    log: list[str] = []

    def slow() -> None:
        release.wait(5)
        log.append("function finished")
        finished.set()

    fetch = sync_to_async(slow, thread_sensitive=False, abandon_on_cancel=True)
    with anyio.move_on_after(0.05) as scope:
        await fetch()
    log.append(f"timed out: {scope.cancelled_caught}")
    release.set()
    await anyio.to_thread.run_sync(finished.wait, 5)
    print("  " + " -> ".join(log))


async def main() -> None:
    print("under", sniffio.current_async_library())
    await cancel_while_the_function_runs()
    await timeout_while_the_function_runs()
    await cancel_a_whole_chain()
    await give_up_on_a_blocked_function()


anyio.run(main, backend="asyncio")
anyio.run(main, backend="trio")
