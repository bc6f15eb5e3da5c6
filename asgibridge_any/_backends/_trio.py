# The trio side of the bridge: wait_task_rescheduled for waiting, the run's token for
# waking, system tasks (each with its own cancel scope) for coroutines sent from threads.
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from ._base import LoopHandle

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextvars import Context

    from .._calls import ThreadCall
    from ._base import CoroutineFactory

_handle_var: trio.lowlevel.RunVar[TrioHandle] = trio.lowlevel.RunVar(
    "asgibridge_any.handle"
)
_reschedule = trio.lowlevel.reschedule
_wait_task_rescheduled = trio.lowlevel.wait_task_rescheduled
_current_task = trio.lowlevel.current_task
_in_trio_task = trio.lowlevel.in_trio_task
_FAILED = trio.lowlevel.Abort.FAILED


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


class TrioHandle(LoopHandle):
    name = "trio"

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        super().__init__()
        self.token = token
        self._run_sync_soon = token.run_sync_soon

    async def run_call(
        self, call: ThreadCall, dispatch: Callable[[ThreadCall], None]
    ) -> Any:
        call.waiter = _current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            # The thread can't be stopped: pass the cancellation to the coroutine it
            # may be blocked on, and stay blocked until it finishes.
            call.cancel_requested = True
            if call.inner_cancel is not None:
                call.inner_cancel()
            return _FAILED

        dispatch(call)
        await _wait_task_rescheduled(abort)
        if call.cancel_requested:
            # The cancellation is still pending: this checkpoint raises it.
            await trio.lowlevel.checkpoint()
        return call.outcome()

    def _schedule(self, callback: Callable[[], object]) -> None:
        try:
            self._run_sync_soon(callback)
        except trio.RunFinishedError:
            pass  # the run is over: nobody is left to wake

    @staticmethod
    def _settle(call: ThreadCall) -> None:
        _reschedule(call.waiter)

    def start_coroutine(
        self, factory: CoroutineFactory, context: Context, parent: ThreadCall | None
    ) -> bool:
        try:
            self._run_sync_soon(self._start, factory, context, parent)
        except trio.RunFinishedError:
            return False
        return True

    @staticmethod
    def _start(
        factory: CoroutineFactory, context: Context, parent: ThreadCall | None
    ) -> None:
        trio.lowlevel.spawn_system_task(
            _scoped,
            factory,
            parent,
            context=context,
            name="asgibridge_any.async_to_sync",
        )


async def _scoped(factory: CoroutineFactory, parent: ThreadCall | None) -> None:
    with trio.CancelScope() as scope:
        if parent is not None:
            parent.inner_cancel = scope.cancel
            if parent.cancel_requested:
                scope.cancel()
        await factory()
