"""asyncio-only queue tests: a native task.cancel() can hit a waiter that was just woken."""

from __future__ import annotations

import asyncio

from asgibridge_any.server import ApplicationQueue


async def test_a_woken_then_cancelled_putter_passes_the_room_on() -> None:
    queue: ApplicationQueue[int] = ApplicationQueue(1)
    queue.put_nowait(0)
    first = asyncio.create_task(queue.put(1))
    second = asyncio.create_task(queue.put(2))
    await asyncio.sleep(0)  # let both start waiting
    assert queue.get_nowait() == 0  # wakes the first putter...
    first.cancel()  # ...which is cancelled before it resumes
    async with asyncio.timeout(10):
        await second
    assert first.cancelled()
    assert queue.get_nowait() == 2


async def test_a_woken_then_cancelled_getter_passes_the_message_on() -> None:
    queue: ApplicationQueue[str] = ApplicationQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("only message")  # wakes the first getter...
    first.cancel()  # ...which is cancelled before it resumes
    async with asyncio.timeout(10):
        assert await second == "only message"
    assert first.cancelled()
