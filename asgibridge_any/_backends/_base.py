# The interface every loop backend implements (see _backends/__init__.py).
#
# A backend supplies loop primitives only: park a task until a thread finished,
# wake it from the thread, deliver a cancellation it held back, start and cancel a
# task from another thread, and run an event loop in a thread of its own. The
# protocol that strings them together (who requests cancellation of what, when the
# outcome is delivered) is written once, in _calls.py.
from __future__ import annotations

import os
import threading
import weakref
from abc import ABC, abstractmethod
from collections import deque
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from contextvars import Context

    import anyio

    from .._calls import CoroutineCall, ThreadCall

    CoroutineFactory = Callable[[], Coroutine[Any, Any, None]]


#: Operability: every loop handle alive, for stats() (see _stats).
handles: weakref.WeakSet[LoopHandle] = weakref.WeakSet()


class LoopHandle(ABC):
    """
    One running event loop, as the bridge needs to see it.

    Wake-ups are batched: a finished call is queued, and only the first call of a
    batch schedules a drain on the loop, so under load one pass settles them all.
    """

    #: "asyncio" or "trio".
    name: str
    #: The process that runs the loop (a forked child must not use it).
    pid: int
    #: The asyncio event loop, for APIs that hand it out (None under trio).
    asyncio_loop: Any = None

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._limiter: anyio.CapacityLimiter | None = None
        self._finished: deque[ThreadCall] = deque()
        self._drain_pending = False
        handles.add(self)  # operability

    @abstractmethod
    async def park(
        self,
        call: ThreadCall,
        dispatch: Callable[[ThreadCall], None],
        abandon_on_cancel: bool,
    ) -> Any:
        """
        Hand ``call`` to ``dispatch`` and wait, uncancellably, until it finished.

        Each cancellation delivered meanwhile calls ``call.request_cancel()`` and is
        held back, unless that abandons the call: then the cancellation is raised.

        :returns: None, or the held-back cancellation for :meth:`deliver`
        """

    @abstractmethod
    async def deliver(self, held: Any) -> None:
        """Raise the cancellation that :meth:`park` held back."""

    @abstractmethod
    def _schedule(self, callback: Callable[[], object]) -> None:
        """From any thread: run ``callback`` on the loop soon (nothing if it is gone)."""

    @abstractmethod
    def _settle(self, call: ThreadCall) -> None:
        """On the loop: resume the task parked on ``call``."""

    def wake(self, call: ThreadCall) -> None:
        """From any thread: tell the loop that ``call`` finished."""
        self._finished.append(call)
        if not self._drain_pending:
            self._drain_pending = True
            self._schedule(self._drain)

    def _drain(self) -> None:
        # Cleared before draining: a call queued after this line schedules a new
        # drain, one queued before it is settled by this one.
        self._drain_pending = False
        popleft = self._finished.popleft
        settle = self._settle
        while True:
            try:
                call = popleft()
            except IndexError:
                return
            if call.abandoned:
                call.settled_abandoned()
            else:
                settle(call)

    def default_limiter(self) -> anyio.CapacityLimiter:
        """anyio's default thread limiter of this loop."""
        limiter = self._limiter
        if limiter is None:
            import anyio.to_thread

            limiter = self._limiter = anyio.to_thread.current_default_thread_limiter()
        return limiter

    @abstractmethod
    def start_task(
        self, call: CoroutineCall, factory: CoroutineFactory, context: Context
    ) -> bool:
        """
        From another thread: run ``factory()`` as a task on this loop, in ``context``.

        The task reports itself with ``call.started(task)`` and ends with
        ``call.finish()``, whatever happens to it.

        :returns: False when the loop no longer runs (nothing was started)
        """

    @abstractmethod
    def cancel_task(self, task: Any) -> None:
        """From any thread: cancel a task that :meth:`start_task` started."""


class LoopThread(threading.Thread, ABC):
    """
    A thread running one event loop of the package's own for as long as it lives.

    Calls run on it through :meth:`run_call`, which isolates them: the tasks and
    async generators a call started are cancelled and closed before the call's
    outcome is delivered, and nothing else is touched, so several calls may share
    the loop.
    """

    handle: LoopHandle
    #: "asyncio" or "trio".
    backend: str

    def __init__(self) -> None:
        super().__init__(name=f"asgibridge_any {self.backend} loop", daemon=True)
        self.in_use = True
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        # Set on the loop when the thread should stop once its calls are over.
        self._stopping = False
        # Calls handed to the loop and not yet over; counted from the caller's side,
        # so a stop that overtakes a call's first step still waits for it.
        self._calls = 0
        self._calls_lock = threading.Lock()
        self._abandoned = False

    def is_idle(self) -> bool:
        return not self.in_use

    def wait_ready(self) -> None:
        """
        Wait until the loop runs; raise what stopped it from starting.

        Interrupted (Ctrl-C), the thread is told to stop as soon as it runs.
        """
        try:
            self._ready.wait()
        except BaseException:
            with self._calls_lock:
                self._abandoned = True
                ready = self._ready.is_set()
            if ready:
                self.stop()
            raise
        if self._failure is not None:
            raise self._failure

    def _loop_started(self) -> None:
        # On the loop, before it serves anything.
        with self._calls_lock:
            self._ready.set()
            abandoned = self._abandoned
        if abandoned:
            self._stop_when_idle()

    def _failed(self, exc: BaseException) -> NoReturn:
        self._failure = exc
        self._ready.set()
        raise exc

    def run_call(
        self, call: CoroutineCall, factory: CoroutineFactory, context: Context
    ) -> None:
        """Run ``factory()`` on this loop, isolated, in ``context``."""
        with self._calls_lock:
            self._calls += 1
        if not self.handle.start_task(
            call, lambda: self._isolated(call, factory), context
        ):
            self._call_over()
            raise RuntimeError(f"{self.name} stopped unexpectedly")

    async def _isolated(self, call: CoroutineCall, factory: CoroutineFactory) -> None:
        try:
            await self._run_isolated(call, factory)
        finally:
            self._call_over()
            if self._stopping and not self._calls:
                self._stop_now()

    def _call_over(self) -> None:
        with self._calls_lock:
            self._calls -= 1

    @abstractmethod
    async def _run_isolated(
        self, call: CoroutineCall, factory: CoroutineFactory
    ) -> None:
        """Await ``factory()``, then cancel and close what the call left behind."""

    def stop(self) -> None:
        """From any thread: stop the loop once the calls running on it are over."""
        self.handle._schedule(self._stop_when_idle)

    def _stop_when_idle(self) -> None:
        self._stopping = True
        if not self._calls:
            self._stop_now()

    @abstractmethod
    def _stop_now(self) -> None:
        """On the loop: end the loop (no call is running)."""
