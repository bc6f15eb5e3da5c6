# Reusable threads that run sync work for the bridge.
#
# Two kinds: a pool of worker threads for thread_sensitive=False calls (grows on
# demand; idle workers wait for the next item and exit after IDLE_TIMEOUT), and
# single-thread lanes for thread-sensitive calls (one process-wide lane, plus one per
# ThreadSensitiveContext). Both are fed lock-free: each worker has its own inbox and
# idle workers sit on a deque, whose append/pop/remove are atomic.
from __future__ import annotations

import os
import threading
import time
from collections import deque
from concurrent.futures import Executor, Future
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from ._backends._base import LoopThread
from ._serving import FutureItem

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._serving import WorkItem

_P = ParamSpec("_P")
_R = TypeVar("_R")

_monotonic = time.monotonic

#: Seconds an idle pool worker waits for work before it exits.
IDLE_TIMEOUT = 10.0


class _PoolThread(threading.Thread):
    """A thread owned by this package that may sit idle between calls."""

    def is_idle(self) -> bool:
        raise NotImplementedError


def thread_is_idle(thread: threading.Thread) -> bool:
    """Tell whether ``thread`` is one of this package's threads, waiting for work."""
    return isinstance(thread, (_PoolThread, LoopThread)) and thread.is_idle()


class _Worker(_PoolThread):
    def __init__(self, pool: WorkerPool) -> None:
        super().__init__(name="asgibridge_any worker", daemon=True)
        self._pool = pool
        self.inbox: SimpleQueue[WorkItem | None] = SimpleQueue()

    def is_idle(self) -> bool:
        return self in self._pool.idle

    def run(self) -> None:
        idle = self._pool.idle
        get = self.inbox.get
        item = get()
        while item is not None:
            item.run()
            del item
            idle.append(self)
            try:
                item = get(timeout=IDLE_TIMEOUT)
            except Empty:
                try:
                    idle.remove(self)
                except ValueError:
                    item = get()  # a dispatcher took this worker: its item comes
                else:
                    return


class WorkerPool:
    """
    Threads for ``thread_sensitive=False`` calls; callers bound the concurrency.

    Each worker has its own inbox; idle workers wait on a deque (its append and pop
    are atomic, so dispatching takes no lock). The most recently idle worker is
    reused first, so under a light load the same thread serves every call and the
    others time out; with no work at all, every worker exits after
    :data:`IDLE_TIMEOUT` seconds.
    """

    def __init__(self) -> None:
        self.idle: deque[_Worker] = deque()

    def submit(self, item: WorkItem) -> None:
        try:
            worker = self.idle.pop()
        except IndexError:
            worker = _Worker(self)
            worker.inbox.put(item)
            worker.start()
            return
        worker.inbox.put(item)


_STOP = None


class _LaneThread(_PoolThread):
    def __init__(self, lane: Lane) -> None:
        super().__init__(name=lane.name, daemon=True)
        self.lane = lane
        # The item running and since when (idleness, stats() and the slow-call
        # warning read them).
        self.current: WorkItem | None = None
        self.since = 0.0

    def is_idle(self) -> bool:
        return self.current is None and self.lane._queue.empty()

    def run(self) -> None:
        lane = self.lane
        get = lane._queue.get
        while True:
            item = get()
            if item is _STOP:
                break
            self.current, self.since = item, _monotonic()
            item.run()
            del item
            self.current = None
        # Work that raced close() in: run it, then let late submitters know that
        # nobody is left to take theirs (they run it on a thread of its own).
        lane.exited = True
        lane._run_leftovers()
        if lane.on_exit is not None:  # operability: a capped thread's slot (_limits)
            lane.on_exit()


class Lane(Executor):
    """
    A single-thread executor: runs submitted work in order, one item at a time.

    The thread starts on first use. :meth:`close` lets it finish what was queued and
    exit without waiting for it; :meth:`shutdown` waits (by default). Work submitted
    while it closes still runs.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: SimpleQueue[WorkItem | None] = SimpleQueue()
        self.thread = _LaneThread(self)
        self._start_lock = threading.Lock()
        self._launched = False
        self._closed = False
        #: Set by the lane's thread once it stopped taking work.
        self.exited = False
        #: Operability: called by the lane's thread as it exits (see _limits).
        self.on_exit: Callable[[], object] | None = None

    def submit_item(self, item: WorkItem) -> None:
        """Run ``item`` on the lane's thread, after what is queued."""
        self._queue.put(item)
        if not self._launched:
            self._launch()
        # The thread may have stopped between our put and its last look at the
        # queue: then nobody else will take the item.
        if self.exited:
            self._run_leftovers()

    def _launch(self) -> None:
        with self._start_lock:
            if not self._launched and not self._closed:
                self._launched = True
                self.thread.start()
            elif self._closed and not self._launched:
                self.exited = True  # closed before it ever ran: nothing will start it

    def _run_leftovers(self) -> None:
        items = []
        while True:
            try:
                item = self._queue.get_nowait()
            except Empty:
                break
            if item is not _STOP:
                items.append(item)
        if items:
            threading.Thread(
                target=_run_all, args=(items,), name=f"{self.name} (late)", daemon=True
            ).start()

    def submit(
        self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> Future[_R]:
        """Schedule ``fn(*args, **kwargs)`` on the lane's thread."""
        if self._closed:
            raise RuntimeError("cannot schedule new work after shutdown")
        future: Future[_R] = Future()
        self.submit_item(FutureItem(future, fn, args, kwargs))
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
            else:
                self.exited = True
        if self.exited:
            self._run_leftovers()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work and, with ``wait``, join the thread."""
        self.close()
        if wait and self._launched:
            self.thread.join()


def _run_all(items: list[WorkItem]) -> None:
    for item in items:
        item.run()


#: Runs every thread-sensitive call that no outer context claims.
default_lane = Lane("asgibridge_any sensitive")
worker_pool = WorkerPool()


def _after_fork_in_child() -> None:
    # Threads don't survive fork(): start over with fresh, unstarted ones.
    global default_lane, worker_pool
    default_lane = Lane("asgibridge_any sensitive")
    worker_pool = WorkerPool()


os.register_at_fork(after_in_child=_after_fork_in_child)
