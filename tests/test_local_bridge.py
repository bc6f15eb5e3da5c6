"""Tests for asgibridge_any.local.Local across sync_to_async and async_to_sync."""

from __future__ import annotations

import contextvars
import threading
from typing import Any

import anyio
import pytest

from asgibridge_any.local import Local
from asgibridge_any.sync import async_to_sync, sync_to_async

sensitivity = pytest.mark.parametrize(
    "thread_sensitive", [True, False], ids=["sensitive", "pooled"]
)


def in_new_thread(func: Any, inherit: bool) -> Any:
    """Run ``func`` in a new thread (in a copy of this context if ``inherit``)."""
    outcome: list[Any] = []
    context = contextvars.copy_context()

    def run() -> None:
        outcome.append(context.run(func) if inherit else func())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    return outcome[0]


# --- async caller, sync callee ----------------------------------------------------------


@sensitivity
async def test_sync_to_async_sees_the_value_and_its_changes_come_back(
    thread_sensitive: bool,
) -> None:
    local = Local()
    local.user = "alice"

    def view() -> str:
        seen: str = local.user
        local.user = "bob"
        local.added = True
        return seen

    assert await sync_to_async(view, thread_sensitive=thread_sensitive)() == "alice"
    assert (local.user, local.added) == ("bob", True)


@sensitivity
async def test_deletion_in_sync_to_async_comes_back(thread_sensitive: bool) -> None:
    local = Local()
    local.user = "alice"

    def forget() -> None:
        del local.user

    await sync_to_async(forget, thread_sensitive=thread_sensitive)()
    assert not hasattr(local, "user")


async def test_changes_in_sync_to_async_come_back_when_it_raises() -> None:
    local = Local()

    def fail() -> None:
        local.step = "reached"
        raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        await sync_to_async(fail)()
    assert local.step == "reached"


async def test_sync_to_async_in_sibling_tasks_keeps_their_changes_apart() -> None:
    local = Local()
    local.value = "parent"
    results: dict[str, str] = {}

    def work(name: str) -> None:
        local.value = name

    async def task(name: str) -> None:
        await sync_to_async(work, thread_sensitive=False)(name)
        results[name] = local.value

    async with anyio.create_task_group() as tg:
        tg.start_soon(task, "one")
        tg.start_soon(task, "two")
    assert results == {"one": "one", "two": "two"}
    assert local.value == "parent"


async def test_thread_started_inside_sync_to_async_does_not_see_values() -> None:
    local = Local()
    local.value = "task"

    def view() -> tuple[bool, bool, str]:
        plain = in_new_thread(lambda: hasattr(local, "value"), inherit=False)
        inherited = in_new_thread(lambda: hasattr(local, "value"), inherit=True)
        return plain, inherited, local.value

    assert await sync_to_async(view)() == (False, False, "task")


async def test_value_carries_through_many_layers_and_back() -> None:
    local = Local()
    local.value = 1

    def sync_one() -> None:
        async def async_one() -> None:
            def sync_two() -> None:
                async def async_two() -> None:
                    assert local.value == 1
                    local.value = "deepest"

                async_to_sync(async_two)()

            await sync_to_async(sync_two, thread_sensitive=False)()

        async_to_sync(async_one)()

    await sync_to_async(sync_one)()
    assert local.value == "deepest"


# --- sync caller, async callee ----------------------------------------------------------


def test_async_to_sync_shares_values_both_ways(anyio_backend: str) -> None:
    local = Local()
    local.user = "alice"

    async def handler() -> str:
        seen: str = local.user
        local.user = "bob"
        return seen

    assert async_to_sync(handler, backend=anyio_backend)() == "alice"
    assert local.user == "bob"


def test_tasks_spawned_inside_async_to_sync_see_the_value(anyio_backend: str) -> None:
    local = Local()
    local.user = "alice"

    async def handler() -> list[str]:
        seen: list[str] = []

        async def child() -> None:
            seen.append(local.user)
            local.user = "child"

        async with anyio.create_task_group() as tg:
            tg.start_soon(child)
            tg.start_soon(child)
        return seen

    assert async_to_sync(handler, backend=anyio_backend)() == ["alice", "alice"]
    assert local.user == "alice"


def test_deletion_in_async_to_sync_comes_back(anyio_backend: str) -> None:
    local = Local()
    local.user = "alice"

    async def handler() -> None:
        del local.user

    async_to_sync(handler, backend=anyio_backend)()
    assert not hasattr(local, "user")


def test_async_to_sync_in_another_thread_keeps_each_threads_values(
    anyio_backend: str,
) -> None:
    local = Local()
    local.user = "main"

    def other_thread() -> tuple[bool, str]:
        async def handler() -> bool:
            found = hasattr(local, "user")
            local.user = "other"
            return found

        found = async_to_sync(handler, backend=anyio_backend)()
        return found, local.user

    assert in_new_thread(other_thread, inherit=False) == (False, "other")
    assert local.user == "main"


def test_async_to_sync_from_an_inheriting_thread_hides_the_parents_values(
    anyio_backend: str,
) -> None:
    """Test Python 3.14's ``thread_inherit_context`` case through the bridge."""
    local = Local()
    local.user = "main"

    def inheriting_thread() -> bool:
        async def handler() -> bool:
            return hasattr(local, "user")

        return bool(async_to_sync(handler, backend=anyio_backend)())

    assert in_new_thread(inheriting_thread, inherit=True) is False


def test_bridge_round_trip_does_not_open_inherited_values(anyio_backend: str) -> None:
    local = Local()
    local.user = "main"

    def inheriting_thread() -> tuple[bool, bool]:
        async def handler() -> None:
            local.from_handler = True

        async_to_sync(handler, backend=anyio_backend)()
        return local.from_handler, hasattr(local, "user")

    assert in_new_thread(inheriting_thread, inherit=True) == (True, False)


# --- thread-critical: never through the bridge -------------------------------------------


@sensitivity
async def test_thread_critical_value_does_not_go_through_sync_to_async(
    thread_sensitive: bool,
) -> None:
    local = Local(thread_critical=True)
    local.conn = "loop task's"

    def view() -> bool:
        found = hasattr(local, "conn")
        local.conn = "worker's"
        return found

    assert await sync_to_async(view, thread_sensitive=thread_sensitive)() is False
    assert local.conn == "loop task's"


def test_thread_critical_value_does_not_go_through_async_to_sync(
    anyio_backend: str,
) -> None:
    local = Local(thread_critical=True)
    local.conn = "sync thread's"

    async def handler() -> bool:
        found = hasattr(local, "conn")
        local.conn = "loop's"
        return found

    assert async_to_sync(handler, backend=anyio_backend)() is False
    assert local.conn == "sync thread's"


async def test_thread_critical_value_does_not_come_back_to_its_loop_task() -> None:
    """Test that sync_to_async then async_to_sync onto the same loop is a new task."""
    local = Local(thread_critical=True)
    local.conn = "outer task's"

    def view() -> bool:
        async def inner() -> bool:
            return hasattr(local, "conn")

        return async_to_sync(inner)()

    assert await sync_to_async(view)() is False
    assert local.conn == "outer task's"


def test_thread_critical_value_is_per_thread_across_a_bridge_round_trip(
    anyio_backend: str,
) -> None:
    """Test that sensitive work sent back to a sync thread uses that thread's storage."""
    critical, default = Local(thread_critical=True), Local()
    outer = threading.current_thread()
    ran_in: list[threading.Thread] = []

    def inner_sync() -> None:
        ran_in.append(threading.current_thread())
        critical.conn = "set in the outer thread"
        default.conn = "set in a copy of a child task's context"

    async def handler() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(sync_to_async(inner_sync))

    async_to_sync(handler, backend=anyio_backend)()
    assert ran_in == [outer]
    assert critical.conn == "set in the outer thread"
    # The child task's context got the default Local's value, not this thread's.
    assert not hasattr(default, "conn")
