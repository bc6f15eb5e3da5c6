"""The opt-in warning about thread-sensitive calls holding their thread too long."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import anyio
import pytest

from asgibridge_any import warn_slow_sensitive_calls
from asgibridge_any._watchdog import _Watcher
from asgibridge_any.sync import ThreadSensitiveContext, sync_to_async

if TYPE_CHECKING:
    from collections.abc import Iterator

WATCHER = "asgibridge_any slow-call watcher"


class _Recorder(logging.Handler):
    """Keeps the package's warnings and signals the first one."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self.arrived = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.arrived.set()


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    """Record the warnings of the "asgibridge_any" logger; turn the warning off after."""
    handler = _Recorder()
    logger = logging.getLogger("asgibridge_any")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        warn_slow_sensitive_calls(None)
        logger.removeHandler(handler)


def _watchers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == WATCHER]


def stuck_in_the_view(recorder: _Recorder) -> None:
    """Block until the watcher reported this very call."""
    recorder.arrived.wait(10)


async def test_slow_sensitive_call_is_reported_with_its_name_and_stack(
    anyio_backend: str, recorder: _Recorder
) -> None:
    warn_slow_sensitive_calls(0.05)
    with anyio.fail_after(20):
        async with ThreadSensitiveContext():
            await sync_to_async(stuck_in_the_view)(recorder)
    assert recorder.arrived.is_set()
    [record] = recorder.records
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert f"{__name__}.stuck_in_the_view" in message
    assert "asgibridge_any context" in message  # the thread it holds
    # The stack shows where the call blocks.
    assert "recorder.arrived.wait(10)" in message


async def test_slow_call_on_the_process_wide_thread_is_reported_once(
    anyio_backend: str, recorder: _Recorder
) -> None:
    # The watcher's looks, taken by hand (no watcher thread): a call seen over the
    # threshold again and again is reported once.
    watcher = _Watcher(0.01)
    running, release = threading.Event(), threading.Event()
    reports: list[int] = []

    def stuck() -> None:
        running.set()
        release.wait(10)

    def look_three_times() -> None:
        running.wait(10)
        seen: set[tuple[int, float]] = set()
        while not recorder.arrived.is_set():
            seen = watcher._look(seen)
        for _ in range(3):
            seen = watcher._look(seen)
            reports.append(len(recorder.records))
        release.set()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(sync_to_async(stuck))
            await anyio.to_thread.run_sync(look_three_times)
    assert reports == [1, 1, 1]
    assert f"{__name__}.test_slow_call" in recorder.records[0].getMessage()
    assert "asgibridge_any sensitive" in recorder.records[0].getMessage()


async def test_quick_calls_are_not_reported(
    anyio_backend: str, recorder: _Recorder
) -> None:
    warn_slow_sensitive_calls(30)
    for _ in range(20):
        await sync_to_async(int)()
    warn_slow_sensitive_calls(None)
    assert recorder.records == []


def test_watcher_thread_lives_only_while_the_warning_is_on(recorder: _Recorder) -> None:
    assert _watchers() == []
    warn_slow_sensitive_calls(1)
    [first] = _watchers()
    warn_slow_sensitive_calls(2)  # replaces the watcher
    assert not first.is_alive()
    assert len(_watchers()) == 1
    warn_slow_sensitive_calls(None)
    assert _watchers() == []
    warn_slow_sensitive_calls(None)  # already off: nothing to do


@pytest.mark.parametrize("bad", [0, -1.5, True, "1", float("nan")])
def test_threshold_must_be_a_positive_number(bad: object) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        warn_slow_sensitive_calls(bad)  # type: ignore[arg-type]
    assert _watchers() == []
