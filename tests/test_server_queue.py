"""Tests for the input/output queue of application instances (asgibridge_any.server)."""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel
import pytest

from asgibridge_any.server import ApplicationQueue, ApplicationQueueFull


async def test_messages_come_out_in_order() -> None:
    queue: ApplicationQueue[int] = ApplicationQueue()
    for number in range(5):
        queue.put_nowait(number)
    assert queue.qsize() == 5
    assert [await queue.get() for _ in range(5)] == [0, 1, 2, 3, 4]
    assert queue.empty()


async def test_put_nowait_beyond_the_bound_raises_queue_full() -> None:
    queue: ApplicationQueue[int] = ApplicationQueue(2)
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert queue.full()
    with pytest.raises(ApplicationQueueFull, match=r"await queue\.put"):
        queue.put_nowait(3)
    assert issubclass(ApplicationQueueFull, asyncio.QueueFull)
    assert queue.qsize() == 2


async def test_put_waits_for_room() -> None:
    queue: ApplicationQueue[int] = ApplicationQueue(1)
    queue.put_nowait(1)
    done = anyio.Event()

    async def producer() -> None:
        await queue.put(2)
        done.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(producer)
            await anyio.wait_all_tasks_blocked()
            assert not done.is_set()
            assert await queue.get() == 1
            await done.wait()
    assert queue.get_nowait() == 2


async def test_get_waits_for_a_message() -> None:
    queue: ApplicationQueue[str] = ApplicationQueue()
    got: list[str] = []

    async def consumer() -> None:
        got.append(await queue.get())

    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(consumer)
            await anyio.wait_all_tasks_blocked()
            assert got == []
            queue.put_nowait("late")
    assert got == ["late"]


async def test_a_cancelled_waiting_getter_does_not_take_the_next_wake_up() -> None:
    queue: ApplicationQueue[str] = ApplicationQueue()
    first = anyio.CancelScope()
    got: list[str] = []

    async def cancelled_consumer() -> None:
        with first:
            got.append("first: " + await queue.get())

    async def consumer() -> None:
        got.append(await queue.get())

    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(cancelled_consumer)
            await anyio.wait_all_tasks_blocked()
            task_group.start_soon(consumer)
            await anyio.wait_all_tasks_blocked()
            first.cancel()
            await anyio.wait_all_tasks_blocked()
            queue.put_nowait("only message")
    assert got == ["only message"]


async def test_a_cancelled_waiting_putter_does_not_take_the_next_wake_up() -> None:
    queue: ApplicationQueue[int] = ApplicationQueue(1)
    queue.put_nowait(0)
    first = anyio.CancelScope()

    async def cancelled_producer() -> None:
        with first:
            await queue.put(1)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(cancelled_producer)
            await anyio.wait_all_tasks_blocked()
            task_group.start_soon(queue.put, 2)
            await anyio.wait_all_tasks_blocked()
            first.cancel()
            await anyio.wait_all_tasks_blocked()
            assert queue.get_nowait() == 0
    assert queue.get_nowait() == 2
    assert queue.empty()


async def test_get_nowait_on_an_empty_queue_raises_queue_empty() -> None:
    with pytest.raises(asyncio.QueueEmpty):
        ApplicationQueue[int]().get_nowait()


def test_negative_bound_is_rejected() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        ApplicationQueue[int](-1)


async def test_discarding_queue_drops_messages_and_releases_producers() -> None:
    queue: ApplicationQueue[int] = ApplicationQueue(1)
    queue.put_nowait(1)
    released = anyio.Event()

    async def producer() -> None:
        await queue.put(2)
        released.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(producer)
            await anyio.wait_all_tasks_blocked()
            queue.discard_from_now_on()
            await released.wait()
    queue.put_nowait(3)
    assert queue.empty()
    assert not queue.full()


async def test_ended_queue_yields_the_rest_then_reports_no_more() -> None:
    from asgibridge_any._server_queue import NoMoreMessages

    queue: ApplicationQueue[int] = ApplicationQueue()
    queue.put_nowait(1)
    queue.end()
    assert await queue.get() == 1
    with pytest.raises(NoMoreMessages):
        await queue.get()
    with anyio.fail_after(10):
        await queue.wait_not_empty()  # returns at once: nothing more will come
