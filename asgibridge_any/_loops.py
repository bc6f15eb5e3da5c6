# Event loops in threads of their own, for async_to_sync called where no loop runs.
#
# Starting an asyncio loop per call costs ~0.1 ms and trio.run ~0.75 ms, so loop
# threads are kept and reused: a call borrows an idle one (or starts one), runs its
# coroutine there, and gives it back once the coroutine is over. Each call is
# isolated on its loop (see _backends/_base.py LoopThread): what it started is
# cancelled and closed before its outcome is delivered, so the next call starts clean.
from __future__ import annotations

import os
from collections import deque
from typing import TYPE_CHECKING

from ._backends import BACKENDS, new_loop_thread

if TYPE_CHECKING:
    from ._backends import LoopThread

#: Idle loop threads kept per backend; more than that are stopped when returned.
MAX_IDLE = 4


class LoopPool:
    """Idle loop threads per backend, borrowed for one call at a time."""

    def __init__(self) -> None:
        self.idle: dict[str, deque[LoopThread]] = {name: deque() for name in BACKENDS}

    def acquire(self, backend: str) -> LoopThread:
        """Borrow an idle loop thread of ``backend``, or start one."""
        idle = self.idle[backend]
        while True:
            try:
                thread = idle.pop()
            except IndexError:
                thread = new_loop_thread(backend)
                thread.wait_ready()
                return thread
            if thread.is_alive():
                thread.in_use = True
                return thread

    def release(self, thread: LoopThread) -> None:
        """Give a borrowed loop thread back (stopped if enough are idle)."""
        idle = self.idle[thread.backend]
        if len(idle) >= MAX_IDLE:
            thread.stop()
            return
        thread.in_use = False
        idle.append(thread)


def validate_backend(backend: str | None) -> str:
    """Return the backend to use for ``backend=`` (None: asyncio)."""
    if backend is None:
        return "asyncio"
    if backend not in BACKENDS:
        raise ValueError(
            f"unknown backend {backend!r}; valid backends are "
            + ", ".join(repr(name) for name in BACKENDS)
        )
    return backend


pool = LoopPool()


def _after_fork_in_child() -> None:
    global pool
    pool = LoopPool()


os.register_at_fork(after_in_child=_after_fork_in_child)
