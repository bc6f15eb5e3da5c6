"""Tests that Local frees what it stores by reference counting, and stays small."""

from __future__ import annotations

import contextvars
import gc
import tracemalloc
import weakref
from typing import TYPE_CHECKING, Any

import pytest

from asgibridge_any.local import Local

from ._local_helpers import in_new_thread

if TYPE_CHECKING:
    from collections.abc import Iterator


class Thing:
    """A value that can be weakly referenced, to watch when it is freed."""


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Switch the cyclic collector off, so only reference counting frees objects."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


both_kinds = pytest.mark.parametrize(
    "critical", [False, True], ids=["default", "critical"]
)


# --- memory: freed by reference counting -----------------------------------------------


@both_kinds
@pytest.mark.usefixtures("no_gc", "tagging")
def test_value_is_freed_without_gc_when_the_local_goes_away(critical: bool) -> None:
    local = Local(thread_critical=critical)
    value = Thing()
    ref = weakref.ref(value)
    local.value = value
    local.again = value
    del value
    assert ref() is not None
    del local
    assert ref() is None


@pytest.mark.usefixtures("no_gc")
def test_value_held_by_another_living_context_is_freed_with_the_local() -> None:
    local = Local()
    value = Thing()
    ref = weakref.ref(value)
    local.value = value
    del value
    kept = contextvars.copy_context()  # e.g. a task still running elsewhere
    del local
    assert ref() is None
    assert len(list(kept.items())) > 0  # the context lives on, without the value


@both_kinds
@pytest.mark.usefixtures("no_gc")
def test_value_stored_in_a_finished_thread_is_freed_with_it(critical: bool) -> None:
    local = Local(thread_critical=critical)
    refs: list[weakref.ref[Thing]] = []

    def store() -> None:
        value = Thing()
        refs.append(weakref.ref(value))
        local.value = value

    in_new_thread(store)
    assert refs[0]() is None
    assert not hasattr(local, "value")


@both_kinds
@pytest.mark.usefixtures("no_gc")
def test_overwritten_and_deleted_values_are_freed(critical: bool) -> None:
    local = Local(thread_critical=critical)
    first, second = Thing(), Thing()
    first_ref, second_ref = weakref.ref(first), weakref.ref(second)
    local.value = first
    local.value = second
    del first, second
    assert first_ref() is None
    del local.value
    assert second_ref() is None


@both_kinds
def test_using_a_local_creates_no_reference_cycles(critical: bool) -> None:
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        local = Local(thread_critical=critical)
        local.value = Thing()
        local.value = Thing()
        assert isinstance(local.value, Thing)
        del local.value
        local.other = [1, 2]
        with pytest.raises(AttributeError):
            local.missing  # noqa: B018

        def store_in_thread(local: Local = local) -> None:
            local.value = Thing()

        in_new_thread(store_in_thread)
        del local, store_in_thread
        gc.collect()
        assert gc.garbage == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_local_in_a_cycle_is_collected_with_its_values() -> None:
    local = Local()
    value = Thing()
    ref = weakref.ref(value)
    cycle: list[Any] = [local]
    cycle.append(cycle)
    local.value = value
    del value, local, cycle
    gc.collect()
    assert ref() is None


@both_kinds
def test_an_empty_local_costs_a_few_hundred_bytes_at_most(critical: bool) -> None:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        locals_ = [Local(thread_critical=critical) for _ in range(200)]
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(locals_) == 200
    assert used / 200 < 300
