# The asyncio side of the bridge: futures to park on, call_soon_threadsafe to wake,
# tasks for coroutines sent from threads, and the package's own asyncio loop threads.
from __future__ import annotations

import asyncio
import contextvars
import weakref
from typing import TYPE_CHECKING, Any

from .._owner import owner, track_generators
from ._base import LoopHandle, LoopThread

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine
    from contextvars import Context

    from .._calls import CoroutineCall, ThreadCall
    from ._base import CoroutineFactory

_get_running_loop = asyncio._get_running_loop
_CancelledError = asyncio.CancelledError
_system_tasks: set[asyncio.Task[None]] = set()
_handles: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncioHandle] = (
    weakref.WeakKeyDictionary()
)


def running_handle() -> AsyncioHandle | None:
    """The handle of the asyncio loop running in this thread, or None."""
    loop = _get_running_loop()
    if loop is None:
        return None
    try:
        return _handles[loop]
    except KeyError:
        handle = _handles[loop] = AsyncioHandle(loop)
        return handle


def current_task() -> object | None:
    """The asyncio task running in this thread, or None."""
    if _get_running_loop() is None:
        return None
    return asyncio.current_task()


class AsyncioHandle(LoopHandle):
    name = "asyncio"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = self.asyncio_loop = loop
        self._call_soon_threadsafe = loop.call_soon_threadsafe

    async def park(
        self,
        call: ThreadCall,
        dispatch: Callable[[ThreadCall], None],
        abandon_on_cancel: bool,
    ) -> _CancelledError | None:
        waiter = call.waiter = self.loop.create_future()
        dispatch(call)
        try:
            await waiter
        except _CancelledError as exc:
            held = exc
        else:
            return None
        if call.request_cancel(abandon_on_cancel):
            return held
        import anyio

        # Shielded, so anyio's cancel scopes don't re-deliver on every loop pass; a
        # native task.cancel() still lands, and is held back like the first one.
        with anyio.CancelScope(shield=True):
            while not call.finished:
                call.waiter = self.loop.create_future()
                try:
                    await call.waiter
                except _CancelledError:
                    call.request_cancel()
        return held

    async def deliver(self, held: _CancelledError) -> None:
        # The task's cancelling() count already holds every request; raising once
        # completes them, as asyncio.timeout() and anyio's scopes expect.
        raise held

    def _schedule(self, callback: Callable[[], object]) -> None:
        try:
            self._call_soon_threadsafe(callback)
        except RuntimeError:
            pass  # the loop is closed: nobody is left to wake

    @staticmethod
    def _settle(call: ThreadCall) -> None:
        waiter = call.waiter
        if not waiter.done():
            waiter.set_result(None)

    def start_task(
        self, call: CoroutineCall, factory: CoroutineFactory, context: Context
    ) -> bool:
        loop = self.loop
        if loop.is_closed() or not loop.is_running():
            return False
        try:
            loop.call_soon_threadsafe(self._start, call, factory, context)
        except RuntimeError:
            return False
        return True

    def _start(
        self, call: CoroutineCall, factory: CoroutineFactory, context: Context
    ) -> None:
        call.accept()
        call.started(self.loop.create_task(_reporting(call, factory), context=context))

    def spawn_system_task(self, async_fn: Callable[[], Awaitable[object]]) -> None:
        task = self.loop.create_task(_run(async_fn), context=contextvars.Context())
        # The loop holds tasks weakly: keep this one until it is done.
        _system_tasks.add(task)
        task.add_done_callback(_system_tasks.discard)

    def cancel_task(self, task: asyncio.Task[None]) -> None:
        # Cancelling a task before its first step would skip its body, and with it
        # the code that reports back to the waiting thread: cancel one pass later.
        self._schedule(lambda: self.loop.call_soon(task.cancel))


async def _run(async_fn: Callable[[], Awaitable[object]]) -> None:
    await async_fn()


async def _reporting(call: CoroutineCall, factory: CoroutineFactory) -> None:
    try:
        await factory()
    finally:
        call.finish()


class AsyncioLoopThread(LoopThread):
    """An asyncio loop in a thread of its own; see :class:`LoopThread`."""

    backend = "asyncio"
    handle: AsyncioHandle

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.handle = AsyncioHandle(self.loop)
        # The tasks each call started, found through the task factory.
        self._tasks: dict[CoroutineCall, weakref.WeakSet[asyncio.Task[Any]]] = {}
        self.loop.set_task_factory(self._task_factory)  # type: ignore[arg-type]

    def run(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        # First callback: run_forever has installed the loop's generator hooks.
        loop.call_soon(self._on_start)
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    def _on_start(self) -> None:
        track_generators()
        self._loop_started()

    def _task_factory(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any],
        context: Context | None = None,
    ) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, context=context)
        call = owner.get(None) if context is None else context.get(owner)
        if call is not None:
            tasks = self._tasks.get(call)
            if tasks is None:
                tasks = self._tasks[call] = weakref.WeakSet()
            tasks.add(task)
        return task

    async def _cancel_leftovers(self, call: CoroutineCall) -> None:
        current = asyncio.current_task()
        while True:
            tasks = self._tasks.get(call)
            leftovers = [
                task
                for task in (tasks or ())
                if task is not current and not task.done()
            ]
            if not leftovers:
                self._tasks.pop(call, None)
                return
            for task in leftovers:
                task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)

    def _stop_now(self) -> None:
        self.loop.stop()
