"""An executor that runs work in the thread that created it, while that thread waits."""

from __future__ import annotations

__all__ = ("CurrentThreadExecutor",)

import threading
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ._serving import FutureItem, Serving

if TYPE_CHECKING:
    from collections.abc import Callable

_P = ParamSpec("_P")
_R = TypeVar("_R")


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

    _serving: Serving

    def __init__(self, old_executor: CurrentThreadExecutor | None = None) -> None:
        outer = None if old_executor is None else old_executor._serving
        self._serving = Serving(outer)
        self._serving.facade = self

    @classmethod
    def _wrap(cls, serving: Serving) -> CurrentThreadExecutor:
        # The view of the bridge's own serving queue (AsyncToSync.executors.current):
        # one per queue, so that asking twice gives the same object.
        executor: CurrentThreadExecutor | None = serving.facade
        if executor is None:
            executor = serving.facade = cls.__new__(cls)
            executor._serving = serving
        return executor

    @property
    def finished(self) -> bool:
        """Whether the serving thread has stopped taking work from this executor."""
        return self._serving.finished

    def run_until_future(self, future: Future[Any]) -> None:
        """
        Run submitted work in this thread until ``future`` is done.

        :param future: the future whose completion ends the loop
        :raises RuntimeError: if called from a thread other than the creating one
        """
        serving = self._serving
        if threading.get_ident() != serving.thread_id:
            raise RuntimeError(
                "CurrentThreadExecutor.run_until_future() must be called from the "
                "thread that created the executor"
            )
        future.add_done_callback(lambda _: serving.wake())
        try:
            serving.serve(future.done)
        finally:
            serving.finish()

    def submit(
        self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> Future[_R]:
        """
        Schedule ``fn(*args, **kwargs)`` to run in the executor's thread.

        :returns: a future for the call's result
        :raises RuntimeError: when called from the executor's own thread (it would
            wait for itself), or when the executor finished and has no outer one
        """
        serving = self._serving
        if threading.get_ident() == serving.thread_id:
            raise RuntimeError(
                "cannot submit to a CurrentThreadExecutor from its own thread: the "
                "work would wait for itself; call the function directly instead"
            )
        if serving.live() is None:
            raise RuntimeError(
                "CurrentThreadExecutor already quit or is broken: its thread stopped "
                "serving work and there is no outer executor"
            )
        future: Future[_R] = Future()
        serving.submit_item(FutureItem(future, fn, args, kwargs))
        return future
