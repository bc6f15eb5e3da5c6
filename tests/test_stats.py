"""stats(): exact numbers while known calls are held busy and queued, on both loops."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.to_thread
import pytest

from asgibridge_any import Stats, _threads, stats
from asgibridge_any._threads import _LaneThread
from asgibridge_any.sync import (
    ThreadSensitiveContext,
    async_to_sync,
    set_context_thread_limit,
    sync_to_async,
)
from asgibridge_any.wsgi import WsgiToAsgi

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from asgibridge_any.typing import Scope


@pytest.fixture(autouse=True)
def settled() -> Iterator[None]:
    """Start once earlier tests' context threads have exited; lift any cap after."""
    for thread in threading.enumerate():
        if isinstance(thread, _LaneThread) and thread.lane.closed:
            thread.join(10)
    try:
        yield
    finally:
        set_context_thread_limit(None)


class _Gate:
    """Sync functions that block until released, counting how many started."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.started = 0
        self.changed = threading.Condition(self.lock)

    def block(self, *_: object) -> None:
        with self.changed:
            self.started += 1
            self.changed.notify_all()
        self.release.wait(10)

    def wait_started(self, count: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.started >= count, 10)


async def _hold(gate: _Gate, count: int, start: Callable[[], Any]) -> None:
    # Start the calls, then wait until ``count`` of them run and the rest are parked.
    # The wait takes a token of a limiter of its own, not of the one under test.
    start()
    waiter = anyio.CapacityLimiter(1)
    assert await anyio.to_thread.run_sync(gate.wait_started, count, limiter=waiter)
    await anyio.wait_all_tasks_blocked()


async def test_stats_count_busy_and_queued_worker_calls(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pool of its own: a worker of an earlier test may still be winding down.
    monkeypatch.setattr(_threads, "worker_pool", _threads.WorkerPool())
    gate = _Gate()
    limiter = anyio.to_thread.current_default_thread_limiter()
    tokens = limiter.total_tokens
    limiter.total_tokens = 3
    try:
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tasks:

                def start() -> None:
                    for _ in range(5):
                        tasks.start_soon(
                            sync_to_async(gate.block, thread_sensitive=False)
                        )

                await _hold(gate, 3, start)
                snapshot = stats().workers
                gate.release.set()
    finally:
        limiter.total_tokens = tokens
    assert snapshot.in_flight == 3
    assert snapshot.queued == 2
    assert (snapshot.threads, snapshot.idle) == (3, 0)


async def test_stats_count_sensitive_calls_and_name_the_holder(
    anyio_backend: str,
) -> None:
    gate = _Gate()
    before = anyio.current_time()
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tasks:

            async def in_context() -> None:
                async with ThreadSensitiveContext(), anyio.create_task_group() as inner:
                    for _ in range(3):  # one runs, two queue behind it
                        inner.start_soon(sync_to_async(gate.block))

            def start() -> None:
                tasks.start_soon(in_context)
                for _ in range(2):  # the process-wide thread: one runs, one queues
                    tasks.start_soon(sync_to_async(gate.block))

            await _hold(gate, 2, start)
            snapshot = stats().sensitive
            elapsed = anyio.current_time() - before
            gate.release.set()
    assert snapshot.threads == 2
    assert snapshot.context_threads == 1
    assert snapshot.in_flight == 2
    assert snapshot.queued == 3
    assert snapshot.holder == f"{__name__}._Gate.block"
    assert 0 < snapshot.longest_hold <= elapsed
    assert (snapshot.contexts_waiting, snapshot.longest_context_wait) == (0, 0.0)


async def test_stats_count_contexts_waiting_for_a_thread(anyio_backend: str) -> None:
    gate = _Gate()
    set_context_thread_limit(1)

    async def in_context() -> None:
        async with ThreadSensitiveContext():
            await sync_to_async(gate.block)()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tasks:

            def start() -> None:
                for _ in range(3):
                    tasks.start_soon(in_context)

            await _hold(gate, 1, start)
            before_read = anyio.current_time()
            snapshot = stats().sensitive
            gate.release.set()
    assert snapshot.context_thread_limit == 1
    assert snapshot.context_threads == 1
    assert snapshot.contexts_waiting == 2
    assert snapshot.queued == 2  # one call in each waiting context
    assert 0 < snapshot.longest_context_wait
    assert snapshot.longest_context_wait <= before_read + 1  # a real duration
    assert stats().sensitive.contexts_waiting == 0


def test_stats_count_loop_threads_running_calls(anyio_backend: str) -> None:
    gate = _Gate()
    loop_release = threading.Event()

    async def wait() -> None:
        await anyio.to_thread.run_sync(gate.block)

    callers = [
        threading.Thread(target=async_to_sync(wait, backend=anyio_backend))
        for _ in range(2)
    ]
    for caller in callers:
        caller.start()
    try:
        assert gate.wait_started(2)
        snapshot = stats().loops
    finally:
        gate.release.set()
        loop_release.set()
        for caller in callers:
            caller.join(10)
    assert snapshot.in_flight == 2
    assert snapshot.threads - snapshot.idle == 2


async def test_stats_count_wsgi_requests_of_adapters_with_a_limiter(
    anyio_backend: str,
) -> None:
    gate = _Gate()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        gate.block()
        start_response("200 OK", [])
        return [b"ok"]

    adapter = WsgiToAsgi(app, limiter=anyio.CapacityLimiter(2))
    shared = WsgiToAsgi(app)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def serve() -> None:
        await adapter(cast("Scope", scope), receive, send)  # type: ignore[arg-type]

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tasks:

            def start() -> None:
                for _ in range(3):
                    tasks.start_soon(serve)

            await _hold(gate, 2, start)
            snapshot = stats().wsgi
            gate.release.set()
    del shared
    assert snapshot.adapters >= 2
    assert snapshot.default_limiter >= 1
    assert snapshot.in_flight == 2
    assert snapshot.queued == 1
    assert snapshot.capacity >= 2
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [
        200
    ] * 3


def test_stats_at_rest_report_nothing_in_flight() -> None:
    snapshot = stats()
    assert isinstance(snapshot, Stats)
    assert snapshot.sensitive.in_flight == 0
    assert snapshot.sensitive.queued == 0
    assert snapshot.sensitive.holder is None
    assert snapshot.loops.in_flight == 0
    assert snapshot.wsgi.in_flight == 0
