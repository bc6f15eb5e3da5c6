"""
``thread_sensitive=False`` calls under load: workers pass limiter tokens on to queued
calls without a loop round trip, and the limiter's bound stays exact throughout.
"""

from __future__ import annotations

import random
import threading

import anyio
import anyio.to_thread
import pytest

from asgibridge_any.sync import sync_to_async


class _Gauge:
    """Counts the calls running at once, from the threads themselves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.ran: list[int] = []

    def enter(self, n: int) -> None:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.ran.append(n)

    def leave(self) -> None:
        with self._lock:
            self.active -= 1


@pytest.mark.timeout(120)
async def test_bound_holds_under_random_cancellation() -> None:
    """Test that no more calls run than tokens, whatever is cancelled, and all come back."""
    limiter = anyio.CapacityLimiter(3)
    gauge = _Gauge()
    rng = random.Random(19)
    outcomes: dict[int, str] = {}

    def work(n: int, spins: int) -> int:
        gauge.enter(n)
        total = sum(range(spins))  # a little work, different lengths
        gauge.leave()
        return n + total * 0

    async def one(n: int) -> None:
        call = sync_to_async(work, thread_sensitive=False, limiter=limiter)
        with anyio.CancelScope() as scope:
            if rng.random() < 0.2:
                scope.cancel()  # cancelled before or while it is queued
            outcomes[n] = "ok" if await call(n, rng.randrange(2000)) == n else "bad"
        if scope.cancelled_caught:
            outcomes[n] = "cancelled"

    async with anyio.create_task_group() as tg:
        for n in range(600):
            tg.start_soon(one, n)
            if n % 50 == 0:
                await anyio.lowlevel.checkpoint()
    assert gauge.peak <= 3
    assert len(outcomes) == 600
    assert "bad" not in outcomes.values()
    # A call that returned ran exactly once; a cancelled one ran at most once.
    ok = [n for n, outcome in outcomes.items() if outcome == "ok"]
    assert sorted(n for n in gauge.ran if n in set(ok)) == sorted(ok)
    assert len(gauge.ran) == len(set(gauge.ran))
    assert "cancelled" in outcomes.values()
    assert limiter.borrowed_tokens == 0


async def test_cancelled_queued_call_never_runs() -> None:
    """Test that a call cancelled while queued for a token returns at once and never runs."""
    limiter = anyio.CapacityLimiter(1)
    release = threading.Event()
    entered = threading.Event()
    ran: list[str] = []

    def hold() -> None:
        entered.set()
        release.wait(10)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sync_to_async(hold, thread_sensitive=False, limiter=limiter))
            assert await anyio.to_thread.run_sync(entered.wait, 10)
            with anyio.CancelScope() as scope:
                tg.start_soon(_cancel_soon, scope)
                await sync_to_async(
                    lambda: ran.append("queued"),
                    thread_sensitive=False,
                    limiter=limiter,
                )()
            assert scope.cancelled_caught
            # Still holding its token: the queued call was dropped, not waited for.
            assert limiter.borrowed_tokens == 1
            release.set()
    assert ran == []
    assert limiter.borrowed_tokens == 0


async def _cancel_soon(scope: anyio.CancelScope) -> None:
    await anyio.wait_all_tasks_blocked()
    scope.cancel()


async def test_calls_waiting_for_each_other_get_threads_of_their_own() -> None:
    """Test that a queued call is not stuck behind a running call that waits for it."""
    limiter = anyio.CapacityLimiter(4)
    second_ran = threading.Event()

    def first() -> bool:
        return second_ran.wait(10)

    def second() -> None:
        second_ran.set()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            results: list[bool] = []

            async def run_first() -> None:
                results.append(
                    await sync_to_async(
                        first, thread_sensitive=False, limiter=limiter
                    )()
                )

            tg.start_soon(run_first)
            await anyio.wait_all_tasks_blocked()
            await sync_to_async(second, thread_sensitive=False, limiter=limiter)()
    assert results == [True]


async def test_token_is_back_when_the_last_caller_resumes() -> None:
    """Test that a caller never sees its own call's token still taken."""
    limiter = anyio.CapacityLimiter(2)
    for _ in range(50):
        await sync_to_async(lambda: None, thread_sensitive=False, limiter=limiter)()
        assert limiter.borrowed_tokens == 0


async def test_queued_calls_run_without_the_loop() -> None:
    """
    Test that a worker that finishes a call takes the queued ones itself: they run
    while the event loop is blocked, which a token round trip through the loop can't.
    """
    limiter = anyio.CapacityLimiter(1)
    release = threading.Event()
    entered = threading.Event()
    both_ran = threading.Semaphore(0)
    order: list[int] = []

    def first() -> None:
        entered.set()
        release.wait(10)
        order.append(1)

    def queued(n: int) -> None:
        order.append(n)
        both_ran.release()

    run_first = sync_to_async(first, thread_sensitive=False, limiter=limiter)
    run_queued = sync_to_async(queued, thread_sensitive=False, limiter=limiter)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_first)
            assert await anyio.to_thread.run_sync(entered.wait, 10)
            tg.start_soon(run_queued, 2)
            tg.start_soon(run_queued, 3)
            await anyio.wait_all_tasks_blocked()
            release.set()
            # Block the loop thread on purpose until the queued calls have run.
            assert both_ran.acquire(timeout=10)
            assert both_ran.acquire(timeout=10)
    assert order[0] == 1
    assert sorted(order) == [1, 2, 3]
