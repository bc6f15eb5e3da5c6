"""
Bridges between sync and async code: :func:`sync_to_async` and :func:`async_to_sync`.

Both work under asyncio and trio. Thread-sensitive calls keep asgiref's guarantee:
sync code called from async code that was itself called from a sync thread runs in
that very thread (it serves the work while it waits), so sync → async → sync lands
back where it started.
"""

from __future__ import annotations

__all__ = (
    "AsyncSingleThreadContext",
    "AsyncToSync",
    "SyncToAsync",
    "ThreadSensitiveContext",
    "async_to_sync",
    "get_context_thread_limit",
    "iscoroutinefunction",
    "markcoroutinefunction",
    "set_context_thread_limit",
    "sync_to_async",
)

import functools
import sys
import threading
from contextvars import ContextVar, copy_context
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Concatenate,
    Generic,
    ParamSpec,
    Self,
    TypeVar,
    overload,
)

from sniffio import current_async_library_cvar as _library_var

from . import _context, _hooks, _limits, _loops, _threads
from ._backends import current_handle, in_loop_thread
from ._calls import (
    CoroutineCall,
    ThreadCall,
    reset_exception,
    restore_exception,
    run_in_thread,
    running_call,
    sensitive_executor,
    thread_state,
    wait_for_coroutine,
)
from ._coroutines import (
    is_async_callable,
    iscoroutinefunction,
    mark_instance,
    markcoroutinefunction,
)
from ._limits import get_context_thread_limit, set_context_thread_limit
from ._routing import (
    AsyncSingleThreadContext,
    CoroutinePlacement,
    ThreadSensitiveContext,
    context_lanes,
    reroute,
    sensitive_target,
    single_thread_context,
    thread_sensitive_context,
)
from ._serving import Serving
from ._tokens import queue_for
from ._wrapping import WrapsCallable, warn_caller
from .current_thread_executor import CurrentThreadExecutor

if TYPE_CHECKING:
    import weakref
    from collections.abc import Awaitable, Callable, Coroutine
    from concurrent.futures import Executor
    from contextvars import Context

    import anyio


_P = ParamSpec("_P")
_Q = ParamSpec("_Q")
_R = TypeVar("_R")
_T = TypeVar("_T")


def _submit_to_executor(executor: Executor) -> Callable[[ThreadCall], None]:
    def submit(call: ThreadCall) -> None:
        executor.submit(call.run)

    return submit


def _call_child(child: Callable[[], _R]) -> _R:
    return child()


#: Executors fed work items directly through ``submit_item`` (no Future per call).
_OWN_EXECUTORS = (Serving, _threads.Lane)

# Defined in _routing, public here.
ThreadSensitiveContext.__module__ = __name__
AsyncSingleThreadContext.__module__ = __name__
set_context_thread_limit.__module__ = __name__
get_context_thread_limit.__module__ = __name__


class _CurrentExecutorView:
    """Read-only view of the executor of the sync thread waiting further up."""

    __slots__ = ()

    @property
    def current(self) -> CurrentThreadExecutor | None:
        serving = sensitive_executor.get(None)
        return None if serving is None else CurrentThreadExecutor._wrap(serving)


class SyncToAsync(WrapsCallable, Generic[_P, _R]):
    """
    An awaitable wrapper around a sync callable; see :func:`sync_to_async`.

    Subclasses may override :meth:`thread_handler` to wrap every call on its thread.
    """

    __name__: str
    __qualname__: str
    __wrapped__: Callable[_P, _R]

    #: The innermost :class:`ThreadSensitiveContext` (asgiref's name for it).
    thread_sensitive_context: ClassVar[ContextVar[ThreadSensitiveContext]] = (
        thread_sensitive_context
    )
    #: The thread of each active :class:`ThreadSensitiveContext` without an executor.
    context_to_thread_executor: ClassVar[
        weakref.WeakKeyDictionary[ThreadSensitiveContext, _threads.Lane]
    ] = context_lanes

    def __init__(
        self,
        func: Callable[_P, _R],
        thread_sensitive: bool = True,
        executor: Executor | None = None,
        context: Context | None = None,
        *,
        limiter: anyio.CapacityLimiter | None = None,
        abandon_on_cancel: bool = False,
    ) -> None:
        if not callable(func) or is_async_callable(func):
            error = TypeError("sync_to_async can only be applied to sync functions.")
            error.add_note(
                f"got {func!r}: await an async function directly instead of wrapping "
                "it, and pass a plain function or callable object otherwise"
            )
            raise error
        if thread_sensitive and executor is not None:
            raise TypeError(
                "sync_to_async(): executor must not be set when thread_sensitive=True; "
                "pass thread_sensitive=False to run on your executor"
            )
        if limiter is not None and (thread_sensitive or executor is not None):
            raise TypeError(
                "sync_to_async(): limiter only applies to thread_sensitive=False calls "
                "without an executor"
            )
        self.func = func
        # Code builds a wrapper per call (``await sync_to_async(f)()``), so the rest of
        # functools.update_wrapper's copying is done on demand (WrapsCallable).
        self.__doc__ = func.__doc__
        self.__module__ = getattr(func, "__module__", None)  # type: ignore[assignment]
        self.context = context
        self._thread_sensitive = thread_sensitive
        self._executor = executor
        self._limiter = limiter
        self._abandon = abandon_on_cancel
        self._custom_handler = (
            type(self).thread_handler is not SyncToAsync.thread_handler
        )
        mark_instance(self)

    async def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """
        Run the function in another thread and return its result.

        See :func:`sync_to_async` for which thread, context variables and cancellation.
        """
        handle = current_handle()
        call: ThreadCall | None = None
        context = copy_context() if self.context is None else self.context
        func: Callable[..., Any] = self.func
        exc = sys.exception()
        if self._custom_handler:
            func, args, kwargs = self._handler_call(handle, exc, args, kwargs)  # type: ignore[assignment]
            exc = None  # the handler shows it
        try:
            if self._thread_sensitive:
                target = sensitive_target()
                if target.__class__ is _limits.PendingContextThread:
                    # Operability: the context thread cap is reached (see _limits).
                    target = await target.wait()
                call = ThreadCall(handle, func, args, kwargs, context, target, exc)
                dispatch: Callable[[ThreadCall], None]
                if isinstance(target, _OWN_EXECUTORS):
                    dispatch = target.submit_item
                else:
                    dispatch = _submit_to_executor(target)
                await run_in_thread(handle, call, dispatch, self._abandon)
            elif self._executor is not None:
                call = ThreadCall(handle, func, args, kwargs, context, None, exc)
                await run_in_thread(
                    handle, call, _submit_to_executor(self._executor), self._abandon
                )
            else:
                limiter = self._limiter or handle.default_limiter()
                call = ThreadCall(handle, func, args, kwargs, context, None, exc)
                await run_in_thread(
                    handle, call, queue_for(limiter, handle).submit, self._abandon
                )
        finally:
            if self.context is None and (call is None or not call.abandoned):
                _context.copy_back(context)
        if call.ok:
            return call.value  # type: ignore[no-any-return]
        raise call.value

    def _handler_call(
        self,
        handle: Any,
        exc: BaseException | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        # Route the call through an overridden thread_handler, as asgiref does: it
        # receives the caller's exc_info, and the call as a functools.partial of the
        # wrapped function.
        child = functools.partial(self.func, *args, **kwargs)
        loop = handle.asyncio_loop
        exc_info = (
            (None, None, None) if exc is None else (type(exc), exc, exc.__traceback__)
        )
        return self.thread_handler, (loop, exc_info, None, _call_child, child), {}

    def thread_handler(
        self,
        loop: Any,
        exc_info: tuple[Any, Any, Any],
        task_context: Any,
        func: Callable[..., _R],
        *args: Any,
        **kwargs: Any,
    ) -> _R:
        """
        Run ``func(*args, **kwargs)`` on the worker thread; override to wrap each call.

        Called only when a subclass overrides it (the plain path skips it).
        ``exc_info`` is the caller's ``sys.exc_info()``; this default shows it in
        ``sys.exc_info()`` around the call (without raising it again, so its
        traceback stays as the caller left it).
        """
        if exc_info[1] is None:
            return func(*args, **kwargs)
        handled = restore_exception(exc_info[1])
        try:
            result = func(*args, **kwargs)
        except BaseException as error:
            failure: BaseException | None = error
        else:
            failure = None
        # Outside the except clause, which would restore what it found on leaving.
        reset_exception(handled)
        if failure is not None:
            raise failure
        return result

    @overload
    def __get__(self, parent: None, objtype: Any = None) -> Self: ...

    @overload
    def __get__(
        self: SyncToAsync[Concatenate[_T, _Q], _R], parent: _T, objtype: Any = None
    ) -> Callable[_Q, Coroutine[Any, Any, _R]]: ...

    def __get__(self, parent: Any, objtype: Any = None) -> Any:
        """Bind as a method when used in a class body."""
        if parent is None:
            return self
        bound = functools.partial(self.__call__, parent)
        return functools.update_wrapper(bound, self.func)


class AsyncToSync(WrapsCallable, Generic[_P, _R]):
    """
    A sync wrapper around an async callable; see :func:`async_to_sync`.
    """

    __name__: str
    __qualname__: str
    __wrapped__: Callable[..., Any]

    #: ``executors.current`` is the :class:`CurrentThreadExecutor` of the sync thread
    #: waiting further up the call chain, or None (asgiref's name for it).
    executors: ClassVar[_CurrentExecutorView] = _CurrentExecutorView()
    #: The outermost :class:`AsyncSingleThreadContext` (asgiref's name for it).
    asyncsingle_thread_context: ClassVar[ContextVar[AsyncSingleThreadContext]] = (
        single_thread_context
    )

    def __init__(
        self,
        awaitable: Callable[_P, Coroutine[Any, Any, _R]] | Callable[_P, Awaitable[_R]],
        force_new_loop: bool = False,
        *,
        backend: str | None = None,
    ) -> None:
        if not callable(awaitable) or not is_async_callable(awaitable):
            # Detection has false negatives (a sync function returning an awaitable
            # is fine), so this only warns.
            warn_caller("async_to_sync was passed a non-async-marked callable")
        self.awaitable = awaitable
        self.func = awaitable
        self.__doc__ = getattr(awaitable, "__doc__", None)
        self.__module__ = getattr(awaitable, "__module__", None)  # type: ignore[assignment]
        self.force_new_loop = force_new_loop
        self.backend = _loops.validate_backend(backend)

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """
        Run the coroutine to completion and return its result, from sync code.

        :raises RuntimeError: when called in a thread that runs an event loop
        """
        if in_loop_thread():
            raise RuntimeError(
                "You cannot use async_to_sync in a thread that runs an event loop: "
                "just await the async function directly"
            )
        context = copy_context()
        serving = Serving(context.get(sensitive_executor), fallback=reroute)
        call = CoroutineCall(serving, thread_state.call)
        main = functools.partial(
            self._main, call, args, kwargs, sys.exception(), threading.get_ident()
        )
        placement = CoroutinePlacement(self.backend, self.force_new_loop)
        try:
            wait_for_coroutine(
                call,
                functools.partial(placement.start, call, main, context),
                placement.give_up,
            )
        finally:
            placement.end()
        _context.copy_back(context)
        if call.ok:
            return call.value  # type: ignore[no-any-return]
        raise call.value

    async def _main(
        self,
        call: CoroutineCall,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        exc: BaseException | None,
        source: int,
    ) -> None:
        # Runs as a task on the loop, in the caller's copied context.
        marker = sensitive_executor.set(call.serving)
        # Below here the waiting thread serves thread-sensitive calls itself.
        running = running_call.set(None)
        adopted = _context.adopt(source)
        # The caller's context may name another async library (anyio.run sets it).
        library = _library_var.set(None) if _library_var.get() is not None else None
        handled = restore_exception(exc) if exc is not None else None
        try:
            if _hooks.hooks:  # operability: hop hooks observe the call (see _hooks)
                result = await _hooks.run_async_hop(call, self.awaitable, args, kwargs)
                call.settle(True, result)
            else:
                call.settle(True, await self.awaitable(*args, **kwargs))
        except BaseException as error:
            call.settle(False, _strip_main(error))
        if exc is not None:
            reset_exception(handled)
        if library is not None:
            _library_var.reset(library)
        running_call.reset(running)
        sensitive_executor.reset(marker)
        _context.unadopt(adopted)

    @overload
    def __get__(self, parent: None, objtype: Any = None) -> Self: ...

    @overload
    def __get__(
        self: AsyncToSync[Concatenate[_T, _Q], _R], parent: _T, objtype: Any = None
    ) -> Callable[_Q, _R]: ...

    def __get__(self, parent: Any, objtype: Any = None) -> Any:
        """Bind as a method when used in a class body."""
        if parent is None:
            return self
        bound = functools.partial(self.__call__, parent)
        return functools.update_wrapper(bound, self.awaitable)


def _strip_main(exc: BaseException) -> BaseException:
    # The traceback starts in AsyncToSync._main: the user's frames follow it.
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code is AsyncToSync._main.__code__:
        exc.__traceback__ = tb.tb_next
    return exc


@overload
def sync_to_async(
    func: Callable[_P, _R],
    *,
    thread_sensitive: bool = ...,
    executor: Executor | None = ...,
    context: Context | None = ...,
    limiter: anyio.CapacityLimiter | None = ...,
    abandon_on_cancel: bool = ...,
) -> SyncToAsync[_P, _R]: ...


@overload
def sync_to_async(
    func: None = None,
    *,
    thread_sensitive: bool = ...,
    executor: Executor | None = ...,
    context: Context | None = ...,
    limiter: anyio.CapacityLimiter | None = ...,
    abandon_on_cancel: bool = ...,
) -> Callable[[Callable[_P, _R]], SyncToAsync[_P, _R]]: ...


def sync_to_async(
    func: Callable[_P, _R] | None = None,
    *,
    thread_sensitive: bool = True,
    executor: Executor | None = None,
    context: Context | None = None,
    limiter: anyio.CapacityLimiter | None = None,
    abandon_on_cancel: bool = False,
) -> SyncToAsync[_P, _R] | Callable[[Callable[_P, _R]], SyncToAsync[_P, _R]]:
    """
    Turn a sync callable into an awaitable one that runs in another thread.

    Use it as ``sync_to_async(f)``, ``@sync_to_async`` or
    ``@sync_to_async(thread_sensitive=False)``; it binds as a method in a class body.

    Which thread runs ``func``:

    - ``thread_sensitive=True`` (the default): if a sync thread further up this call
      chain is blocked in :func:`async_to_sync`, that very thread; otherwise, inside
      :class:`ThreadSensitiveContext`, that context's thread; otherwise one
      process-wide thread, one call at a time. Use it for code that is not
      thread-safe or keeps per-thread state (database connections).
    - ``thread_sensitive=False``: ``executor`` if given, else a reused worker thread;
      at most ``limiter.total_tokens`` of them at once (anyio's default thread
      limiter, 40 tokens, unless you pass ``limiter``).

    ``func`` runs in a copy of the caller's context variables (or in ``context``),
    and every variable it sets is visible to the caller afterwards, also when it
    raises. The caller's current exception shows in ``sys.exc_info()`` inside.

    Cancellation: a thread cannot be interrupted, so a cancelled caller waits for
    ``func`` to finish, then the cancellation propagates (even if ``func`` returned).
    If ``func`` is blocked in :func:`async_to_sync` at that moment, the coroutine it
    waits for is cancelled first, so the whole chain unwinds promptly. With
    ``abandon_on_cancel=True`` the cancellation propagates at once instead: ``func``
    keeps running unobserved, its outcome and context changes are dropped, and it
    keeps its thread (a later thread-sensitive call queues behind it; a
    ``thread_sensitive=False`` call keeps its limiter token until it ends).

    :param func: the sync callable to wrap
    :param thread_sensitive: run on the sensitive thread (see above)
    :param executor: run on this executor; needs ``thread_sensitive=False``
    :param context: run in this context and update it, instead of a copy
    :param limiter: bounds the worker threads of ``thread_sensitive=False`` calls
    :param abandon_on_cancel: on cancellation, return at once and leave ``func``
        running (anyio's and trio's option of that name)
    :raises TypeError: when ``func`` is not a sync callable, or for an executor or
        limiter combined with ``thread_sensitive=True``
    """
    if func is None:

        def decorator(f: Callable[_P, _R]) -> SyncToAsync[_P, _R]:
            return SyncToAsync(
                f,
                thread_sensitive=thread_sensitive,
                executor=executor,
                context=context,
                limiter=limiter,
                abandon_on_cancel=abandon_on_cancel,
            )

        return decorator
    return SyncToAsync(
        func,
        thread_sensitive=thread_sensitive,
        executor=executor,
        context=context,
        limiter=limiter,
        abandon_on_cancel=abandon_on_cancel,
    )


@overload
def async_to_sync(
    awaitable: Callable[_P, Coroutine[Any, Any, _R]] | Callable[_P, Awaitable[_R]],
    *,
    force_new_loop: bool = ...,
    backend: str | None = ...,
) -> AsyncToSync[_P, _R]: ...


@overload
def async_to_sync(
    awaitable: None = None,
    *,
    force_new_loop: bool = ...,
    backend: str | None = ...,
) -> Callable[
    [Callable[_P, Coroutine[Any, Any, _R]] | Callable[_P, Awaitable[_R]]],
    AsyncToSync[_P, _R],
]: ...


def async_to_sync(
    awaitable: Callable[_P, Coroutine[Any, Any, _R]]
    | Callable[_P, Awaitable[_R]]
    | None = None,
    *,
    force_new_loop: bool = False,
    backend: str | None = None,
) -> (
    AsyncToSync[_P, _R]
    | Callable[
        [Callable[_P, Coroutine[Any, Any, _R]] | Callable[_P, Awaitable[_R]]],
        AsyncToSync[_P, _R],
    ]
):
    """
    Turn an async callable into a sync one that runs it to completion.

    Use it as ``async_to_sync(f)``, ``@async_to_sync`` or
    ``@async_to_sync(backend="trio")``; it binds as a method in a class body.

    Where the coroutine runs:

    - called from a thread that :func:`sync_to_async` started (at any depth), or
      that ``anyio.to_thread.run_sync`` or ``trio.to_thread.run_sync`` started, as a
      task on the event loop that started it, asyncio or trio (unless
      ``force_new_loop``); cancelling the outer call cancels the coroutine;
    - otherwise on an event loop in another thread, with ``backend`` ("asyncio", the
      default, or "trio"); loop threads are reused, and nothing a call starts outlives
      it; inside :class:`AsyncSingleThreadContext`, always the same loop thread.

    Either way the calling thread serves thread-sensitive work meanwhile, so sync →
    async → sync lands back on the calling thread. Interrupted while it waits
    (Ctrl-C), it cancels the coroutine and waits for it to unwind before the
    exception propagates; a second interrupt stops the waiting at once. Context variables flow both ways;
    the caller's current exception shows in ``sys.exc_info()``; exceptions propagate
    unchanged.

    :param awaitable: the async callable to wrap (warns if it does not look async)
    :param force_new_loop: never use the loop that started this thread
    :param backend: the loop to start when there is none to use: "asyncio" or "trio"
    :raises ValueError: for an unknown ``backend``
    """
    if awaitable is None:

        def decorator(
            f: Callable[_P, Coroutine[Any, Any, _R]] | Callable[_P, Awaitable[_R]],
        ) -> AsyncToSync[_P, _R]:
            return AsyncToSync(f, force_new_loop=force_new_loop, backend=backend)

        _loops.validate_backend(backend)
        return decorator
    return AsyncToSync(awaitable, force_new_loop=force_new_loop, backend=backend)
