# The hand-off protocol between event loops and threads, written once.
#
# ThreadCall is one ``await sync_to_async(f)()``: built on the loop, run on a thread,
# finished back on the loop. CoroutineCall is one ``async_to_sync(f)()``: built on the
# blocked sync thread, run as a task on a loop. Every rule about their outcome and
# cancellation lives here; a backend (_backends/) only parks, wakes, starts and
# cancels:
#
# - A cancelled ThreadCall waits for its thread (threads can't be interrupted), but
#   first cancels the CoroutineCall its thread may be blocked on (``inner``), so the
#   chain unwinds. The cancellation is then raised, whatever the call's outcome:
#   an inner coroutine that absorbed its own cancellation does not absorb ours.
# - A CoroutineCall can be cancelled from any thread, also before its task started.
#   Its task always ends with finish(), which wakes the waiting thread.
# - A thread interrupted while it waits for a CoroutineCall (Ctrl-C) cancels it and
#   keeps waiting; interrupted again, it gives up on it (see wait_for_coroutine).
from __future__ import annotations

import ctypes
import sys
import threading
from contextvars import Context, ContextVar
from typing import TYPE_CHECKING, Any

from sniffio import current_async_library_cvar as _library_var

from . import _context, _hooks

_get_ident = threading.get_ident

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._backends import LoopHandle
    from ._serving import Serving

# Sets the exception sys.exception() reports in the current frame, without raising
# it: raising would add to its traceback (and __context__) on every crossing.
_set_handled = ctypes.pythonapi.PyErr_SetHandledException
_set_handled.argtypes = [ctypes.py_object]
_set_handled.restype = None


class _ThreadState(threading.local):
    #: The ThreadCall whose function this thread is running right now, if any.
    call: ThreadCall | None = None


thread_state = _ThreadState()

#: The serving queue of the nearest sync thread blocked in async_to_sync above the
#: current code; thread-sensitive calls go there first.
sensitive_executor: ContextVar[Serving | None] = ContextVar(
    "asgibridge_any.sensitive_executor"
)
#: The thread-sensitive ThreadCall running the current sync code, if any: lets a call
#: that would need this very thread while it is busy fail instead of hanging. Code
#: below async_to_sync runs with it cleared (that thread serves such calls).
running_call: ContextVar[ThreadCall | None] = ContextVar("asgibridge_any.running_call")


def _strip(exc: BaseException, codes: tuple[object, ...]) -> BaseException:
    # Drop the bridge's own frames from the top of a traceback the callee made.
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code in codes:
        tb = tb.tb_next
    exc.__traceback__ = tb
    return exc


class ThreadCall:
    """One ``sync_to_async`` invocation, run by whichever thread takes it."""

    __slots__ = (
        "abandoned",
        "args",
        "cancel_requested",
        "context",
        "exc",
        "finished",
        "func",
        "handle",
        "inner",
        "kwargs",
        "ok",
        "on_cancel",
        "source",
        "target",
        "unqueue",
        "value",
        "waiter",
    )

    def __init__(
        self,
        handle: LoopHandle,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        context: Context,
        target: object | None,
        exc: BaseException | None,
    ) -> None:
        self.handle = handle
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.context = context
        #: The lane or executor a thread-sensitive call runs on (None otherwise).
        self.target = target
        #: The caller's current exception, shown by sys.exception() in the thread.
        self.exc = exc
        #: The caller's thread: the function sees the Local values the caller saw.
        self.source = _get_ident()
        self.finished = False
        self.ok = False
        self.value: Any = None
        #: The backend's handle on the parked task.
        self.waiter: Any = None
        self.cancel_requested = False
        #: The CoroutineCall this call's thread is blocked on in async_to_sync.
        self.inner: CoroutineCall | None = None
        #: Set on the loop when the awaiting task stopped waiting (abandon_on_cancel,
        #: or the call was taken back before any thread took it).
        self.abandoned = False
        #: Takes the call back from a queue before a thread took it (True if it did).
        self.unqueue: Callable[[ThreadCall], bool] | None = None
        #: Tells the function to stop early, when the caller is cancelled (if it can).
        self.on_cancel: Callable[[], object] | None = None

    def run(self) -> None:
        """Run the function in this thread and hand the outcome to the loop."""
        # Safe to repeat after an interruption: the function runs once, and a
        # second wake-up of a settled call does nothing.
        if not self.finished:
            self.execute()
        self.handle.wake(self)

    def execute(self) -> None:
        """Run the function in this thread; the caller hands the outcome over."""
        state = thread_state
        previous = state.call
        state.call = self
        exc = self.exc
        if exc is not None:
            handled = sys.exception()
            _set_handled(exc)
        try:
            self.value = self.context.run(self._run_in_context)
            self.ok = True
        except BaseException as error:
            self.value = _strip(error, _THREAD_CODES)
        if exc is not None:
            _set_handled(handled)
        state.call = previous
        self.finished = True

    def _run_in_context(self) -> Any:
        adopted = _context.adopt(self.source)
        marker = running_call.set(self) if self.target is not None else None
        # Sync code runs in no async library, whatever anyio.run told sniffio.
        library = _library_var.set(None) if _library_var.get() is not None else None
        try:
            if _hooks.hooks:  # hop hooks observe the call (see _hooks)
                return _hooks.run_sync_hop(self)
            return self.func(*self.args, **self.kwargs)
        finally:
            if library is not None:
                _library_var.reset(library)
            if marker is not None:
                running_call.reset(marker)
            _context.unadopt(adopted)

    def abandon(self, exc: BaseException) -> None:
        """Fail the call without running it (its executor went away)."""
        self.value = exc
        self.finished = True
        self.handle.wake(self)

    def request_cancel(self, may_abandon: bool = False) -> bool:
        """
        On the loop: the awaiting task was cancelled; unwind what the thread waits on.

        :param may_abandon: the caller asked for ``abandon_on_cancel``
        :returns: True when the task stops waiting now (the call is abandoned: its
            outcome will be dropped), False when it waits for the thread
        """
        self.cancel_requested = True
        unqueue = self.unqueue
        if unqueue is not None and unqueue(self):
            self.abandoned = True  # never ran, never will: nothing to wait for
            return True
        inner = self.inner
        if inner is not None:
            inner.cancel()
        on_cancel = self.on_cancel
        if on_cancel is not None:
            on_cancel()
        if may_abandon and not self.finished:
            self.abandoned = True
            return True
        return False

    def settled_abandoned(self) -> None:
        """On the loop: an abandoned call finished; drop its outcome."""
        self.value = None


_THREAD_CODES = (
    ThreadCall.run.__code__,
    ThreadCall.execute.__code__,
    ThreadCall._run_in_context.__code__,
)


async def run_in_thread(
    handle: LoopHandle,
    call: ThreadCall,
    dispatch: Callable[[ThreadCall], None],
    abandon_on_cancel: bool = False,
) -> None:
    """
    Hand ``call`` to ``dispatch`` and wait until its thread finished it.

    A cancellation meanwhile is held back until then, and raised even if the call
    succeeded; otherwise the outcome is in ``call.ok`` and ``call.value``. With
    ``abandon_on_cancel``, a cancellation is raised at once instead and the call is
    left to finish unobserved.
    """
    held = await handle.park(call, dispatch, abandon_on_cancel)
    if held is not None:
        await handle.deliver(held)


class CoroutineCall:
    """One ``async_to_sync`` invocation: its outcome and the thread waiting for it."""

    __slots__ = (
        "accepted",
        "cancelled",
        "done",
        "handle",
        "ok",
        "parent",
        "scheduled",
        "serving",
        "task",
        "value",
        "watch",
    )

    def __init__(self, serving: Serving, parent: ThreadCall | None) -> None:
        self.serving = serving
        #: The ThreadCall whose thread waits here (it cancels us when cancelled).
        self.parent = parent
        self.handle: LoopHandle | None = None
        self.task: Any = None
        self.cancelled = False
        #: Set just before the task is sent to the loop (cleared if it was refused).
        self.scheduled = False
        #: Set on the loop when the start request arrived there.
        self.accepted = False
        #: Called now and then while waiting (see Serving.serve), if set.
        self.watch: Callable[[], object] | None = None
        self.done = False
        self.ok = False
        self.value: Any = None

    def attach(self, handle: LoopHandle) -> None:
        """Before the task starts: it runs on ``handle``'s loop."""
        self.handle = handle
        parent = self.parent
        if parent is not None:
            parent.inner = self
            if parent.cancel_requested:
                self.cancel()

    def accept(self) -> None:
        """On the loop: the start request arrived; the task will report."""
        self.accepted = True

    def _confirm_start(self) -> None:
        # On the loop, queued after an interrupted start request. Requests run in
        # order, so if that one had been queued it ran before this: if it has not
        # arrived, it never will, and the waiting thread must not wait for it.
        if not self.accepted and not self.done:
            self.done = True
            self.serving.wake()

    def started(self, task: Any) -> None:
        """On the loop, from the task: the backend's handle to cancel it."""
        self.task = task
        if self.cancelled:
            assert self.handle is not None
            self.handle.cancel_task(task)

    def cancel(self) -> None:
        """From any thread: cancel the coroutine (now, or as soon as it starts)."""
        if self.cancelled or self.done:
            return
        self.cancelled = True
        task = self.task
        if task is not None:
            assert self.handle is not None
            self.handle.cancel_task(task)

    def settle(self, ok: bool, value: Any) -> None:
        """On the loop, from the task: the coroutine's outcome."""
        self.ok = ok
        self.value = value

    def finish(self) -> None:
        """On the loop, last thing the task does: wake the waiting thread."""
        self.done = True
        self.serving.wake()

    def is_done(self) -> bool:
        return self.done

    def detach(self) -> None:
        """In the waiting thread, once done: the parent no longer waits here."""
        parent = self.parent
        if parent is not None and parent.inner is self:
            parent.inner = None


def wait_for_coroutine(
    call: CoroutineCall, start: Callable[[], object], give_up: Callable[[], object]
) -> None:
    """
    In the calling thread: ``start()`` the coroutine, then serve thread-sensitive
    work until ``call`` is done.

    Interrupted (Ctrl-C's KeyboardInterrupt, or any exception raised in this
    thread while it waits), it cancels the coroutine and waits for it to unwind,
    then re-raises. Interrupted again meanwhile, it calls ``give_up()`` and raises
    at once: the coroutine may still be running then.
    """
    serving = call.serving
    try:
        try:
            start()
            serving.serve(call.is_done, call.watch)
        except BaseException:
            if not call.scheduled:
                raise
            call.cancel()
            if not call.accepted:
                assert call.handle is not None
                call.handle._schedule(call._confirm_start)
            try:
                serving.serve(call.is_done, call.watch)
            except BaseException:
                give_up()
                raise
            raise
    finally:
        call.detach()
        serving.finish()


def restore_exception(exc: BaseException | None) -> object:
    """Show ``exc`` in sys.exception() in the current frame; returns what to restore."""
    handled = sys.exception()
    _set_handled(exc)
    return handled


def reset_exception(handled: object) -> None:
    """Undo :func:`restore_exception`."""
    _set_handled(handled)
