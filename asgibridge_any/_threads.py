# Reusable threads that run sync work for the bridge.
#
# Two kinds: a pool of worker threads for thread_sensitive=False calls (grows on
# demand, idle workers wait for the next item and exit after a while), and
# single-thread lanes for thread-sensitive calls (one process-wide lane, plus one per
# ThreadSensitiveContext). Both are fed lock-free: each worker has its own inbox and
# idle workers sit on a deque, whose append/pop are atomic.
from __future__ import annotations

import os
import threading
import time
from collections import deque
from concurrent.futures import Executor, Future
from queue import SimpleQueue
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from .current_thread_executor import _FutureItem

if TYPE_CHECKING:
    from collections.abc import Callable

    from .current_thread_executor import _WorkItem

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: Seconds an idle pool worker is kept before it is told to exit.
IDLE_TIMEOUT = 10.0
_monotonic = time.monotonic


class _PoolThread(threading.Thread):
    """A thread owned by this package that may sit idle between calls."""

    def is_idle(self) -> bool:
        raise NotImplementedError


def thread_is_idle(thread: threading.Thread) -> bool:
    """Tell whether ``thread`` is one of this package's threads, waiting for work."""
    return isinstance(thread, _PoolThread) and thread.is_idle()


class _Worker(_PoolThread):
    def __init__(self, pool: WorkerPool) -> None:
        super().__init__(name="asgibridge_any worker", daemon=True)
        self._pool = pool
        self.inbox: SimpleQueue[_WorkItem | None] = SimpleQueue()
        self.busy = True
        self.idle_since = 0.0

    def is_idle(self) -> bool:
        return not self.busy

    def run(self) -> None:
        idle = self._pool.idle
        # Untimed waits: a timed SimpleQueue.get wakes measurably slower, and this
        # wait is on every call's path. Idle workers are retired by WorkerPool.submit.
        get = self.inbox.get
        item = get()
        while item is not None:
            item.run()
            del item
            self.busy = False
            self.idle_since = _monotonic()
            idle.append(self)
            item = get()


class WorkerPool:
    """
    Threads for ``thread_sensitive=False`` calls; callers bound the concurrency.

    Each worker has its own inbox; idle workers wait on a deque (its append and pop
    are atomic, so dispatching takes no lock). The most recently idle worker is
    reused first; the one idle longest is told to exit once it has been idle for
    :data:`IDLE_TIMEOUT` seconds, checked whenever work is submitted.
    """

    def __init__(self) -> None:
        self.idle: deque[_Worker] = deque()

    def submit(self, item: _WorkItem) -> None:
        idle = self.idle
        try:
            worker = idle.pop()
        except IndexError:
            worker = _Worker(self)
            worker.inbox.put(item)
            worker.start()
            return
        worker.busy = True
        worker.inbox.put(item)
        if idle:
            self._retire_stale(idle)

    @staticmethod
    def _retire_stale(idle: deque[_Worker]) -> None:
        try:
            oldest = idle[0]
        except IndexError:
            return
        if _monotonic() - oldest.idle_since > IDLE_TIMEOUT:
            try:
                idle.remove(oldest)
            except ValueError:
                return  # another dispatcher took it meanwhile
            oldest.inbox.put(None)


_STOP = None


class _LaneThread(_PoolThread):
    def __init__(self, name: str, queue: SimpleQueue[_WorkItem | None]) -> None:
        super().__init__(name=name, daemon=True)
        self.queue = queue
        self.busy = False

    def is_idle(self) -> bool:
        return not self.busy and self.queue.empty()

    def run(self) -> None:
        get = self.queue.get
        while True:
            self.busy = not self.queue.empty()
            item = get()
            self.busy = True
            if item is _STOP:
                self.busy = False
                return
            item.run()
            del item


class Lane(Executor):
    """
    A single-thread executor: runs submitted work in order, one item at a time.

    The thread starts on first use. :meth:`close` lets it finish what was queued and
    exit without waiting for it; :meth:`shutdown` waits (by default).
    """

    def __init__(self, name: str) -> None:
        self._queue: SimpleQueue[_WorkItem | None] = SimpleQueue()
        self.thread = _LaneThread(name, self._queue)
        self._start_lock = threading.Lock()
        self._launched = False
        self._closed = False

    def _submit_item(self, item: _WorkItem) -> None:
        if self._closed:
            item.abandon(RuntimeError(f"{self.thread.name} has been shut down"))
            return
        self.thread.busy = True
        self._queue.put(item)
        if not self._launched:
            with self._start_lock:
                if not self._launched:
                    self._launched = True
                    self.thread.start()

    def submit(
        self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> Future[_R]:
        """Schedule ``fn(*args, **kwargs)`` on the lane's thread."""
        if self._closed:
            raise RuntimeError("cannot schedule new work after shutdown")
        future: Future[_R] = Future()
        self._submit_item(_FutureItem(future, fn, args, kwargs))
        return future

    @property
    def closed(self) -> bool:
        """Whether the lane stopped taking work."""
        return self._closed

    def close(self) -> None:
        """Stop taking work; the thread exits once the queue is empty."""
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            if self._launched:
                self._queue.put(_STOP)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work and, with ``wait``, join the thread."""
        self.close()
        if wait and self._launched:
            self.thread.join()


#: Runs every thread-sensitive call that no outer context claims.
default_lane = Lane("asgibridge_any sensitive")
worker_pool = WorkerPool()


def _after_fork_in_child() -> None:
    # Threads don't survive fork(): start over with fresh, unstarted ones.
    global default_lane, worker_pool
    default_lane = Lane("asgibridge_any sensitive")
    worker_pool = WorkerPool()


os.register_at_fork(after_in_child=_after_fork_in_child)
