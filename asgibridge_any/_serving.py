# The engine behind CurrentThreadExecutor: work that a blocked thread runs itself.
#
# A sync thread waiting in async_to_sync owns a Serving and runs every item put on
# it (the thread-sensitive calls made below it) until what it waits for is done.
# Work that arrives after it stopped goes to the Serving of an outer wait in the same
# thread, or fails. Work items are anything with run() and abandon(): the bridge's
# ThreadCall, or a FutureItem for plain ``submit(fn, *args)``.
from __future__ import annotations

import threading
from collections import deque
from queue import Empty, SimpleQueue
from time import monotonic as _monotonic
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future


class WorkItem(Protocol):
    """What a serving queue or a lane holds: something to run, or to fail if nobody will."""

    def run(self) -> None: ...

    def abandon(self, exc: BaseException) -> None: ...


class FutureItem:
    """Adapts a plain ``submit(fn, *args)`` to the work-item protocol."""

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


#: Seconds between two looks of a watching serve() (see Serving.serve).
WATCH_INTERVAL = 0.05


class Serving:
    """Work run by the thread that made this object, while it waits in :meth:`serve`."""

    __slots__ = (
        "_items",
        "_signal",
        "facade",
        "fallback",
        "finished",
        "outer",
        "thread_id",
    )

    def __init__(
        self,
        outer: Serving | None = None,
        fallback: Callable[[WorkItem], None] | None = None,
    ) -> None:
        self.thread_id = threading.get_ident()
        # Work waits in a deque; the queue only wakes the thread. An item is read
        # where it stands, run, and only then removed: an exception raised into the
        # thread (Ctrl-C) between taking and running it can't lose it, and the next
        # serve() runs it (work items run at most once).
        self._items: deque[WorkItem] = deque()
        self._signal: SimpleQueue[None] = SimpleQueue()
        #: Set once the thread stopped taking work from here.
        self.finished = False
        #: Where work goes once this one finished.
        self.outer = outer
        #: Where work goes once this one finished and there is no outer one.
        self.fallback = fallback
        #: The public CurrentThreadExecutor showing this object, once one was asked for.
        self.facade: Any = None

    def live(self) -> Serving | None:
        """The nearest Serving in the chain that still takes work, if any."""
        serving: Serving | None = self
        while serving is not None and serving.finished:
            serving = serving.outer
        return serving

    def serve(
        self, done: Callable[[], bool], watch: Callable[[], object] | None = None
    ) -> None:
        """
        Run work until ``done()`` holds and no work is queued.

        May be called again after an interruption. With ``watch``, it is also called
        every :data:`WATCH_INTERVAL` seconds, busy or not.
        """
        items = self._items
        get = self._signal.get
        next_look = _monotonic() + WATCH_INTERVAL
        while True:
            if watch is not None:
                # On a clock, not on idleness: a coroutine that keeps sending work
                # here must still be looked at.
                now = _monotonic()
                if now >= next_look:
                    watch()
                    next_look = now + WATCH_INTERVAL
            if items:
                items[0].run()
                items.popleft()
                continue
            if done():
                return
            if watch is None:
                get()
            else:
                try:
                    get(timeout=max(0.0, next_look - _monotonic()))
                except Empty:
                    continue

    def finish(self) -> None:
        """Stop taking work; pass on what is still queued."""
        self.finished = True
        self._drain()

    def wake(self) -> None:
        """From any thread: make the serving thread check whether it is done."""
        self._signal.put(None)

    def _drain(self) -> None:
        popleft = self._items.popleft
        while True:
            try:
                item = popleft()
            except IndexError:  # empty, or another thread drained it first
                return
            self._forward(item)

    def _forward(self, item: WorkItem) -> None:
        if self.outer is not None:
            self.outer.submit_item(item)
        elif self.fallback is not None:
            self.fallback(item)
        else:
            item.abandon(
                RuntimeError(
                    "the thread that would run this thread-sensitive call has stopped "
                    "waiting in async_to_sync, and no outer wait takes its work"
                )
            )

    def submit_item(self, item: WorkItem) -> None:
        """From any thread: have the serving thread run ``item``."""
        if self.finished:
            self._forward(item)
            return
        self._items.append(item)
        self._signal.put(None)
        # The serving thread may have finished between the check and the append:
        # its final drain could have missed this item, so drain again (each item is
        # taken by exactly one popleft).
        if self.finished:
            self._drain()
