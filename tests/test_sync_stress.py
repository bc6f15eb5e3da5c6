"""Many nested bridge calls at once, some of them cancelled at random points."""

from __future__ import annotations

import random
import threading

import anyio
import pytest

from asgibridge_any.sync import async_to_sync, sync_to_async

#: Outer calls per run; each makes four bridge crossings (2,000 in all).
CALLS = 500


@pytest.mark.timeout(120)
async def test_nested_calls_with_random_cancellations_lose_nothing() -> None:
    rng = random.Random(4)
    results: dict[int, int] = {}
    cancelled: set[int] = set()
    gates = {n: threading.Event() for n in range(CALLS)}

    async def innermost(n: int) -> int:
        await anyio.lowlevel.checkpoint()
        return await sync_to_async(lambda: n * 3)()

    def middle(n: int) -> int:
        if n % 4 == 0:
            # Park this call in the thread so a cancellation lands while it is here.
            gates[n].wait(10)
        return async_to_sync(innermost)(n)

    scopes = {n: anyio.CancelScope() for n in range(CALLS)}

    async def one(n: int) -> None:
        with scopes[n]:
            results[n] = await sync_to_async(middle, thread_sensitive=n % 2 == 0)(n)
        if scopes[n].cancelled_caught:
            cancelled.add(n)

    async def cancel_later(n: int, checkpoints: int) -> None:
        # Lands anywhere in the chain: before the thread, in it, in the coroutine.
        for _ in range(checkpoints):
            await anyio.lowlevel.checkpoint()
        scopes[n].cancel()

    with anyio.fail_after(100):
        async with anyio.create_task_group() as tg:
            for n in range(CALLS):
                tg.start_soon(one, n)
                if rng.random() < 0.25:
                    tg.start_soon(cancel_later, n, rng.randrange(20))
            await anyio.wait_all_tasks_blocked()
            for gate in gates.values():
                gate.set()

    assert cancelled
    assert set(results) | cancelled == set(range(CALLS))
    assert all(results[n] == n * 3 for n in results)
