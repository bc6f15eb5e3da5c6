# Small loop-neutral helpers the cases share: run a coroutine function on a named loop,
# spawn many tasks at once in that loop's native way, and time a call until a budget is
# spent. Kept here so every implementation is driven by exactly the same code.
from __future__ import annotations

__all__ = ("fan_out", "run_on", "time_async", "time_sync")

import asyncio
import time
from typing import TYPE_CHECKING, Any

import trio

from ._harness import expect

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


def run_on(loop: str, main: Callable[[], Awaitable[float]]) -> float:
    """
    Run ``main`` on a fresh event loop of kind ``loop`` and return its result.

    :param loop: ``"asyncio"`` or ``"trio"``
    :param main: coroutine function taking no arguments
    :returns: what ``main`` returned
    """
    if loop == "asyncio":

        async def wrapper() -> float:
            return await main()

        return asyncio.run(wrapper())
    if loop == "trio":
        return trio.run(main)
    raise ValueError(f"unknown loop {loop!r}")


async def fan_out(
    loop: str, call: Callable[[int], Awaitable[Any]], n: int
) -> list[Any]:
    """
    Run ``call(0) … call(n - 1)`` concurrently and return their results in order.

    asyncio uses :func:`asyncio.gather`, trio a nursery: the cheapest spawn each loop has,
    the same for every implementation on that loop.
    """
    if loop == "asyncio":
        return list(await asyncio.gather(*(call(i) for i in range(n))))
    results: list[Any] = [None] * n

    async def one(i: int) -> None:
        results[i] = await call(i)

    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(one, i)
    return results


async def time_async(call: Callable[[int], Awaitable[int]], budget: float) -> float:
    """
    Await ``call(i)`` sequentially for ``budget`` seconds; return microseconds per call.

    Each call must return ``i + 1``; anything else raises ``WrongAnswer``. A tenth of the
    budget (at least 3 calls) warms up first and is not counted.
    """
    warm_until = time.perf_counter() + budget / 10
    i = 0
    while i < 3 or time.perf_counter() < warm_until:
        got = await call(i)
        expect(got == i + 1, f"call({i}) returned {got!r}, expected {i + 1}")
        i += 1
    n = 0
    start = time.perf_counter()
    deadline = start + budget
    while True:
        got = await call(n)
        if got != n + 1:
            expect(False, f"call({n}) returned {got!r}, expected {n + 1}")
        n += 1
        now = time.perf_counter()
        if now >= deadline and n >= 3:
            return (now - start) / n * 1e6


def time_sync(call: Callable[[int], int], budget: float) -> float:
    """:func:`time_async` for a blocking ``call``; returns microseconds per call."""
    warm_until = time.perf_counter() + budget / 10
    i = 0
    while i < 3 or time.perf_counter() < warm_until:
        got = call(i)
        expect(got == i + 1, f"call({i}) returned {got!r}, expected {i + 1}")
        i += 1
    n = 0
    start = time.perf_counter()
    deadline = start + budget
    while True:
        got = call(n)
        if got != n + 1:
            expect(False, f"call({n}) returned {got!r}, expected {n + 1}")
        n += 1
        now = time.perf_counter()
        if now >= deadline and n >= 3:
            return (now - start) / n * 1e6
