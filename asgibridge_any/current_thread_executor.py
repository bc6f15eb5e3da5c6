"""An executor that runs work in the thread that created it, while that thread waits."""

from __future__ import annotations

__all__ = ("CurrentThreadExecutor",)

import threading
from concurrent.futures import Executor, Future
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

_P = ParamSpec("_P")
_R = TypeVar("_R")


class _WorkItem(Protocol):
    """What the executor queue holds: something to run, or to fail if nobody will."""

    def run(self) -> None: ...

    def abandon(self, exc: BaseException) -> None: ...


class _FutureItem:
    # Adapts a plain ``submit(fn, *args)`` to the work-item protocol.
    __slots__ = ("args", "fn", "future", "kwargs")

    def __init__(
        self,
        future: Future[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)

    def abandon(self, exc: BaseException) -> None:
        if self.future.set_running_or_notify_cancel():
            self.future.set_exception(exc)


#: Put on the queue to wake the serving thread once its future is done.
_WAKE = None


class CurrentThreadExecutor(Executor):
    """
    Run submitted work in the thread that created this executor.

    The creating thread lends itself out while it is blocked: it calls
    :meth:`run_until_future` and runs every submitted item until that future is done.
    This is how a sync thread that waits in ``async_to_sync`` still serves the
    thread-sensitive ``sync_to_async`` calls made below it.

    Once the serving thread has finished, new work goes to ``old_executor`` (the
    executor of an outer wait in the same thread), or fails with :exc:`RuntimeError`
    when there is none.

    :param old_executor: the executor to forward work to after this one finished
    """

    def __init__(self, old_executor: CurrentThreadExecutor | None = None) -> None:
        self._thread_id = threading.get_ident()
        self._queue: SimpleQueue[_WorkItem | None] = SimpleQueue()
        self._finished = False
        self._old_executor = old_executor

    @property
    def finished(self) -> bool:
        """Whether the serving thread has stopped taking work from this executor."""
        return self._finished

    def _live(self) -> CurrentThreadExecutor | None:
        # The nearest executor in the chain that still serves work, if any.
        executor: CurrentThreadExecutor | None = self
        while executor is not None and executor._finished:
            executor = executor._old_executor
        return executor

    def run_until_future(self, future: Future[Any]) -> None:
        """
        Run submitted work in this thread until ``future`` is done.

        :param future: the future whose completion ends the loop
        :raises RuntimeError: if called from a thread other than the creating one
        """
        if threading.get_ident() != self._thread_id:
            raise RuntimeError(
                "CurrentThreadExecutor.run_until_future() must be called from the "
                "thread that created the executor"
            )
        future.add_done_callback(lambda _: self._wake())
        self._serve(future.done)

    def _serve(self, done: Callable[[], bool]) -> None:
        # Runs work until a _WAKE arrives while ``done()`` holds; then forwards
        # anything that raced in to the outer executor.
        get = self._queue.get
        try:
            while True:
                item = get()
                if item is _WAKE:
                    if done():
                        break
                    continue
                item.run()
        finally:
            self._finished = True
            self._drain()

    def _wake(self) -> None:
        # Called from any thread once the awaited result is in.
        self._queue.put(_WAKE)

    def _drain(self) -> None:
        queue = self._queue
        while not queue.empty():
            try:
                item = queue.get_nowait()
            except Empty:  # another thread drained it first
                return
            if item is not _WAKE:
                self._forward(item)

    def _forward(self, item: _WorkItem) -> None:
        if self._old_executor is not None:
            self._old_executor._submit_item(item)
        else:
            item.abandon(
                RuntimeError(
                    "CurrentThreadExecutor has already finished and has no outer "
                    "executor to pass work to"
                )
            )

    def _submit_item(self, item: _WorkItem) -> None:
        if self._finished:
            self._forward(item)
            return
        self._queue.put(item)
        # The serving thread may have finished between the check and the put: its
        # final drain could have missed this item, so drain again (each item is
        # taken by exactly one get).
        if self._finished:
            self._drain()

    def submit(
        self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> Future[_R]:
        """
        Schedule ``fn(*args, **kwargs)`` to run in the executor's thread.

        :returns: a future for the call's result
        :raises RuntimeError: when called from the executor's own thread (it would
            wait for itself), or when the executor finished and has no outer one
        """
        if threading.get_ident() == self._thread_id:
            raise RuntimeError(
                "cannot submit to a CurrentThreadExecutor from its own thread: the "
                "work would wait for itself; call the function directly instead"
            )
        if self._live() is None:
            _raise_finished()
        future: Future[_R] = Future()
        self._submit_item(_FutureItem(future, fn, args, kwargs))
        return future


def _raise_finished() -> NoReturn:
    raise RuntimeError(
        "CurrentThreadExecutor already quit or is broken: its thread stopped serving "
        "work and there is no outer executor"
    )
