# Per-loop helpers for the WSGI adapter: "run this callback on the event loop soon" and
# "run this callback on the loop in N seconds".
#
# A WSGI worker thread wakes the loop side of its request many times (a chunk is ready to
# send, buffer space freed up).  anyio.from_thread.run_sync would make each wake-up a full
# round trip: the thread would wait for the loop to run the callback.  The native
# fire-and-forget primitives of each loop (asyncio's call_soon_threadsafe, trio's
# TrioToken.run_sync_soon) let the thread carry on at once.
#
# Every request also arms a timer that checks on it twice a second (is the client still
# there?).  A task per request sleeping in a cancel scope would cost a task start and a
# cancellation on every small request; asyncio's call_later costs a heap push, and on trio
# one system task per run keeps the same kind of heap.  Both are picked once per request,
# on the loop thread, so every other WSGI module stays loop-neutral.
from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import sniffio

if TYPE_CHECKING:
    import trio

#: Schedule a no-argument callback to run on the captured event loop; callable from any thread.
Waker = Callable[[Callable[[], object]], object]
#: ``later(delay, callback)`` runs ``callback`` on the loop after ``delay`` seconds; it
#: returns a function that cancels the call.  Loop thread only.
Later = Callable[[float, Callable[[], object]], Callable[[], object]]


class LoopHooks(NamedTuple):
    """What the WSGI adapter needs from the running event loop."""

    #: ``"asyncio"`` or ``"trio"``
    library: str
    wake: Waker
    later: Later


def current_loop() -> LoopHooks:
    """
    Return the running async library, a thread-safe waker and a timer for its loop.

    Call it on the loop thread.  The callbacks must not raise: on trio an exception in
    one would crash the run.

    :raises RuntimeError: if the running async library is neither asyncio nor trio
    """
    library = sniffio.current_async_library()
    if library == "asyncio":
        import asyncio

        loop = asyncio.get_running_loop()

        def later(delay: float, callback: Callable[[], object]) -> Callable[[], object]:
            return loop.call_later(delay, callback).cancel

        return LoopHooks(library, loop.call_soon_threadsafe, later)
    if library == "trio":
        import trio

        return LoopHooks(
            library,
            trio.lowlevel.current_trio_token().run_sync_soon,
            _trio_timers().later,
        )
    raise RuntimeError(
        f"WsgiToAsgi runs under asyncio or trio, not {library!r}; "
        "serve the application from an asyncio or trio server"
    )


def run_as_library(library: str, callback: Callable[[], object]) -> None:
    """
    Run ``callback`` in a loop callback as if it ran in a task of ``library``.

    A callback scheduled by a :data:`Waker` runs outside any task, where sniffio (and so
    anyio) cannot tell which library runs the loop; sniffio's context variable says it.

    :param library: what :func:`current_loop` returned
    :param callback: the function to run, typically one that starts anyio tasks
    """
    token = sniffio.current_async_library_cvar.set(library)
    try:
        callback()
    finally:
        sniffio.current_async_library_cvar.reset(token)


class _TrioTimer:
    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], object] | None) -> None:
        self.callback = callback

    def cancel(self) -> None:
        self.callback = None


class _TrioTimers:
    # A heap of (deadline, sequence, timer) served by one system task of the trio run.
    # Cancelled timers stay in the heap with no callback until their deadline.

    def __init__(self) -> None:
        import trio

        self._heap: list[tuple[float, int, _TrioTimer]] = []
        self._order = itertools.count()
        self._changed = trio.Event()
        trio.lowlevel.spawn_system_task(self._serve, name="asgibridge_any WSGI timers")

    def later(
        self, delay: float, callback: Callable[[], object]
    ) -> Callable[[], object]:
        import trio

        timer = _TrioTimer(callback)
        deadline = trio.current_time() + delay
        if not self._heap or deadline < self._heap[0][0]:
            self._changed.set()
        heapq.heappush(self._heap, (deadline, next(self._order), timer))
        return timer.cancel

    async def _serve(self) -> None:
        import trio

        while True:
            if not self._heap:
                await self._changed.wait()
                self._changed = trio.Event()
                continue
            deadline, _, timer = self._heap[0]
            if deadline > trio.current_time():
                with trio.move_on_at(deadline):
                    await self._changed.wait()
                    self._changed = trio.Event()
                continue
            heapq.heappop(self._heap)
            callback, timer.callback = timer.callback, None
            if callback is not None:
                callback()


_trio_run_timers: trio.lowlevel.RunVar[_TrioTimers] | None = None


def _trio_timers() -> _TrioTimers:
    global _trio_run_timers  # created on first use: trio may be absent
    import trio

    if _trio_run_timers is None:
        _trio_run_timers = trio.lowlevel.RunVar("asgibridge_any_wsgi_timers")
    try:
        return _trio_run_timers.get()
    except LookupError:
        timers = _TrioTimers()
        _trio_run_timers.set(timers)
        return timers
