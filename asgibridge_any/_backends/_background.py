# Start a task with no task group to own it, on asyncio or trio.
#
# The one loop-specific piece of the testing helper: ApplicationCommunicator used
# outside ``async with`` must run the application in the background, as asgiref's does
# with asyncio.create_task(). It lives with the other per-loop code so that testing.py
# stays loop-neutral; it needs no LoopHandle, so it is a plain function of its own.

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import sniffio

if TYPE_CHECKING:
    import contextvars
    from collections.abc import Callable, Coroutine

# The asyncio tasks started here, kept alive while they run: the event loop only holds
# weak references to tasks, and a task waiting on a queue that only it references could
# otherwise be garbage-collected mid-run.
_asyncio_tasks: set[asyncio.Task[Any]] = set()


def start_background_task(
    async_fn: Callable[[], Coroutine[Any, Any, None]], context: contextvars.Context
) -> None:
    """
    Run ``async_fn()`` as a task of the current event loop, in ``context``.

    On asyncio it is a plain task, cancelled by ``asyncio.run()`` at the end if still
    running; on trio it is a system task, cancelled when ``trio.run()`` ends. It must not
    raise (on trio an exception from a system task crashes the run).

    :raises RuntimeError: under an event loop other than asyncio and trio
    """
    library = sniffio.current_async_library()
    if library == "asyncio":
        task = asyncio.get_running_loop().create_task(async_fn(), context=context)
        _asyncio_tasks.add(task)
        task.add_done_callback(_asyncio_tasks.discard)
    elif library == "trio":
        import trio  # imported only when running under trio, an optional dependency

        trio.lowlevel.spawn_system_task(async_fn, context=context)
    else:
        raise RuntimeError(
            f"ApplicationCommunicator supports asyncio and trio, not {library}"
        )
