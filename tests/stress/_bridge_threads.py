# The storm's shapes driven from plain threads: async_to_sync (alone and three sync levels
# deep), AsyncSingleThreadContext (with a second thread inside one context), and a
# KeyboardInterrupt injected into a thread waiting in async_to_sync; and the one loop-side
# shape about a waiting thread: a late thread-sensitive call. Kept apart from
# _bridge_ops.py (the op record, the cancellation harness and the loop-side shapes).
from __future__ import annotations

import ctypes
import threading
import time
from contextvars import copy_context
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import sniffio

from asgibridge_any.sync import (
    AsyncSingleThreadContext,
    ThreadSensitiveContext,
    async_to_sync,
    sync_to_async,
)

from ._bridge_ops import PATIENCE, Op, chain_sync, guarded, leaf, sync_level

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable


def run_thread_op(op: Op, backend: str) -> None:
    """Run one thread-side shape in the calling (plain) thread."""
    me = threading.get_ident()
    if op.shape == "a2s_thread":
        closed = threading.Event()
        stray: list[object] = []

        async def body() -> int:
            kept = await _leave_behind(closed, stray) if op.leaves else None
            value = await sync_to_async(sync_level, thread_sensitive=op.sensitive[0])(
                op, True, lambda: leaf(op)
            )
            del kept  # dropped only now, as the coroutine ends
            return value + 1

        _from_thread(op, backend, body)
        if op.leaves and not closed.is_set():
            op.fail(
                "an async generator the coroutine left open was not closed before "
                "async_to_sync returned"
            )
        if op.leaves and backend == "asyncio" and len(stray) != 2:
            op.fail("a task the coroutine left running outlived its async_to_sync")
        if op.outcome == "value" and op.sensitive[0] and op.threads_seen[:1] != [me]:
            op.fail("thread-sensitive call under async_to_sync left the waiting thread")
    elif op.shape == "nested_thread":

        async def nested() -> int:
            value = await sync_to_async(chain_sync, thread_sensitive=op.sensitive[0])(
                op, op.sensitive[1:2], True
            )
            return value + 1

        _from_thread(op, backend, nested)
    elif op.shape == "single_context":
        _single_context(op, backend)
    elif op.shape == "interrupt":
        _interrupt(op, backend)
    else:
        raise AssertionError(op.shape)


async def _leave_behind(
    closed: threading.Event, stray: list[object]
) -> AsyncIterator[int]:
    # Leave an async generator suspended (and, on asyncio, a task running): what one
    # call starts must not outlive it.
    async def numbers() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            closed.set()

    async def sleeper() -> None:
        try:
            await anyio.sleep(PATIENCE)
        finally:
            stray.append("ended")

    generator = numbers()
    await generator.__anext__()
    if sniffio.current_async_library() == "asyncio":
        import asyncio

        stray.append(asyncio.get_running_loop().create_task(sleeper()))
    return generator


def _from_thread(op: Op, backend: str, body: Callable[[], Awaitable[int]]) -> None:
    try:
        async_to_sync(guarded, backend=backend)(op, body)
    except BaseException as exc:
        op.fail(f"async_to_sync raised {exc!r} around the harness")


def _single_context(op: Op, backend: str) -> None:
    async def where() -> int:
        op.threads_seen.append(threading.get_ident())
        await anyio.lowlevel.checkpoint()
        return op.base + 1

    async def anywhere() -> int:
        await anyio.lowlevel.checkpoint()
        return op.base + 1

    values: list[int] = []
    try:
        with AsyncSingleThreadContext():
            values.append(async_to_sync(where, backend=backend)())
            helper = None
            if op.helper_thread:
                # A second thread inside the same context (it inherits the context),
                # calling while this one calls too.
                helper = threading.Thread(
                    target=copy_context().run,
                    args=(
                        lambda: values.append(async_to_sync(where, backend=backend)()),
                    ),
                    name="storm single-context helper",
                )
                helper.start()
            values.append(async_to_sync(where, backend=backend)())
            if helper is not None:
                helper.join(PATIENCE * 3)
                if helper.is_alive():
                    op.fail("second thread in one AsyncSingleThreadContext hung")
                    return
            if op.force_new:
                call = async_to_sync(anywhere, force_new_loop=True, backend=backend)
                values.append(call())
    except BaseException as exc:
        op.outcome = "error"
        op.fail(f"AsyncSingleThreadContext call raised {exc!r}")
        return
    op.outcome = "value"
    op.value = values[0] + 1 if all(v == op.base + 1 for v in values) else -1
    if op.value < 0:
        op.fail(f"AsyncSingleThreadContext calls returned {values!r}")
    if len(set(op.threads_seen)) != 1:
        op.fail(
            "async_to_sync calls in one AsyncSingleThreadContext used several loops"
        )


def _inject(thread_id: int, exc: type[BaseException] | None) -> int:
    setter = ctypes.pythonapi.PyThreadState_SetAsyncExc
    return int(
        setter(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None)
    )


def _noop() -> None:
    return None


def _interrupt(op: Op, backend: str) -> None:
    # Ctrl-C in a thread waiting in async_to_sync: the coroutine injects the
    # KeyboardInterrupt into that thread, then sends it thread-sensitive work so the
    # (otherwise blocked) thread runs bytecode and notices. It must come out of
    # async_to_sync as KeyboardInterrupt after the coroutine ended, and the next call
    # from the same thread must work.
    me = threading.get_ident()
    exited = threading.Event()

    async def victim() -> int:
        try:
            if _inject(me, KeyboardInterrupt) != 1:
                op.fail("could not inject KeyboardInterrupt")
            await sync_to_async(_noop)()
            await anyio.sleep(PATIENCE)
            return 0
        finally:
            exited.set()

    try:
        async_to_sync(victim, backend=backend)()
        _inject(me, None)
        op.fail("KeyboardInterrupt lost: async_to_sync returned normally")
    except KeyboardInterrupt:
        op.outcome = "interrupted"
        if not exited.is_set():
            op.fail(
                "KeyboardInterrupt left async_to_sync while its coroutine still ran"
            )
    except BaseException as exc:
        op.fail(f"interrupted async_to_sync raised {exc!r} instead")

    async def after() -> int:
        await anyio.lowlevel.checkpoint()
        return op.base + 3

    try:
        op.value = async_to_sync(after, backend=backend)()
    except BaseException as exc:
        op.fail(f"next async_to_sync after KeyboardInterrupt raised {exc!r}")
        return
    if op.value != op.expected:
        op.fail(f"next async_to_sync after KeyboardInterrupt returned {op.value}")


async def run_late_sensitive(op: Op) -> None:
    """
    A task started inside ``async_to_sync`` makes a thread-sensitive call late.

    The sync function that called ``async_to_sync`` is still running (not waiting for
    it) when the call is made; the call must run once a thread may take it, not fail.
    """
    issued = threading.Event()
    late: list[int] = []

    async def late_call() -> None:
        issued.set()
        late.append(await sync_to_async(leaf)(op))

    async def starter() -> int:
        tg.start_soon(late_call)
        return op.base

    def first() -> int:
        value = async_to_sync(starter)()
        if not issued.wait(PATIENCE):
            op.fail("the late task never ran")
        time.sleep(0.001)  # widen the window in which this function still runs
        return value + 1

    try:
        async with anyio.create_task_group() as tg:
            if op.sensitive[0]:
                async with ThreadSensitiveContext():
                    value = await sync_to_async(first)()
            else:
                value = await sync_to_async(first)()
    except BaseException as exc:
        op.outcome = "error"
        op.fail(f"late thread-sensitive call: {exc!r}")
        return
    op.outcome = "value"
    op.value = value + 2 if late == [op.base] else -1
    if op.value < 0:
        op.fail(f"late thread-sensitive call returned {late!r}")
