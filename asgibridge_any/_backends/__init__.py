# The small interface that hides asyncio and trio from the rest of the package.
#
# A LoopHandle (_base.py) wraps one running event loop: it waits (uncancellably) for
# a ThreadCall, wakes that wait from another thread, starts a coroutine on the loop
# from another thread, and knows the loop's default thread limiter. One handle per
# loop, found by current_handle() on the loop's own thread; trio is imported only
# once something else imported it (it is an optional dependency).
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ._asyncio import running_handle as _asyncio_handle

if TYPE_CHECKING:
    from ._base import LoopHandle as LoopHandle


def current_handle() -> LoopHandle:
    """Return the handle of the event loop running the current task."""
    # trio first: in trio's guest mode an asyncio loop runs in the same thread, and
    # only trio knows whether the current code is one of its tasks.
    if "trio" in sys.modules:
        from ._trio import running_handle

        trio_handle = running_handle()
        if trio_handle is not None:
            return trio_handle
    handle: LoopHandle | None = _asyncio_handle()
    if handle is not None:
        return handle
    raise RuntimeError(
        "no running asyncio or trio event loop in this thread; await this inside "
        "async code, or call the sync function directly"
    )


def in_loop_thread() -> bool:
    """Tell whether an asyncio or trio event loop is running in this thread."""
    if _asyncio_handle() is not None:
        return True
    if "trio" in sys.modules:
        import trio

        return trio.lowlevel.in_trio_run()
    return False
