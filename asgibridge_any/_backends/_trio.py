# The trio side of the bridge: wait_task_rescheduled to park on, the run's token to
# wake, system tasks (each in a cancel scope of its own) for coroutines sent from
# threads.
from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

import trio

from ._base import LoopHandle

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from contextvars import Context

    from .._calls import CoroutineCall, ThreadCall
    from ._base import CoroutineFactory

_handle_var: trio.lowlevel.RunVar[TrioHandle] = trio.lowlevel.RunVar(
    "asgibridge_any.handle"
)
_reschedule = trio.lowlevel.reschedule
_wait_task_rescheduled = trio.lowlevel.wait_task_rescheduled
_current_task = trio.lowlevel.current_task
_in_trio_task = trio.lowlevel.in_trio_task
_FAILED = trio.lowlevel.Abort.FAILED
_SUCCEEDED = trio.lowlevel.Abort.SUCCEEDED


def running_handle() -> TrioHandle | None:
    """The handle of the trio run whose task is running, or None."""
    if not _in_trio_task():
        return None
    try:
        return _handle_var.get()
    except LookupError:
        pass
    handle = TrioHandle(trio.lowlevel.current_trio_token())
    _handle_var.set(handle)
    return handle


def current_task() -> object | None:
    """The trio task running in this thread, or None (trio code outside a task)."""
    if not _in_trio_task():
        return None
    return _current_task()


class TrioHandle(LoopHandle):
    name = "trio"

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        super().__init__()
        self.token = token
        self._run_sync_soon = token.run_sync_soon

    async def park(
        self,
        call: ThreadCall,
        dispatch: Callable[[ThreadCall], None],
        abandon_on_cancel: bool,
    ) -> bool | None:
        call.waiter = _current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            if call.request_cancel(abandon_on_cancel):
                return _SUCCEEDED  # trio raises the cancellation right away
            return _FAILED

        dispatch(call)
        await _wait_task_rescheduled(abort)
        return True if call.cancel_requested else None

    async def deliver(self, held: bool) -> None:
        # A trio cancellation stays pending once requested: a checkpoint raises it.
        await trio.lowlevel.checkpoint()

    def _schedule(self, callback: Callable[[], object]) -> None:
        try:
            self._run_sync_soon(callback)
        except trio.RunFinishedError:
            pass  # the run is over: nobody is left to wake

    @staticmethod
    def _settle(call: ThreadCall) -> None:
        waiter = call.waiter
        if waiter is not None:  # not already settled
            call.waiter = None
            _reschedule(waiter)

    def start_task(
        self, call: CoroutineCall, factory: CoroutineFactory, context: Context
    ) -> bool:
        try:
            self._run_sync_soon(self._start, call, factory, context)
        except trio.RunFinishedError:
            return False
        return True

    @staticmethod
    def _start(
        call: CoroutineCall, factory: CoroutineFactory, context: Context
    ) -> None:
        call.accept()
        trio.lowlevel.spawn_system_task(
            _scoped, call, factory, context=context, name="asgibridge_any.async_to_sync"
        )

    def spawn_system_task(self, async_fn: Callable[[], Awaitable[object]]) -> None:
        trio.lowlevel.spawn_system_task(
            async_fn, context=contextvars.Context(), name="asgibridge_any.tokens"
        )

    def cancel_task(self, task: trio.CancelScope) -> None:
        self._schedule(task.cancel)


async def _scoped(call: CoroutineCall, factory: CoroutineFactory) -> None:
    try:
        with trio.CancelScope() as scope:
            call.started(scope)
            await factory()
    finally:
        call.finish()
