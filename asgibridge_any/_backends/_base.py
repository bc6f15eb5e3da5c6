# The interface every loop backend implements (see _backends/__init__.py).
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from contextvars import Context

    import anyio

    from .._calls import ThreadCall

    CoroutineFactory = Callable[[], Coroutine[Any, Any, None]]


class LoopHandle(ABC):
    """One running event loop, as the bridge needs to see it."""

    #: "asyncio" or "trio".
    name: str
    #: The process that runs the loop (a forked child must not use it).
    pid: int

    @abstractmethod
    async def run_call(
        self, call: ThreadCall, dispatch: Callable[[ThreadCall], None]
    ) -> Any:
        """Hand ``call`` to ``dispatch`` and wait for its outcome, shielded from cancellation."""

    @abstractmethod
    def wake(self, call: ThreadCall) -> None:
        """From any thread: tell the loop that ``call`` finished."""

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

    @abstractmethod
    def default_limiter(self) -> anyio.CapacityLimiter:
        """anyio's default thread limiter of this loop."""
