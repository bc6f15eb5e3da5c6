# Cases 1-4: the sync bridge. sync_to_async sequential (both thread_sensitive modes),
# async_to_sync from a plain thread, the nested sync -> async -> sync round trip, and 1000
# concurrent thread_sensitive=False calls; ours on asyncio and trio, asgiref on asyncio,
# and raw anyio (to_thread / from_thread / a blocking portal) as the floor.
from __future__ import annotations

__all__ = ("build",)

import asyncio
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import outcome
import sniffio
import trio
import trio.lowlevel

from ._harness import Case, Check, Goal, Refs, Role, Row, Sampler, Settings, expect
from ._impls import load
from ._loops import fan_out, run_on, time_async, time_sync

_FLOOR_REFS: Refs = {"asyncio": ("anyio (asyncio)",), "trio": ("anyio (trio)",)}
_BARE_HOP_REFS: Refs = {
    "asyncio": ("bare hop (asyncio)",),
    "trio": ("bare hop (trio)",),
}
_ASGIREF_REF: Refs = {"*": ("asgiref (asyncio)",)}

S2A = Callable[..., Any]


def _s2a_impls() -> list[tuple[str, str, S2A | None, str | None]]:
    """(impl, loop, sync_to_async, n/a reason) for every bridge that has one."""
    ours = load("asgibridge_any.sync", "sync_to_async", "async_to_sync")
    ref = load("asgiref.sync", "sync_to_async", "async_to_sync")
    out: list[tuple[str, str, S2A | None, str | None]] = [
        ("asgiref", "asyncio", ref.attrs.get("sync_to_async"), ref.na)
    ]
    out += [
        ("ours", loop, ours.attrs.get("sync_to_async"), ours.na)
        for loop in ("asyncio", "trio")
    ]
    return out


def _row(
    impl: str, loop: str, role: Role, sampler: Sampler | None, na: str | None
) -> Row:
    return Row(impl=impl, loop=loop, role=role, sampler=None if na else sampler, na=na)


# -- case 1: await sync_to_async(f)() -------------------------------------------------------


def _s2a_sampler(loop: str, s2a: S2A | None, thread_sensitive: bool) -> Sampler:
    def sample(budget: float) -> float:
        assert s2a is not None
        loop_thread = threading.get_ident()
        seen: set[int] = set()

        def f(i: int) -> int:
            # running f inline on the loop thread would be fast and wrong
            me = threading.get_ident()
            seen.add(me)
            return i + 1 if me != loop_thread else -1

        async def call(i: int) -> int:
            return int(await s2a(f, thread_sensitive=thread_sensitive)(i))

        value = run_on(loop, lambda: time_async(call, budget))
        if thread_sensitive:
            # As documented: outside async_to_sync and contexts, one process-wide thread runs them
            expect(len(seen) == 1, f"thread-sensitive calls ran on {len(seen)} threads")
        return value

    return sample


def _floor_to_thread(loop: str) -> Sampler:
    def sample(budget: float) -> float:
        loop_thread = threading.get_ident()

        def f(i: int) -> int:
            return i + 1 if threading.get_ident() != loop_thread else -1

        async def call(i: int) -> int:
            return await anyio.to_thread.run_sync(f, i)

        return run_on(loop, lambda: time_async(call, budget))

    return sample


def _bare_hop(loop: str) -> Sampler:
    # The least any thread hop can cost: one long-lived worker thread fed by a SimpleQueue,
    # the result sent back with call_soon_threadsafe (asyncio) or the trio token. No
    # context copy, no cancellation, no capacity limit: a reference, not a competitor.
    def sample(budget: float) -> float:
        loop_thread = threading.get_ident()
        work: queue.SimpleQueue[tuple[int, Callable[[int], None]] | None] = (
            queue.SimpleQueue()
        )

        def worker() -> None:
            while (item := work.get()) is not None:
                arg, done = item
                done(arg + 1 if threading.get_ident() != loop_thread else -1)

        thread = threading.Thread(target=worker, name="bench bare hop", daemon=True)
        thread.start()
        try:
            if loop == "asyncio":

                async def call(i: int) -> int:
                    running = asyncio.get_running_loop()
                    future: asyncio.Future[int] = running.create_future()

                    def done(r: int) -> None:
                        running.call_soon_threadsafe(future.set_result, r)

                    work.put((i, done))
                    return await future

            else:

                async def call(i: int) -> int:
                    token = trio.lowlevel.current_trio_token()
                    task = trio.lowlevel.current_task()

                    def done(r: int) -> None:
                        token.run_sync_soon(
                            trio.lowlevel.reschedule, task, outcome.Value(r)
                        )

                    work.put((i, done))
                    result = await trio.lowlevel.wait_task_rescheduled(
                        lambda _: trio.lowlevel.Abort.FAILED
                    )
                    return int(result)

            return run_on(loop, lambda: time_async(call, budget))
        finally:
            work.put(None)
            thread.join(5)

    return sample


def _case1(thread_sensitive: bool) -> Case:
    rows = [
        _row(
            impl,
            loop,
            "ours" if impl == "ours" else "peer",
            _s2a_sampler(loop, fn, thread_sensitive),
            na,
        )
        for impl, loop, fn, na in _s2a_impls()
    ]
    rows += [
        _row("anyio", loop, "floor", _floor_to_thread(loop), None)
        for loop in ("asyncio", "trio")
    ]
    rows += [
        _row("bare hop", loop, "floor", _bare_hop(loop), None)
        for loop in ("asyncio", "trio")
    ]
    flag = "True" if thread_sensitive else "False"
    return Case(
        key=f"1{'a' if thread_sensitive else 'b'}",
        title=f"await sync_to_async(f)(), thread_sensitive={flag}, sequential",
        unit="us/call",
        lower_is_better=True,
        rows=rows,
        refs={
            "asgiref": _ASGIREF_REF,
            "floor": _FLOOR_REFS,
            "bare hop": _BARE_HOP_REFS,
        },
        goals=[
            Goal("ours (asyncio)", "asgiref", "<=", 0.5),
            Goal("ours (trio)", "asgiref", "<=", 0.8),
        ],
    )


# -- case 2: async_to_sync(h)() from a plain thread ----------------------------------------


def _checked_h(expected_lib: str) -> Callable[[int], Coroutine[Any, Any, int]]:
    async def h(i: int) -> int:
        # the coroutine must really run on the requested event loop
        return i + 1 if sniffio.current_async_library() == expected_lib else -1

    return h


def _a2s_sampler(a2s: Callable[..., Any] | None, backend: str | None) -> Sampler:
    def sample(budget: float) -> float:
        assert a2s is not None
        h = _checked_h(backend or "asyncio")
        kwargs = {} if backend is None else {"backend": backend}

        def call(i: int) -> int:
            return int(a2s(h, **kwargs)(i))

        return time_sync(call, budget)

    return sample


def _floor_portal(loop: str) -> Sampler:
    def sample(budget: float) -> float:
        h = _checked_h(loop)
        with anyio.from_thread.start_blocking_portal(loop) as portal:
            return time_sync(lambda i: portal.call(h, i), budget)

    return sample


def _case2() -> Case:
    ours = load("asgibridge_any.sync", "async_to_sync")
    ref = load("asgiref.sync", "async_to_sync")
    rows = [
        _row(
            "asgiref",
            "asyncio",
            "peer",
            _a2s_sampler(ref.attrs.get("async_to_sync"), None),
            ref.na,
        )
    ]
    rows += [
        _row(
            "ours",
            loop,
            "ours",
            _a2s_sampler(ours.attrs.get("async_to_sync"), loop),
            ours.na,
        )
        for loop in ("asyncio", "trio")
    ]
    rows += [
        _row("anyio", loop, "floor", _floor_portal(loop), None)
        for loop in ("asyncio", "trio")
    ]
    return Case(
        key="2",
        title="async_to_sync(h)() from a plain thread (floor: a kept-open anyio portal)",
        unit="us/call",
        lower_is_better=True,
        rows=rows,
        refs={"asgiref": _ASGIREF_REF, "floor": _FLOOR_REFS},
        goals=[
            Goal("ours (asyncio)", "asgiref", "<=", 0.33),
            Goal("ours (trio)", "asgiref", "<=", 0.5),
        ],
    )


# -- case 3: sync_to_async(g) where g calls async_to_sync(h) -------------------------------


def _nested_sampler(loop: str, s2a: S2A | None, a2s: S2A | None) -> Sampler:
    def sample(budget: float) -> float:
        assert s2a is not None
        assert a2s is not None
        loop_thread = threading.get_ident()
        h = _checked_h(loop)
        seen: set[int] = set()

        def g(i: int) -> int:
            me = threading.get_ident()
            seen.add(me)
            if me == loop_thread:
                return -1
            return int(a2s(h)(i))

        async def call(i: int) -> int:
            return int(await s2a(g)(i))

        value = run_on(loop, lambda: time_async(call, budget))
        expect(len(seen) == 1, f"thread-sensitive g ran on {len(seen)} threads")
        return value

    return sample


def _floor_nested(loop: str) -> Sampler:
    def sample(budget: float) -> float:
        loop_thread = threading.get_ident()
        h = _checked_h(loop)

        def g(i: int) -> int:
            if threading.get_ident() == loop_thread:
                return -1
            return anyio.from_thread.run(h, i)

        async def call(i: int) -> int:
            return await anyio.to_thread.run_sync(g, i)

        return run_on(loop, lambda: time_async(call, budget))

    return sample


def _case3() -> Case:
    ours = load("asgibridge_any.sync", "sync_to_async", "async_to_sync")
    ref = load("asgiref.sync", "sync_to_async", "async_to_sync")
    rows = [
        _row(
            "asgiref",
            "asyncio",
            "peer",
            _nested_sampler(
                "asyncio",
                ref.attrs.get("sync_to_async"),
                ref.attrs.get("async_to_sync"),
            ),
            ref.na,
        )
    ]
    rows += [
        _row(
            "ours",
            loop,
            "ours",
            _nested_sampler(
                loop, ours.attrs.get("sync_to_async"), ours.attrs.get("async_to_sync")
            ),
            ours.na,
        )
        for loop in ("asyncio", "trio")
    ]
    rows += [
        _row("anyio", loop, "floor", _floor_nested(loop), None)
        for loop in ("asyncio", "trio")
    ]
    return Case(
        key="3",
        title="nested: await sync_to_async(g)(), g calls async_to_sync(h)()",
        unit="us/call",
        lower_is_better=True,
        rows=rows,
        refs={"asgiref": _ASGIREF_REF, "floor": _FLOOR_REFS},
        goals=[
            Goal("ours (asyncio)", "asgiref", "<=", 0.5),
            Goal("ours (trio)", "asgiref", "<=", 0.8),
        ],
    )


# -- case 4: 1000 concurrent thread_sensitive=False calls ----------------------------------

_CONCURRENT = 1000
#: Per row label: the most distinct threads that ran the calls of one batch.
_PEAK_THREADS: dict[str, int] = {}


def _throughput(
    loop: str,
    call: Callable[[int], Awaitable[int]],
    budget: float,
    seen: set[int],
    label: str,
) -> float:
    expected = sum(range(1, _CONCURRENT + 1))

    async def main() -> float:
        async def batch() -> None:
            seen.clear()
            results = await fan_out(loop, call, _CONCURRENT)
            expect(
                sum(results) == expected and -1 not in results,
                "wrong results from a batch",
            )
            _PEAK_THREADS[label] = max(_PEAK_THREADS.get(label, 0), len(seen))

        await batch()  # warm-up: starts the worker threads
        done = 0
        start = time.perf_counter()
        while True:
            await batch()
            done += _CONCURRENT
            now = time.perf_counter()
            if now - start >= budget:
                return done / (now - start)

    return run_on(loop, main)


def _concurrent_sampler(loop: str, s2a: S2A | None, label: str) -> Sampler:
    def sample(budget: float) -> float:
        assert s2a is not None
        loop_thread = threading.get_ident()
        seen: set[int] = set()

        def f(i: int) -> int:
            me = threading.get_ident()
            seen.add(me)
            return i + 1 if me != loop_thread else -1

        async def call(i: int) -> int:
            return int(await s2a(f, thread_sensitive=False)(i))

        return _throughput(loop, call, budget, seen, label)

    return sample


def _floor_concurrent(loop: str, label: str) -> Sampler:
    def sample(budget: float) -> float:
        loop_thread = threading.get_ident()
        seen: set[int] = set()

        def f(i: int) -> int:
            me = threading.get_ident()
            seen.add(me)
            return i + 1 if me != loop_thread else -1

        async def call(i: int) -> int:
            return await anyio.to_thread.run_sync(f, i)

        return _throughput(loop, call, budget, seen, label)

    return sample


def _thread_checks(case: Case, settings: Settings) -> None:
    for row in case.rows:
        peak = _PEAK_THREADS.get(row.label)
        case.checks.append(
            Check(row.label, "most threads used by one batch", peak, "threads")
        )


def _case4() -> Case:
    rows = [
        _row(
            impl,
            loop,
            "ours" if impl == "ours" else "peer",
            _concurrent_sampler(loop, fn, f"{impl} ({loop})"),
            na,
        )
        for impl, loop, fn, na in _s2a_impls()
    ]
    rows += [
        _row("anyio", loop, "floor", _floor_concurrent(loop, f"anyio ({loop})"), None)
        for loop in ("asyncio", "trio")
    ]
    return Case(
        key="4",
        title=f"{_CONCURRENT} concurrent sync_to_async(f, thread_sensitive=False) calls",
        unit="calls/s",
        lower_is_better=False,
        rows=rows,
        refs={"asgiref": _ASGIREF_REF, "floor": _FLOOR_REFS},
        goals=[
            Goal("ours (asyncio)", "asgiref", ">=", 2.0),
            Goal("ours (trio)", "asgiref", ">=", 1.5),
        ],
        after=_thread_checks,
    )


def build() -> list[Case]:
    """Return cases 1a, 1b, 2, 3 and 4, ready for :func:`run_case`."""
    return [_case1(True), _case1(False), _case2(), _case3(), _case4()]
