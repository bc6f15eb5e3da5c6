# The process-wide cap on threads made for ThreadSensitiveContexts.
#
# A context gets its thread on its first thread-sensitive call (_routing asks
# context_lane() here). Every such thread holds one slot from then until it exits.
# With a cap set and every slot taken, the context gets a PendingContextThread
# instead: its calls wait for a slot on their event loop (cancellably), in the order
# the contexts asked, and all of them get the context's thread once it starts.
# Calls that already have a thread never come here: a context's later calls, nested
# contexts (they use the outermost one's thread) and calls below async_to_sync (they
# run on the waiting sync thread), so a thread holding a slot never waits for one.
from __future__ import annotations

import os
import threading
import time
import weakref
from collections import OrderedDict
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from . import _threads
from ._backends import current_handle
from ._serving import FutureItem

if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping

    import anyio

    from ._backends import LoopHandle
    from ._routing import ThreadSensitiveContext
    from ._serving import WorkItem

_lock = threading.Lock()
#: The most context threads alive at once; None for no cap.
limit: int | None = None
#: Context threads alive (each holds a slot until it exits).
alive = 0
#: Contexts waiting for a slot, oldest first.
waiting: OrderedDict[ThreadSensitiveContext, PendingContextThread] = OrderedDict()


def set_context_thread_limit(limit_: int | None) -> None:
    """
    Cap the number of threads alive for :class:`ThreadSensitiveContext` blocks.

    Each ``ThreadSensitiveContext`` (the outermost of nested ones, without an
    ``executor``) starts a thread on its first thread-sensitive call and keeps it
    until the block is left and its calls are done. With a cap of ``n``, the
    context that would start thread ``n + 1`` waits instead, without blocking its
    event loop, until another context's thread has exited; waiting contexts get
    their thread in the order they asked. A cancelled call stops waiting at once.
    The cap is process-wide: it counts the contexts of every event loop and thread.

    Calls that already have a thread never wait: a context's later calls, nested
    contexts, and calls made below :func:`async_to_sync` (they run on the sync
    thread waiting there). So a request's own nested calls cannot deadlock on the
    cap; only calls of different contexts wait for each other.

    Lowering the cap stops no thread: new contexts wait until enough have exited.
    The process-wide thread used outside any context is not counted.

    :param limit_: the most context threads alive at once, or ``None`` (the
        default) for no cap
    :raises ValueError: if ``limit_`` is not a positive int or None
    """
    global limit
    if limit_ is not None and (
        not isinstance(limit_, int) or isinstance(limit_, bool) or limit_ < 1
    ):
        raise ValueError(
            "set_context_thread_limit() takes a positive number of threads, or None "
            f"for no cap; got {limit_!r}"
        )
    with _lock:
        limit = limit_
        granted = _admit_waiting()
    _wake(granted)


def get_context_thread_limit() -> int | None:
    """Return the cap set by :func:`set_context_thread_limit` (``None``: no cap)."""
    return limit


def context_lane(
    context: ThreadSensitiveContext,
    lanes: MutableMapping[ThreadSensitiveContext, _threads.Lane],
) -> _threads.Lane | PendingContextThread:
    """
    The thread of ``context``, started now if the cap allows, or its stand-in.

    :param lanes: where the context's thread is kept (_routing.context_lanes)
    """
    with _lock:
        lane = lanes.get(context)
        if lane is not None:
            return lane
        pending = waiting.get(context)
        if pending is not None:
            return pending
        if limit is None or (alive < limit and not waiting):
            return _grant(context, lanes)
        pending = waiting[context] = PendingContextThread(context, lanes)
        return pending


def _grant(
    context: ThreadSensitiveContext,
    lanes: MutableMapping[ThreadSensitiveContext, _threads.Lane],
) -> _threads.Lane:
    # Under _lock: start the context's thread, holding a slot until it exits.
    global alive
    lane = _threads.Lane("asgibridge_any context")
    lane.on_exit = _release
    alive += 1
    lanes[context] = lane
    # Closed at the latest when no task can reach the context any more.
    weakref.finalize(context, lane.close)
    lane._launch()
    return lane


def _release() -> None:
    # On a context thread, as it exits: hand its slot to the oldest waiter.
    global alive
    with _lock:
        alive -= 1
        granted = _admit_waiting()
    _wake(granted)


def _admit_waiting() -> list[PendingContextThread]:
    # Under _lock: start the threads the cap allows now, oldest first.
    granted = []
    while waiting and (limit is None or alive < limit):
        context, pending = waiting.popitem(last=False)
        pending.lane = _grant(context, pending.lanes)
        granted.append(pending)
    return granted


def _wake(granted: list[PendingContextThread]) -> None:
    for pending in granted:
        pending.started()


class PendingContextThread:
    """Stands for a context's thread until the cap lets it start."""

    __slots__ = ("context", "items", "lane", "lanes", "since", "waiters")

    def __init__(
        self,
        context: ThreadSensitiveContext,
        lanes: MutableMapping[ThreadSensitiveContext, _threads.Lane],
    ) -> None:
        self.context = context
        self.lanes = lanes
        #: When the context started waiting (for stats()).
        self.since = time.monotonic()
        #: Set (under the lock) once the thread started.
        self.lane: _threads.Lane | None = None
        self.waiters: list[tuple[LoopHandle, anyio.Event]] = []
        #: Work handed over without waiting (a late call rerouted here).
        self.items: list[WorkItem] = []

    async def wait(self) -> _threads.Lane:
        """Wait on the event loop, cancellably, until the thread started."""
        import anyio

        with _lock:
            if self.lane is not None:
                return self.lane
            waiter = (current_handle(), anyio.Event())
            self.waiters.append(waiter)
        try:
            await waiter[1].wait()
        except BaseException:
            with _lock:
                if self.lane is None:
                    self.waiters.remove(waiter)
                    if not self.waiters and not self.items:
                        waiting.pop(self.context, None)
            raise
        assert self.lane is not None
        return self.lane

    def submit_item(self, item: WorkItem) -> None:
        """Run ``item`` on the thread once it started (uncancellable)."""
        with _lock:
            lane = self.lane
            if lane is None:
                self.items.append(item)
                return
        lane.submit_item(item)

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)`` on the thread once it started."""
        future: Future[Any] = Future()
        self.submit_item(FutureItem(future, fn, args, kwargs))
        return future

    def started(self) -> None:
        # The thread started: wake the waiting calls, hand over the items.
        lane = self.lane
        assert lane is not None
        for item in self.items:
            lane.submit_item(item)
        self.items.clear()
        for handle, event in self.waiters:
            handle._schedule(event.set)
        self.waiters.clear()


def _after_fork_in_child() -> None:
    # Threads don't survive fork(): no slot is taken in the child.
    global alive, _lock
    _lock = threading.Lock()
    alive = 0
    waiting.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
