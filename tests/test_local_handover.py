"""Tests for the hand-over protocol Local and the bridge share (asgibridge_any._context)."""

from __future__ import annotations

import contextvars
import threading
from typing import TYPE_CHECKING, Any

import pytest

from asgibridge_any import _context
from asgibridge_any.local import Local

from ._local_helpers import in_new_thread

if TYPE_CHECKING:
    from collections.abc import Callable


def hand_over(func: Callable[[], Any], source: str = "thread_id") -> Any:
    """
    Run ``func`` in another thread the way the bridge does, and return its result.

    The callee runs in a copy of this context, adopted by its thread; its changes are
    copied back here afterwards.

    :param source: what the callee tells adopt() about this thread: its ``thread_id``,
        its ``ident``, or ``none``
    """
    context = contextvars.copy_context()
    caller: _context.ThreadId | int | None = None
    if source == "thread_id":
        caller = _context.thread_id()
    elif source == "ident":
        caller = threading.get_ident()

    def callee() -> Any:
        _context.adopt(caller)
        return func()

    try:
        return in_new_thread(lambda: context.run(callee))
    finally:
        _context.copy_back(context)


@pytest.mark.parametrize("source", ["thread_id", "ident", "none"])
@pytest.mark.usefixtures("tagging")
def test_hand_over_shows_the_callers_values_and_brings_changes_back(
    source: str,
) -> None:
    local = Local()

    def body() -> None:
        local.value = "caller"
        local.kept = "caller"

        def callee() -> tuple[str, str]:
            seen: str = local.value
            local.value = "callee"
            local.added = "callee"
            return seen, local.kept

        assert hand_over(callee, source) == ("caller", "caller")
        assert (local.value, local.kept, local.added) == ("callee", "caller", "callee")
        # A second hand-over sees the first callee's values through the caller.
        assert hand_over(lambda: (local.added, local.kept), source) == (
            "callee",
            "caller",
        )

    contextvars.copy_context().run(body)


def test_deletion_travels_through_copy_back() -> None:
    local = Local()

    def body() -> None:
        local.value = "caller"

        def callee() -> None:
            del local.value

        hand_over(callee)
        assert not hasattr(local, "value")

    contextvars.copy_context().run(body)


def test_thread_that_inherited_a_context_cannot_open_it_through_the_bridge() -> None:
    """Test that a hand-over shows only what the (inheriting) caller could see."""
    local = Local()

    def body() -> None:
        local.parents = "parent"

        def inheriting_child() -> tuple[bool, bool, bool, bool]:
            local.own = "child"

            def callee() -> tuple[bool, bool]:
                local.from_callee = True
                return hasattr(local, "parents"), local.own == "child"

            parents_in_callee, own_in_callee = hand_over(callee)
            # Back in the child: the callee's value arrived, the parent's stays hidden.
            return (
                parents_in_callee,
                own_in_callee,
                hasattr(local, "parents"),
                local.from_callee,
            )

        assert in_new_thread(inheriting_child, inherit=True) == (
            False,
            True,
            False,
            True,
        )
        assert local.parents == "parent"

    contextvars.copy_context().run(body)


def test_nested_hand_overs_keep_what_each_caller_saw() -> None:
    local = Local()

    def body() -> None:
        local.top = 1

        def middle() -> tuple[int, int]:
            local.middle = 2

            def bottom() -> int:
                local.bottom = 3
                return int(local.top + local.middle)

            return hand_over(bottom), int(local.bottom)

        assert hand_over(middle) == (3, 3)
        assert (local.top, local.middle, local.bottom) == (1, 2, 3)
        # A thread that inherits the result still sees none of it.
        assert in_new_thread(lambda: hasattr(local, "top"), inherit=True) is False
        assert in_new_thread(lambda: hasattr(local, "bottom"), inherit=True) is False

    contextvars.copy_context().run(body)


@pytest.mark.parametrize("source", ["thread_id", "ident"])
def test_caller_thread_without_values_hands_over_nothing_foreign(source: str) -> None:
    """Test a hand-over from a thread that never stored a value (no ThreadId yet)."""
    local = Local()

    def body() -> None:
        local.parents = "parent"

        def fresh_inheriting_thread() -> bool:
            return bool(hand_over(lambda: hasattr(local, "parents"), source))

        assert in_new_thread(fresh_inheriting_thread, inherit=True) is False

    contextvars.copy_context().run(body)


def test_value_of_a_finished_thread_stays_hidden_from_a_thread_reusing_its_ident() -> (
    None
):
    """Test that thread idents, reused as soon as a thread exits, do not open values."""
    local = Local()

    def body() -> None:
        def callee() -> int:
            local.from_finished = "finished thread"
            return threading.get_ident()

        finished_ident = hand_over(callee)  # its value now lives in this context
        assert local.from_finished == "finished thread"
        for _ in range(20):  # new threads soon get the finished thread's ident
            ident, seen = in_new_thread(
                lambda: (threading.get_ident(), hasattr(local, "from_finished")),
                inherit=True,
            )
            assert seen is False
            if ident == finished_ident:
                break

    contextvars.copy_context().run(body)


def test_thread_id_is_per_thread_and_outlives_its_thread() -> None:
    me = _context.thread_id()
    assert _context.thread_id() is me
    assert me.ident == threading.get_ident()
    assert "alive" in repr(me)
    other = in_new_thread(_context.thread_id)
    assert other is not me
    assert "finished" in repr(other)
    # A finished thread's ident no longer names it, even before the ident is reused.
    context = contextvars.copy_context()

    def adopted_from_finished_ident() -> object:
        _context.adopt(other.ident)
        return _context.home_thread.get()

    _, trusted = in_new_thread(lambda: context.run(adopted_from_finished_ident))
    assert trusted == frozenset()
