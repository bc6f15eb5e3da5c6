# Where a thread-sensitive call runs, and the two context managers that steer it.
#
# Precedence for a thread-sensitive sync_to_async call: the CurrentThreadExecutor of
# a sync thread blocked in async_to_sync further up (sensitive_executor), then the
# innermost ThreadSensitiveContext's thread (or its executor), then the process-wide
# lane. AsyncSingleThreadContext does the same job for async_to_sync's loop thread.
# Kept apart from sync.py so the public module stays the API and its wrappers.
from __future__ import annotations

import os
import weakref
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Self

from . import _limits, _loops, _threads
from ._backends import worker_origin
from ._calls import ThreadCall, running_call, sensitive_executor

if TYPE_CHECKING:
    from concurrent.futures import Executor
    from contextvars import Context, Token
    from types import TracebackType

    from ._backends import LoopHandle, LoopThread
    from ._backends._base import CoroutineFactory
    from ._calls import CoroutineCall
    from ._serving import Serving, WorkItem

#: The innermost ThreadSensitiveContext the current code runs in.
thread_sensitive_context: ContextVar[ThreadSensitiveContext] = ContextVar(
    "asgibridge_any.thread_sensitive_context"
)
#: The thread of each ThreadSensitiveContext (without an executor) in use; weak, so a
#: context that is gone takes its entry with it.
context_lanes: weakref.WeakKeyDictionary[ThreadSensitiveContext, _threads.Lane] = (
    weakref.WeakKeyDictionary()
)
#: The outermost AsyncSingleThreadContext the current code runs in.
single_thread_context: ContextVar[AsyncSingleThreadContext] = ContextVar(
    "asgibridge_any.asyncsingle_thread_context"
)


class ThreadSensitiveContext:
    """
    Give the thread-sensitive calls inside this block a thread of their own.

    Without a context, every thread-sensitive call that no outer sync thread claims
    runs on one process-wide thread. ``async with ThreadSensitiveContext():`` makes
    the calls inside the block (including tasks started in it) share one thread of
    their own instead, so two requests, each in its own context, don't queue behind
    each other. Nested contexts: the outermost wins. Leaving the block releases the
    thread without waiting for it, even if it is still busy.

    With ``executor``, the block uses that single-thread executor instead, even
    inside another context or below ``async_to_sync``. The caller owns it: it is not
    shut down on exit. Such a context can be entered only once, and a task that
    outlives it gets :exc:`RuntimeError` on its next thread-sensitive call.

    :param executor: a ``concurrent.futures.Executor`` running one call at a time on
        one thread (for example ``ThreadPoolExecutor(max_workers=1)``)
    """

    def __init__(self, *, executor: Executor | None = None) -> None:
        self._executor = executor
        self._token: Token[ThreadSensitiveContext] | None = None
        self._hidden: Token[Serving | None] | None = None
        self._exited = False

    async def __aenter__(self) -> Self:
        if self._executor is not None:
            if self._token is not None:
                raise RuntimeError("this ThreadSensitiveContext is already entered")
            if self._exited:
                raise RuntimeError(
                    "a ThreadSensitiveContext with an executor cannot be entered "
                    "again; create a new one"
                )
            self._token = thread_sensitive_context.set(self)
            # An outer sync thread would otherwise take precedence: hide it so the
            # block's calls go to the given executor.
            self._hidden = sensitive_executor.set(None)
        elif thread_sensitive_context.get(None) is None:
            self._token = thread_sensitive_context.set(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is None:
            return
        if self._hidden is not None:
            sensitive_executor.reset(self._hidden)
            self._hidden = None
        thread_sensitive_context.reset(self._token)
        self._token = None
        if self._executor is not None:
            self._exited = True
        else:
            lane = context_lanes.pop(self, None)
            if lane is not None:
                lane.close()

    def _target(self) -> _threads.Lane | Executor | _limits.PendingContextThread:
        if self._executor is not None:
            if self._exited:
                raise RuntimeError(
                    "ThreadSensitiveContext has exited: tasks started inside a "
                    "context with an executor must finish before it exits"
                )
            return self._executor
        lane = context_lanes.get(self)
        if lane is None:
            # Also for a task that outlived its context: a fresh thread of its own,
            # never the process-wide one, closed at the latest when no task can
            # reach the context any more. Operability: _limits starts it, counted
            # against the context thread cap, or hands out a stand-in to wait on.
            return _limits.context_lane(self, context_lanes)
        return lane


class AsyncSingleThreadContext:
    """
    Run every ``async_to_sync`` call inside this block on one and the same loop thread.

    Useful when async code keeps loop-bound state (a connection pool, say) between
    calls. Re-entrant: the outermost block decides. Calls made from a thread that
    ``sync_to_async`` started still go to the loop that started it.
    """

    def __init__(self) -> None:
        self._token: Token[AsyncSingleThreadContext] | None = None
        self._threads: dict[str, LoopThread] = {}

    def __enter__(self) -> Self:
        if single_thread_context.get(None) is None:
            self._token = single_thread_context.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is None:
            return
        single_thread_context.reset(self._token)
        self._token = None
        threads, self._threads = self._threads, {}
        for thread in threads.values():
            _loops.pool.release(thread)

    def _thread_for(self, backend: str) -> LoopThread:
        thread = self._threads.get(backend)
        if thread is not None and not thread.is_alive():
            self._threads.pop(backend, None)
            thread = None
        if thread is None:
            # Two threads may run in this block at once: the first thread stored wins.
            fresh = _loops.pool.acquire(backend)
            thread = self._threads.setdefault(backend, fresh)
            if thread is not fresh:
                _loops.pool.release(fresh)
        return thread

    def _retire(self, thread: LoopThread) -> None:
        # A call on ``thread`` was given up (interrupted twice): the thread stops
        # once its calls are over, and the block's next call gets a fresh one.
        if self._threads.get(thread.backend) is thread:
            del self._threads[thread.backend]
        thread.stop()


class CoroutinePlacement:
    """
    Where one async_to_sync call's coroutine runs, and what is given back after.

    The loop that started the calling thread (unless ``force_new_loop``), else the
    AsyncSingleThreadContext's loop thread, else a loop thread borrowed from the pool.
    """

    __slots__ = (
        "_backend",
        "_call",
        "_force_new_loop",
        "_gave_up",
        "_host_cancelled",
        "_single",
        "_thread",
    )

    def __init__(self, backend: str, force_new_loop: bool) -> None:
        self._backend = backend
        self._force_new_loop = force_new_loop
        self._thread: LoopThread | None = None
        self._single: AsyncSingleThreadContext | None = None
        self._gave_up = False
        self._call: CoroutineCall | None = None
        #: What check_cancelled raised when the worker thread's host was cancelled.
        self._host_cancelled: BaseException | None = None

    def start(
        self, call: CoroutineCall, factory: CoroutineFactory, context: Context
    ) -> None:
        """Start ``factory()`` for ``call``; marks the call scheduled once it is."""
        if not self._force_new_loop:
            origin = self._origin(call)
            if origin is not None and origin.pid == os.getpid():
                call.attach(origin)
                call.scheduled = True
                if origin.start_task(call, factory, context):
                    return
                call.scheduled = False
                call.watch = None
        single = self._single = single_thread_context.get(None)
        if single is not None:
            thread = self._thread = single._thread_for(self._backend)
        else:
            thread = self._thread = _loops.pool.acquire(self._backend)
        call.attach(thread.handle)
        call.scheduled = True
        try:
            thread.run_call(call, factory, context)
        except RuntimeError:
            call.scheduled = False  # the loop had stopped: nothing was started
            raise

    def _origin(self, call: CoroutineCall) -> LoopHandle | None:
        # The loop that started this thread: through sync_to_async, or through
        # anyio's or trio's to_thread (whose cancellation is then watched for).
        if call.parent is not None:
            return call.parent.handle
        found = worker_origin()
        if found is None:
            return None
        handle, check_cancelled = found
        self._call = call

        def watch() -> None:
            try:
                check_cancelled()
            except BaseException as exc:
                if self._host_cancelled is None:
                    self._host_cancelled = exc
                call.cancel()

        call.watch = watch
        return handle

    def give_up(self) -> None:
        """The caller stopped waiting: the loop thread may still run the coroutine."""
        self._gave_up = True

    def end(self) -> None:
        """Give the loop thread back, or retire it if the call was given up."""
        self._hand_back_host_cancellation()
        thread = self._thread
        if thread is None:
            return
        if self._gave_up:
            if self._single is not None:
                self._single._retire(thread)
            else:
                thread.stop()
        elif self._single is None:
            _loops.pool.release(thread)

    def _hand_back_host_cancellation(self) -> None:
        # The coroutine ended with the cancellation the watch caused: raise the host's
        # own instead. anyio's cancel scopes on asyncio only catch a CancelledError
        # that carries their message; the task's plain one would escape the scope
        # around the to_thread call once the thread re-raises it.
        cause, call = self._host_cancelled, self._call
        if cause is None or call is None or call.ok:
            return
        error = call.value
        if isinstance(error, type(cause)) and error is not cause:
            cause.__context__ = error
            call.value = cause.with_traceback(error.__traceback__)


def deadlock_check(target: object) -> None:
    running = running_call.get(None)
    if running is not None and running.target is target and not running.finished:
        raise RuntimeError(
            "thread-sensitive call would deadlock: the only thread that may run it "
            "is blocked waiting for this very call (for example a sync function on "
            "the sensitive thread waiting on the event loop without async_to_sync); "
            "call async code from sync code through async_to_sync instead"
        )


def reroute(item: WorkItem) -> None:
    """
    Run a thread-sensitive call that reached a sync thread after it stopped waiting.

    It goes where it would have gone a moment later: the ThreadSensitiveContext's
    thread or the process-wide one (a late call from a task that outlived its
    async_to_sync).
    """
    if not isinstance(item, ThreadCall):
        item.abandon(RuntimeError("the serving thread stopped waiting"))
        return
    context = item.context.get(thread_sensitive_context)
    try:
        target = context._target() if context is not None else _threads.default_lane
    except RuntimeError as exc:
        item.abandon(exc)
        return
    item.target = target
    if isinstance(target, (_threads.Lane, _limits.PendingContextThread)):
        target.submit_item(item)
    else:
        target.submit(item.run)


def sensitive_target() -> Any:
    # The thread a thread-sensitive call must run on, in order of precedence.
    serving = sensitive_executor.get(None)
    if serving is not None:
        live = serving.live()
        if live is not None:
            deadlock_check(live)
            return live
    context = thread_sensitive_context.get(None)
    target = context._target() if context is not None else _threads.default_lane
    deadlock_check(target)
    return target
