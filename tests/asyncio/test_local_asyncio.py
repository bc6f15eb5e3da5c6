"""Tests for asgibridge_any.local.Local with asyncio's own task tools."""

from __future__ import annotations

import asyncio
import gc
import weakref

from asgibridge_any.local import Local


class Thing:
    """A value that can be weakly referenced, to watch when it is freed."""


async def test_create_task_sees_the_value_and_keeps_its_changes() -> None:
    local = Local()
    local.user = "parent"

    async def child() -> str:
        seen: str = local.user
        local.user = "child"
        return seen

    assert await asyncio.create_task(child()) == "parent"
    assert local.user == "parent"


async def test_gather_children_see_the_value_but_not_each_other() -> None:
    local = Local()
    local.request = "outer"
    first_set = asyncio.Event()

    async def first() -> str:
        seen: str = local.request
        local.request = "first"
        local.mine = 1
        first_set.set()
        return seen

    async def second() -> tuple[str, bool]:
        await first_set.wait()
        return local.request, hasattr(local, "mine")

    async with asyncio.timeout(10):
        seen_first, seen_second = await asyncio.gather(first(), second())
    assert (seen_first, seen_second) == ("outer", ("outer", False))
    assert local.request == "outer"
    assert not hasattr(local, "mine")


async def test_asyncio_to_thread_worker_does_not_see_loop_values() -> None:
    """Test that a context copied to a thread without the bridge hides the values."""
    local = Local()
    local.value = "loop"

    def worker() -> bool:
        found = hasattr(local, "value")
        local.value = "worker"
        return found

    assert await asyncio.to_thread(worker) is False
    assert local.value == "loop"


async def test_thread_critical_value_is_per_task() -> None:
    local = Local(thread_critical=True)
    local.conn = "parent's"

    async def child() -> tuple[bool, str]:
        found = hasattr(local, "conn")
        local.conn = "child's"
        return found, local.conn

    assert await asyncio.create_task(child()) == (False, "child's")
    one, two = await asyncio.gather(child(), child())
    assert one == two == (False, "child's")
    assert local.conn == "parent's"


async def test_thread_critical_value_is_not_seen_by_a_worker_thread() -> None:
    local = Local(thread_critical=True)
    local.conn = "loop"

    def worker() -> bool:
        found = hasattr(local, "conn")
        local.conn = "worker"
        return found

    assert await asyncio.to_thread(worker) is False
    assert local.conn == "loop"


async def test_thread_critical_value_of_a_finished_task_is_freed() -> None:
    local = Local(thread_critical=True)
    refs: list[weakref.ref[Thing]] = []

    async def child() -> None:
        value = Thing()
        refs.append(weakref.ref(value))
        local.conn = value

    await asyncio.create_task(child())
    # The loop's handle that woke us still holds the finished task until this step ends.
    await asyncio.sleep(0)
    gc.collect()  # the finished task may sit in a cycle with its coroutine
    assert refs[0]() is None


async def test_thread_critical_in_loop_callbacks_uses_the_threads_storage() -> None:
    """Test that code run by the loop outside any task gets the thread's own storage."""
    local = Local(thread_critical=True)
    loop = asyncio.get_running_loop()
    seen: asyncio.Future[str] = loop.create_future()

    def first() -> None:
        local.conn = "callback"

    def second() -> None:
        seen.set_result(local.conn)

    loop.call_soon(first)
    loop.call_soon(second)
    async with asyncio.timeout(10):
        assert await seen == "callback"
    assert not hasattr(local, "conn")  # this task has storage of its own


async def test_default_value_of_a_finished_task_is_freed() -> None:
    local = Local()
    refs: list[weakref.ref[Thing]] = []

    async def child() -> None:
        value = Thing()
        refs.append(weakref.ref(value))
        local.value = value

    await asyncio.create_task(child())
    await asyncio.sleep(0)  # as above: let the loop drop the finished task
    gc.collect()
    assert refs[0]() is None
