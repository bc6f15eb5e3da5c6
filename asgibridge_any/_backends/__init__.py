# The small interface that hides asyncio and trio from the rest of the package.
#
# Every asyncio- or trio-specific line of the package lives in this folder. A
# LoopHandle (_base.py) wraps one running event loop: it parks a task until a thread
# finished, wakes it from the thread, delivers a held-back cancellation, starts and
# cancels a task from another thread, and knows the loop's default thread limiter.
# One handle per loop, found by current_handle() on the loop's own thread. A
# LoopThread runs an event loop of the package's own. trio is imported only once
# something else imported it (it is an optional dependency), or in a new trio loop
# thread.
from __future__ import annotations

import importlib.util
import sys
import threading
from typing import TYPE_CHECKING

from sniffio import thread_local as _sniffio_thread

from ._asyncio import _get_running_loop
from ._asyncio import current_task as _asyncio_task
from ._asyncio import running_handle as _asyncio_handle

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._base import LoopHandle as LoopHandle
    from ._base import LoopThread as LoopThread

#: The loops the package runs on.
BACKENDS = ("asyncio", "trio")


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


def loop_runs_here() -> bool:
    """Cheaply tell whether this thread runs an asyncio loop or a trio run."""
    # trio names itself in sniffio's thread-local; reading its __dict__ is fast.
    return (
        _get_running_loop() is not None
        or _sniffio_thread.__dict__.get("name") == "trio"
    )


def current_task() -> object | None:
    """Return the asyncio or trio task running in this thread, or None in sync code."""
    if _sniffio_thread.__dict__.get("name") == "trio":
        from ._trio import current_task as trio_task

        return trio_task()
    return _asyncio_task()


class _ThreadKind(threading.local):
    #: Set once this thread turned out not to be an anyio or trio worker thread.
    plain = False


_thread_kind = _ThreadKind()


def worker_origin() -> tuple[LoopHandle, Callable[[], object]] | None:
    """
    In a thread started by ``anyio.to_thread.run_sync`` or ``trio.to_thread.run_sync``,
    return the handle of the loop that started it and a function that raises that
    loop's cancellation once the starting task is cancelled; None in other threads.

    Asks through the public ``from_thread`` APIs (a round trip to the loop). Other
    threads never become such workers, so a negative answer is remembered.
    """
    if _thread_kind.plain:
        return None
    import anyio.from_thread

    try:
        handle = anyio.from_thread.run_sync(current_handle)
    except RuntimeError:  # not an anyio worker thread, or its loop is gone
        pass
    else:
        return handle, anyio.from_thread.check_cancelled
    if "trio" in sys.modules:
        import trio

        try:
            handle = trio.from_thread.run_sync(current_handle)
        except RuntimeError:  # not a trio worker thread
            pass
        except trio.RunFinishedError:
            return None
        else:
            return handle, trio.from_thread.check_cancelled
    if threading.current_thread().name.startswith(("AnyIO worker", "Trio thread")):
        return None  # a worker whose loop is gone: ask again next time
    _thread_kind.plain = True
    return None


def new_loop_thread(backend: str) -> LoopThread:
    """
    Start a thread running an event loop of ``backend`` and wait until it runs.

    :raises RuntimeError: for trio when it is not installed
    """
    thread: LoopThread
    if backend == "asyncio":
        from ._asyncio import AsyncioLoopThread

        thread = AsyncioLoopThread()
    else:
        if "trio" not in sys.modules and importlib.util.find_spec("trio") is None:
            raise RuntimeError(
                "async_to_sync(backend='trio') needs trio: install asgibridge_any[trio]"
            )
        from ._trio_loop import TrioLoopThread

        thread = TrioLoopThread()
    thread.start()
    return thread
