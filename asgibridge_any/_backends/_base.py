# The interface every loop backend implements (see _backends/__init__.py).
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from contextvars import Context

    import anyio

    from .._calls import ThreadCall

    CoroutineFactory = Callable[[], Coroutine[Any, Any, None]]


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

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._limiter: anyio.CapacityLimiter | None = None
        self._finished: deque[ThreadCall] = deque()
        self._drain_pending = False

    @abstractmethod
    async def run_call(
        self, call: ThreadCall, dispatch: Callable[[ThreadCall], None]
    ) -> Any:
        """Hand ``call`` to ``dispatch`` and wait for its outcome, shielded from cancellation."""

    @abstractmethod
    def _schedule(self, callback: Callable[[], object]) -> None:
        """From any thread: run ``callback`` on the loop soon (nothing if it is gone)."""

    @abstractmethod
    def _settle(self, call: ThreadCall) -> None:
        """On the loop: resume the task waiting for ``call``."""

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
            settle(call)

    def default_limiter(self) -> anyio.CapacityLimiter:
        """anyio's default thread limiter of this loop."""
        limiter = self._limiter
        if limiter is None:
            import anyio.to_thread

            limiter = self._limiter = anyio.to_thread.current_default_thread_limiter()
        return limiter

    @abstractmethod
    def start_coroutine(
        self, factory: CoroutineFactory, context: Context, parent: ThreadCall | None
    ) -> bool:
        """
        From another thread: run ``factory()`` as a task on this loop, in ``context``.

        ``parent`` is the sync_to_async call whose thread is waiting; the new task is
        registered with it so cancelling the parent cancels the task.

        :returns: False when the loop no longer runs (nothing was started)
        """
