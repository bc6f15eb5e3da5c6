"""Hop hooks: every hop of the bridge reported at its start and end, on both loops."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import anyio
import pytest

from asgibridge_any import HopEvent, add_hop_hook, remove_hop_hook
from asgibridge_any.sync import async_to_sync, sync_to_async

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def events() -> Iterator[list[HopEvent]]:
    """Record every hop event while the test runs."""
    seen: list[HopEvent] = []
    add_hop_hook(seen.append)
    try:
        yield seen
    finally:
        remove_hop_hook(seen.append)


def _summary(event: HopEvent) -> tuple[str, str, str, str]:
    return (event.phase, event.direction, event.function.__name__, event.backend)


async def test_hooks_see_every_hop_of_a_nested_chain_in_order(
    anyio_backend: str, events: list[HopEvent]
) -> None:
    def leaf() -> threading.Thread:
        return threading.current_thread()

    async def middle() -> threading.Thread:
        return await sync_to_async(leaf)()

    def outer() -> tuple[threading.Thread, threading.Thread]:
        return threading.current_thread(), async_to_sync(middle)()

    outer_thread, leaf_thread = await sync_to_async(outer)()

    assert [_summary(event) for event in events] == [
        ("start", "sync_to_async", "outer", anyio_backend),
        ("start", "async_to_sync", "middle", anyio_backend),
        ("start", "sync_to_async", "leaf", anyio_backend),
        ("end", "sync_to_async", "leaf", anyio_backend),
        ("end", "async_to_sync", "middle", anyio_backend),
        ("end", "sync_to_async", "outer", anyio_backend),
    ]
    # Each event names the thread that ran the hop's callee.
    loop_thread = threading.current_thread()
    assert [event.thread for event in events] == [
        outer_thread,
        loop_thread,
        leaf_thread,
        leaf_thread,
        loop_thread,
        outer_thread,
    ]
    assert leaf_thread is outer_thread  # thread-sensitive: back on the same thread
    # Start and end of a hop share an id; the ids of different hops differ.
    ids = [event.hop_id for event in events]
    assert ids[0] == ids[5]
    assert ids[1] == ids[4]
    assert ids[2] == ids[3]
    assert len(set(ids)) == 3
    for event in events:
        if event.phase == "start":
            assert (event.duration, event.outcome, event.error) == (None, None, None)
        else:
            assert event.duration is not None
            assert event.duration >= 0
            assert (event.outcome, event.error) == ("ok", None)


def test_async_to_sync_from_a_plain_thread_names_the_backend_it_ran_on(
    anyio_backend: str, events: list[HopEvent]
) -> None:
    async def answer() -> int:
        return 42

    assert async_to_sync(answer, backend=anyio_backend)() == 42
    assert [_summary(event) for event in events] == [
        ("start", "async_to_sync", "answer", anyio_backend),
        ("end", "async_to_sync", "answer", anyio_backend),
    ]
    assert events[0].thread is not threading.current_thread()


async def test_hook_sees_the_error_a_function_raised(
    anyio_backend: str, events: list[HopEvent]
) -> None:
    error = ValueError("boom")

    def fail() -> None:
        raise error

    with pytest.raises(ValueError, match="boom") as caught:
        await sync_to_async(fail, thread_sensitive=False)()
    assert caught.value is error
    assert [(event.phase, event.outcome, event.error) for event in events] == [
        ("start", None, None),
        ("end", "error", error),
    ]


async def test_hook_sees_a_cancelled_coroutine(
    anyio_backend: str, events: list[HopEvent]
) -> None:
    started = threading.Event()

    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    def wait_forever() -> None:
        async_to_sync(forever)()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(sync_to_async(wait_forever))
            assert await anyio.to_thread.run_sync(started.wait, 5)
            tasks.cancel_scope.cancel()
    ends = {event.function.__name__: event for event in events if event.phase == "end"}
    assert ends["forever"].outcome == "cancelled"
    assert isinstance(ends["forever"].error, anyio.get_cancelled_exc_class())
    # The cancellation then came out of async_to_sync in the sync function.
    assert ends["wait_forever"].outcome == "error"


async def test_a_raising_hook_is_logged_and_never_breaks_a_call(
    anyio_backend: str, caplog: pytest.LogCaptureFixture, events: list[HopEvent]
) -> None:
    def broken(event: HopEvent) -> None:
        raise RuntimeError(f"hook failed at {event.phase}")

    async def double(value: int) -> int:
        return await sync_to_async(lambda: value * 2)()

    add_hop_hook(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="asgibridge_any"):
            result = await sync_to_async(lambda: async_to_sync(double)(21))()
    finally:
        remove_hop_hook(broken)
    assert result == 42
    failures = [r for r in caplog.records if r.name == "asgibridge_any"]
    assert len(failures) == 6  # start and end of three hops
    assert all("hop hook" in record.getMessage() for record in failures)
    assert all(record.exc_info is not None for record in failures)
    # Hooks added before the broken one still saw every event.
    assert len(events) == 6


async def test_removed_hook_is_not_called_any_more(anyio_backend: str) -> None:
    seen: list[HopEvent] = []
    add_hop_hook(seen.append)
    await sync_to_async(int)()
    remove_hop_hook(seen.append)
    await sync_to_async(int)()
    assert [event.phase for event in seen] == ["start", "end"]


def test_hook_must_be_callable() -> None:
    with pytest.raises(TypeError, match="needs a callable taking a HopEvent"):
        add_hop_hook(42)  # type: ignore[arg-type]


def test_removing_an_unknown_hook_names_it() -> None:
    with pytest.raises(ValueError, match="is not a registered hop hook"):
        remove_hop_hook(print)
