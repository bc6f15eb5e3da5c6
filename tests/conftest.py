"""Shared fixtures: backend parametrisation and the stray-thread check."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import pytest

from asgibridge_any import _context

if TYPE_CHECKING:
    from collections.abc import Iterator

# Threads that belong to a pool and may outlive a test while idle: anyio's and trio's
# worker caches, and this package's own reusable threads (checked for idleness below).
_FOREIGN_POOLS = ("AnyIO worker thread", "Trio thread", "trio-", "asyncio_")


def _is_idle_pool_thread(thread: threading.Thread) -> bool:
    if thread.name.startswith(_FOREIGN_POOLS):
        return True
    try:
        from asgibridge_any._threads import thread_is_idle
    except ImportError:
        return False
    return thread_is_idle(thread)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def no_stray_threads() -> Iterator[None]:
    """Fail a test that leaves a thread running that is neither idle in a pool nor done."""
    before = set(threading.enumerate())
    yield
    # A thread finishing its last instructions, or a pool thread on its way back to
    # its queue, gets a moment (polled, so an idle pool thread costs no wait).
    deadline = time.monotonic() + 10
    stray = []
    for thread in threading.enumerate():
        if thread in before:
            continue
        while (
            thread.is_alive()
            and not _is_idle_pool_thread(thread)
            and time.monotonic() < deadline
        ):
            thread.join(0.01)
        if thread.is_alive() and not _is_idle_pool_thread(thread):
            stray.append(thread)
    assert not stray, f"test left threads running: {stray!r}"


@pytest.fixture(params=[True, False], ids=["tagged", "untagged"])
def tagging(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run a Local test with values tagged by thread (the default) and without."""
    monkeypatch.setattr(_context, "TAG_THREADS", request.param)
    return bool(request.param)
