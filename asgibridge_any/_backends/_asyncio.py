# The asyncio side of the bridge: futures for waiting, call_soon_threadsafe for waking.
from __future__ import annotations

import asyncio
import functools
import weakref
from typing import TYPE_CHECKING, Any

from ._base import LoopHandle

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextvars import Context

    from .._calls import ThreadCall
    from ._base import CoroutineFactory

_get_running_loop = asyncio._get_running_loop
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


def _set_done(call: ThreadCall) -> None:
    waiter = call.waiter
    if not waiter.done():
        waiter.set_result(None)


class AsyncioHandle(LoopHandle):
    name = "asyncio"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self._call_soon_threadsafe = loop.call_soon_threadsafe

    async def run_call(
        self, call: ThreadCall, dispatch: Callable[[ThreadCall], None]
    ) -> Any:
        waiter = call.waiter = self.loop.create_future()
        dispatch(call)
        try:
            await waiter
        except asyncio.CancelledError as exc:
            if await self._outlast_cancellation(call):
                return call.value
            raise exc from None
        return call.outcome()

    async def _outlast_cancellation(self, call: ThreadCall) -> bool:
        # A thread cannot be interrupted: pass the cancellation down to the coroutine
        # the thread may be blocked on, wait for the thread, then let the caller
        # re-raise. Returns True when that coroutine absorbed the cancellation and
        # the call succeeded anyway (asgiref's behaviour: the inner code decided).
        import anyio

        call.cancel_requested = True
        if call.inner_cancel is not None:
            call.inner_cancel()
        # Shielded, so anyio's cancel scopes don't re-deliver on every loop pass; a
        # native task.cancel() still lands, and is absorbed here until the end.
        with anyio.CancelScope(shield=True):
            while not call.finished:
                call.waiter = self.loop.create_future()
                try:
                    await call.waiter
                except asyncio.CancelledError:
                    if call.inner_cancel is not None:
                        call.inner_cancel()
        return call.ok and call.inner_cancel is not None

    def _schedule(self, callback: Callable[[], object]) -> None:
        try:
            self._call_soon_threadsafe(callback)
        except RuntimeError:
            pass  # the loop is closed: nobody is left to wake

    _settle = staticmethod(_set_done)

    def start_coroutine(
        self, factory: CoroutineFactory, context: Context, parent: ThreadCall | None
    ) -> bool:
        loop = self.loop
        if loop.is_closed() or not loop.is_running():
            return False
        try:
            loop.call_soon_threadsafe(self._start, factory, context, parent)
        except RuntimeError:
            return False
        return True

    def _start(
        self, factory: CoroutineFactory, context: Context, parent: ThreadCall | None
    ) -> None:
        task = self.loop.create_task(factory(), context=context)
        if parent is not None:
            # Cancelling a task before its first step would skip the coroutine
            # entirely, and with it the code that reports back to the waiting thread:
            # cancel one loop pass later, once it is inside.
            parent.inner_cancel = functools.partial(self.loop.call_soon, task.cancel)
            if parent.cancel_requested:
                parent.inner_cancel()
