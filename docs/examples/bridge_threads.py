"""Which thread runs a sync_to_async call, and which loop runs an async_to_sync call."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import anyio
import sniffio

from asgibridge_any.sync import ThreadSensitiveContext, async_to_sync, sync_to_async


def thread_name() -> str:
    return threading.current_thread().name


async def from_a_task() -> None:
    print("under", sniffio.current_async_library())
    # Thread-sensitive (the default): one process-wide thread, one call at a time.
    print("  sensitive:        ", await sync_to_async(thread_name)())
    # Inside a ThreadSensitiveContext: a thread of the context's own.
    async with ThreadSensitiveContext():
        print("  in a context:     ", await sync_to_async(thread_name)())
    # thread_sensitive=False: a reused worker thread, bounded by a capacity limiter.
    print(
        "  not sensitive:    ",
        await sync_to_async(thread_name, thread_sensitive=False)(),
    )
    # ... or your own executor.
    with ThreadPoolExecutor(1, thread_name_prefix="mine") as pool:
        run = sync_to_async(thread_name, thread_sensitive=False, executor=pool)
        print("  own executor:     ", await run())


def from_sync_code() -> None:
    print("from a plain thread")
    # No loop is running here: async_to_sync uses a loop thread of the package.
    print("  async_to_sync:    ", async_to_sync(loop_thread)())
    print("  backend='trio':   ", async_to_sync(loop_thread, backend="trio")())


async def loop_thread() -> str:
    return thread_name()


anyio.run(from_a_task, backend="asyncio")
anyio.run(from_a_task, backend="trio")
from_sync_code()
