"""Tests for asgibridge_any.local.Local without the bridge: tasks, threads, bad input.

The hand-over protocol is tested in test_local_handover.py, freeing and size in
test_local_memory.py, the bridge in test_local_bridge.py.
"""

from __future__ import annotations

import contextvars
import copy
import pickle
import threading
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from asgibridge_any import _context
from asgibridge_any.local import Local, _DefaultLocal, _ThreadCriticalLocal

from ._local_helpers import in_new_thread

if TYPE_CHECKING:
    from anyio.abc import TaskStatus


both_kinds = pytest.mark.parametrize(
    "critical", [False, True], ids=["default", "critical"]
)


# --- attribute namespace and bad input -------------------------------------------------


@both_kinds
def test_set_get_and_delete_an_attribute(critical: bool) -> None:
    local = Local(thread_critical=critical)
    local.foo = 1
    assert local.foo == 1
    local.foo = 2
    assert local.foo == 2
    del local.foo
    assert not hasattr(local, "foo")
    local.foo = 3
    assert local.foo == 3


@both_kinds
def test_missing_attribute_raises_attribute_error_naming_it(critical: bool) -> None:
    local = Local(thread_critical=critical)
    with pytest.raises(AttributeError, match="'missing_one'") as info:
        local.missing_one  # noqa: B018
    assert info.value.name == "missing_one"
    assert info.value.obj is local


@both_kinds
def test_deleting_a_missing_attribute_raises_attribute_error_naming_it(
    critical: bool,
) -> None:
    local = Local(thread_critical=critical)
    with pytest.raises(AttributeError, match="'never_set'"):
        del local.never_set
    local.gone = 1
    del local.gone
    with pytest.raises(AttributeError, match="'gone'"):
        del local.gone


@both_kinds
@pytest.mark.parametrize("name", ["_data", "__class__", "__weakref__", "__setattr__"])
def test_names_of_the_object_itself_are_refused(critical: bool, name: str) -> None:
    local = Local(thread_critical=critical)
    local.keep = "me"
    with pytest.raises(AttributeError, match="belongs to the Local object itself"):
        setattr(local, name, "user value")
    with pytest.raises(AttributeError, match="belongs to the Local object itself"):
        delattr(local, name)
    assert type(local) is (_ThreadCriticalLocal if critical else _DefaultLocal)
    assert local.keep == "me"
    local.other = 1  # the object still works
    assert local.other == 1


@both_kinds
def test_the_objects_own_attributes_stay_readable(critical: bool) -> None:
    local = Local(thread_critical=critical)
    assert local.__class__ is type(local)
    assert isinstance(local, Local)
    assert repr(local).startswith("<asgibridge_any.local.")


@both_kinds
def test_copying_or_pickling_a_local_is_refused(critical: bool) -> None:
    local = Local(thread_critical=critical)
    local.value = 1
    for copier in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match="cannot be copied or pickled"):
            copier(local)
    assert "value" not in dir(local)  # dir() works, listing the object's own names
    assert local.value == 1


def test_local_returns_the_kind_asked_for() -> None:
    assert type(Local()) is _DefaultLocal
    assert type(Local(thread_critical=False)) is _DefaultLocal
    assert type(Local(thread_critical=True)) is _ThreadCriticalLocal


def test_subclassing_local_is_refused() -> None:
    class Mine(Local):  # type: ignore[misc]
        pass

    with pytest.raises(TypeError, match="cannot be subclassed"):
        Mine()


@both_kinds
def test_attributes_of_two_locals_are_separate(critical: bool) -> None:
    one, two = Local(thread_critical=critical), Local(thread_critical=critical)
    one.x = 1
    assert not hasattr(two, "x")
    two.x = 2
    assert (one.x, two.x) == (1, 2)


# --- async tasks (anyio task groups, both backends) ------------------------------------


@pytest.mark.usefixtures("tagging")
async def test_value_is_seen_by_awaited_code() -> None:
    local = Local()
    local.user = "alice"

    async def inner() -> str:
        await anyio.lowlevel.checkpoint()
        value: str = local.user
        local.user = "bob"
        return value

    assert await inner() == "alice"
    assert local.user == "bob"  # awaited code runs in the same context


@pytest.mark.usefixtures("tagging")
async def test_value_is_seen_by_spawned_tasks_but_their_changes_stay_there() -> None:
    local = Local()
    local.user = "parent"
    seen: list[str] = []

    async def child() -> None:
        seen.append(local.user)
        local.user = "child"
        seen.append(local.user)

    async with anyio.create_task_group() as tg:
        tg.start_soon(child)
    assert seen == ["parent", "child"]
    assert local.user == "parent"


async def test_value_set_in_a_task_is_not_seen_by_its_parent_or_siblings() -> None:
    local = Local()
    first_set, second_checked = anyio.Event(), anyio.Event()
    seen: dict[str, bool] = {}

    async def first() -> None:
        local.value = "first"
        first_set.set()
        await second_checked.wait()
        seen["first still"] = local.value == "first"

    async def second() -> None:
        await first_set.wait()
        seen["second sees"] = hasattr(local, "value")
        second_checked.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            tg.start_soon(second)
    assert seen == {"first still": True, "second sees": False}
    assert not hasattr(local, "value")


async def test_task_started_with_start_sees_the_value_too() -> None:
    local = Local()
    local.request_id = 7

    async def child(*, task_status: TaskStatus[int]) -> None:
        task_status.started(local.request_id)

    async with anyio.create_task_group() as tg:
        assert await tg.start(child) == 7


async def test_deleting_in_a_child_task_leaves_the_parent_value() -> None:
    local = Local()
    local.value = 123
    seen: list[bool] = []

    async def child() -> None:
        del local.value
        seen.append(hasattr(local, "value"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(child)
    assert seen == [False]
    assert local.value == 123


async def test_deleting_in_the_parent_leaves_a_running_child_value() -> None:
    local = Local()
    local.value = "shared"
    deleted, checked = anyio.Event(), anyio.Event()
    seen: list[str] = []

    async def child() -> None:
        await deleted.wait()
        seen.append(local.value)
        checked.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(child)
            await anyio.wait_all_tasks_blocked()
            del local.value
            deleted.set()
            await checked.wait()
    assert seen == ["shared"]
    assert not hasattr(local, "value")


async def test_thread_critical_value_is_per_task_in_a_task_group() -> None:
    local = Local(thread_critical=True)
    local.conn = "parent's"
    seen: list[tuple[bool, str]] = []

    async def child() -> None:
        found = hasattr(local, "conn")
        local.conn = "child's"
        await anyio.lowlevel.checkpoint()
        seen.append((found, local.conn))

    async with anyio.create_task_group() as tg:
        tg.start_soon(child)
        tg.start_soon(child)
    assert seen == [(False, "child's")] * 2
    assert local.conn == "parent's"
    del local.conn
    assert not hasattr(local, "conn")


async def test_anyio_to_thread_worker_does_not_see_loop_values() -> None:
    """Test that a context copied to a thread without the bridge hides the values."""
    local = Local()
    local.value = "loop"

    def worker() -> bool:
        found = hasattr(local, "value")
        local.value = "worker"
        return found

    assert await anyio.to_thread.run_sync(worker) is False
    assert local.value == "loop"


# --- plain threads ----------------------------------------------------------------------


@both_kinds
@pytest.mark.usefixtures("tagging")
def test_plain_threads_behave_like_threading_local(critical: bool) -> None:
    local = Local(thread_critical=critical)
    local.value = "main"

    def other() -> tuple[bool, str]:
        found = hasattr(local, "value")
        local.value = "other"
        return found, local.value

    assert in_new_thread(other) == (False, "other")
    assert local.value == "main"


@both_kinds
def test_value_is_seen_anywhere_in_the_same_thread(critical: bool) -> None:
    local = Local(thread_critical=critical)

    def deep() -> None:
        local.value = "deep"

    deep()
    assert local.value == "deep"


def test_thread_started_in_a_copy_of_the_context_does_not_see_values() -> None:
    """Test Python 3.14's ``thread_inherit_context`` case: the new thread starts in a copy."""
    local = Local()
    local.value = "parent"
    local.other = "parent too"

    def child() -> tuple[bool, bool, str, bool]:
        found = hasattr(local, "value")
        local.value = "child"
        return found, hasattr(local, "other"), local.value, hasattr(local, "other")

    assert in_new_thread(child, inherit=True) == (False, False, "child", False)
    assert (local.value, local.other) == ("parent", "parent too")


def test_copy_of_an_adopted_context_in_a_new_thread_hides_values() -> None:
    """Test that a home-thread mark inherited from the parent does not open the values."""
    local = Local()

    def parent() -> bool:
        local.value = "parent"
        _context.adopt()  # as the bridge leaves the caller's context after copy-back
        return bool(in_new_thread(lambda: hasattr(local, "value"), inherit=True))

    assert contextvars.copy_context().run(parent) is False


def test_without_tagging_a_copied_context_shows_its_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Test that the thread tag is what hides the values (TAG_THREADS off skips it)."""
    monkeypatch.setattr(_context, "TAG_THREADS", False)
    local = Local()
    local.value = "parent"
    assert in_new_thread(lambda: local.value, inherit=True) == "parent"


@both_kinds
@pytest.mark.usefixtures("tagging")
def test_fifty_threads_hammering_one_local_keep_their_values(critical: bool) -> None:
    local = Local(thread_critical=critical)
    local.shared = "main"
    start = threading.Barrier(50)
    errors: list[str] = []

    def hammer(n: int) -> None:
        start.wait(10)
        for i in range(300):
            local.mine = (n, i)
            setattr(local, f"name{i % 7}", n)
            if local.mine != (n, i) or getattr(local, f"name{i % 7}") != n:
                errors.append(f"thread {n} read {local.mine!r} at {i}")
            if hasattr(local, "shared"):
                errors.append(f"thread {n} saw the main thread's value")
            if i % 3 == 0:
                del local.mine
                if hasattr(local, "mine"):
                    errors.append(f"thread {n} still sees a deleted value")

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert local.shared == "main"
    assert not hasattr(local, "mine")
