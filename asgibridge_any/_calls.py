# The records that travel between an event loop and a thread for one bridge call.
#
# ThreadCall is one ``await sync_to_async(f)()``: built on the loop, run on a thread,
# finished back on the loop. CoroutineCall is one ``async_to_sync(f)()``: built on the
# blocked sync thread, run as a task on a loop. Both are plain slotted objects so the
# hot path allocates one small record and nothing else; the loop-specific waiting
# lives in _backends.
from __future__ import annotations

import sys
import threading
from contextvars import Context, ContextVar
from typing import TYPE_CHECKING, Any

from sniffio import current_async_library_cvar as _library_var

from . import _context

_get_ident = threading.get_ident

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._backends import LoopHandle
    from .current_thread_executor import CurrentThreadExecutor


class _ThreadState(threading.local):
    #: The ThreadCall whose function this thread is running right now, if any.
    call: ThreadCall | None = None


thread_state = _ThreadState()

#: The CurrentThreadExecutor of the nearest sync thread blocked in async_to_sync
#: above the current code; thread-sensitive calls go there first.
sensitive_executor: ContextVar[CurrentThreadExecutor | None] = ContextVar(
    "asgibridge_any.sensitive_executor"
)
#: The thread-sensitive ThreadCall running the current sync code, if any: lets a call
#: that would need this very thread while it is busy fail instead of hanging.
running_call: ContextVar[ThreadCall | None] = ContextVar("asgibridge_any.running_call")


class ThreadCall:
    """One ``sync_to_async`` invocation, run by whichever thread takes it."""

    __slots__ = (
        "args",
        "cancel_requested",
        "context",
        "exc",
        "finished",
        "func",
        "handle",
        "inner_cancel",
        "kwargs",
        "ok",
        "source",
        "target",
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
    ) -> None:
        self.handle = handle
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.context = context
        #: The lane or executor a thread-sensitive call runs on (None otherwise).
        self.target = target
        self.exc = sys.exception()
        #: The caller's thread: the function sees the Local values the caller saw.
        self.source = _get_ident()
        self.finished = False
        self.ok = False
        self.value: Any = None
        self.waiter: Any = None
        self.cancel_requested = False
        #: Cancels the coroutine this call's thread is blocked on in async_to_sync.
        self.inner_cancel: Callable[[], object] | None = None

    def run(self) -> None:
        """Run the function in this thread and hand the outcome to the loop."""
        state = thread_state
        previous = state.call
        state.call = self
        try:
            if self.target is None and self.exc is None and not _context.TAG_THREADS:
                self.value = self.context.run(self.func, *self.args, **self.kwargs)
            else:
                self.value = self.context.run(self._run_in_context)
            self.ok = True
        except BaseException as exc:
            self.value = exc
        finally:
            state.call = previous
        self.finished = True
        self.handle.wake(self)

    def _run_in_context(self) -> Any:
        adopted = _context.adopt(self.source)
        marker = running_call.set(self) if self.target is not None else None
        # Sync code runs in no async library, whatever anyio.run told sniffio.
        library = _library_var.set(None) if _library_var.get() is not None else None
        try:
            if self.exc is not None:
                # Re-raise the caller's exception so sys.exc_info() shows it here.
                try:
                    raise self.exc
                except BaseException:
                    return self.func(*self.args, **self.kwargs)
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

    def outcome(self) -> Any:
        if self.ok:
            return self.value
        raise self.value


class CoroutineCall:
    """One ``async_to_sync`` invocation: its outcome and the thread waiting for it."""

    __slots__ = ("done", "executor", "ok", "value")

    def __init__(self, executor: CurrentThreadExecutor) -> None:
        self.executor = executor
        self.done = False
        self.ok = False
        self.value: Any = None

    def settle(self, ok: bool, value: Any) -> None:
        # Called on the loop thread; wakes the blocked sync thread.
        self.ok = ok
        self.value = value
        self.done = True
        self.executor._wake()

    def is_done(self) -> bool:
        return self.done

    def outcome(self) -> Any:
        if self.ok:
            return self.value
        raise self.value
