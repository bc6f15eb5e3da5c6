"""async_to_sync in threads asyncio started: asyncio keeps no record of their loop."""

from __future__ import annotations

import asyncio
import threading

from asgibridge_any.sync import async_to_sync


async def test_asyncio_to_thread_worker_gets_a_loop_of_its_own() -> None:
    """
    Test that a thread of ``asyncio.to_thread()`` is served like a plain thread: no
    public API tells which loop it came from, so the coroutine runs elsewhere (and
    that the negative answer, remembered for the thread, changes nothing on a second
    call).
    """
    app_loop = asyncio.get_running_loop()

    async def where() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
        return asyncio.get_running_loop(), threading.current_thread()

    def worker() -> list[tuple[asyncio.AbstractEventLoop, threading.Thread]]:
        return [async_to_sync(where)() for _ in range(2)]

    async with asyncio.timeout(20):
        places = await asyncio.to_thread(worker)
    for loop, thread in places:
        assert loop is not app_loop
        assert thread is not threading.current_thread()
