"""Tests for asgibridge_any.local.Local with trio's own task tools."""

from __future__ import annotations

import gc
import weakref

import trio
import trio.lowlevel

from asgibridge_any.local import Local


class Thing:
    """A value that can be weakly referenced, to watch when it is freed."""


async def test_nursery_children_see_the_value_and_keep_their_changes() -> None:
    local = Local()
    local.user = "parent"
    seen: list[str] = []

    async def child() -> None:
        seen.append(local.user)
        local.user = "child"
        seen.append(local.user)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(child)
    assert seen == ["parent", "child"]
    assert local.user == "parent"


async def test_nested_nurseries_pass_the_value_down_but_not_up_or_across() -> None:
    local = Local()
    local.level = 0
    seen: dict[str, object] = {}
    first_set = trio.Event()

    async def grandchild() -> None:
        seen["grandchild"] = local.level
        local.level = 2

    async def child() -> None:
        local.level = 1
        async with trio.open_nursery() as nursery:
            nursery.start_soon(grandchild)
        seen["child after"] = local.level
        first_set.set()

    async def sibling() -> None:
        await first_set.wait()
        seen["sibling"] = local.level

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(child)
            nursery.start_soon(sibling)
    assert seen == {"grandchild": 1, "child after": 1, "sibling": 0}
    assert local.level == 0


async def test_deleting_in_a_child_leaves_the_parent_value() -> None:
    local = Local()
    local.value = "kept"
    seen: list[bool] = []

    async def child() -> None:
        del local.value
        seen.append(hasattr(local, "value"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(child)
    assert seen == [False]
    assert local.value == "kept"


async def test_thread_critical_value_is_per_trio_task() -> None:
    local = Local(thread_critical=True)
    local.conn = "parent's"
    seen: list[tuple[bool, str]] = []

    async def child() -> None:
        found = hasattr(local, "conn")
        local.conn = "child's"
        seen.append((found, local.conn))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(child)
        nursery.start_soon(child)
    assert seen == [(False, "child's")] * 2
    assert local.conn == "parent's"


async def test_thread_critical_value_of_a_finished_trio_task_is_freed() -> None:
    local = Local(thread_critical=True)
    refs: list[weakref.ref[Thing]] = []

    async def child() -> None:
        value = Thing()
        refs.append(weakref.ref(value))
        local.conn = value

    async with trio.open_nursery() as nursery:
        nursery.start_soon(child)
    gc.collect()  # the finished task may sit in a cycle with its coroutine
    assert refs[0]() is None


async def test_thread_critical_in_run_sync_soon_callbacks_is_apart_from_tasks() -> None:
    """Test that callbacks trio runs for run_sync_soon share storage apart from tasks."""
    local = Local(thread_critical=True)
    token = trio.lowlevel.current_trio_token()
    done = trio.Event()
    seen: list[str] = []

    def first() -> None:
        local.conn = "callback"

    def second() -> None:
        seen.append(local.conn)
        done.set()

    token.run_sync_soon(first)
    token.run_sync_soon(second)
    with trio.fail_after(10):
        await done.wait()
    assert seen == ["callback"]
    assert not hasattr(local, "conn")  # this task has storage of its own


async def test_default_value_of_a_finished_trio_task_is_freed() -> None:
    local = Local()
    refs: list[weakref.ref[Thing]] = []

    async def child() -> None:
        value = Thing()
        refs.append(weakref.ref(value))
        local.value = value

    async with trio.open_nursery() as nursery:
        nursery.start_soon(child)
    gc.collect()
    assert refs[0]() is None
