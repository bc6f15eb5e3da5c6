"""
Local(thread_critical=True) in an event-loop thread, side by side with asgiref's.

asgiref 3.13 keeps thread-critical values of an asyncio thread in a context variable of
that thread, so a task it spawns starts with a copy of the spawning task's values.
asgibridge_any keeps them per task: every task starts empty (docs/migrating.rst lists
the difference). What a task stores stays its own in both. The comparisons with asgiref
run under asyncio, the loop asgiref's Local is written for.
"""

from __future__ import annotations

from typing import Any

import anyio
import asgiref.local
import pytest

from asgibridge_any.local import Local

asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])


async def _child_sees(local: Any) -> bool:
    seen: list[bool] = []

    async def child() -> None:
        seen.append(hasattr(local, "conn"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(child)
    return seen == [True]


async def _stored_by_a_child_is_seen_after_it(local: Any) -> bool:
    async def store() -> None:
        local.conn = "child's"

    async with anyio.create_task_group() as tg:
        tg.start_soon(store)
    return hasattr(local, "conn")


async def test_a_child_task_starts_empty() -> None:
    local = Local(thread_critical=True)
    local.conn = "parent's"
    assert await _child_sees(local) is False
    assert local.conn == "parent's"


@asyncio_only
async def test_asgiref_gives_a_child_task_the_parents_values() -> None:
    theirs = asgiref.local.Local(thread_critical=True)
    theirs.conn = "parent's"
    assert await _child_sees(theirs) is True


async def test_a_value_a_child_task_stored_is_not_seen_by_its_parent() -> None:
    local = Local(thread_critical=True)
    assert await _stored_by_a_child_is_seen_after_it(local) is False


@asyncio_only
async def test_asgiref_also_keeps_a_child_tasks_value_from_its_parent() -> None:
    theirs = asgiref.local.Local(thread_critical=True)
    assert await _stored_by_a_child_is_seen_after_it(theirs) is False


async def test_sibling_tasks_keep_separate_values() -> None:
    local = Local(thread_critical=True)
    first_stored, second_stored = anyio.Event(), anyio.Event()
    read: dict[str, str] = {}

    async def first() -> None:
        local.conn = "first"
        first_stored.set()
        await second_stored.wait()
        read["first"] = local.conn

    async def second() -> None:
        await first_stored.wait()
        local.conn = "second"
        second_stored.set()
        read["second"] = local.conn

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            tg.start_soon(second)
    assert read == {"first": "first", "second": "second"}
