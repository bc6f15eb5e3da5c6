"""Print who sees a value stored in a Local, for both kinds of Local and both loops."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import anyio

from asgibridge_any.local import Local
from asgibridge_any.sync import async_to_sync, sync_to_async

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


def in_new_thread(read: Callable[[], bool]) -> bool:
    seen: list[bool] = []
    thread = threading.Thread(target=lambda: seen.append(read()))
    thread.start()
    thread.join()
    return seen[0]


# Each scenario stores local.x somewhere and reports whether the reader saw it.


async def awaited_code(local: Local) -> bool:
    async def reader() -> bool:
        return hasattr(local, "x")

    local.x = 1
    return await reader()


async def spawned_task(local: Local) -> bool:
    seen: list[bool] = []

    async def reader() -> None:
        seen.append(hasattr(local, "x"))

    local.x = 1
    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
    return seen[0]


async def sibling_task(local: Local) -> bool:
    stored, seen = anyio.Event(), []

    async def writer() -> None:
        local.x = 1
        stored.set()

    async def reader() -> None:
        await stored.wait()
        seen.append(hasattr(local, "x"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer)
        tg.start_soon(reader)
    return seen[0]


async def parent_task(local: Local) -> bool:
    async def writer() -> None:
        local.x = 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer)
    return hasattr(local, "x")


async def sync_to_async_callee(local: Local) -> bool:
    local.x = 1
    return await sync_to_async(lambda: hasattr(local, "x"))()


async def sync_to_async_caller(local: Local) -> bool:
    def writer() -> None:
        local.x = 1

    await sync_to_async(writer)()
    return hasattr(local, "x")


async def later_sensitive_call(local: Local) -> bool:
    # Two thread-sensitive calls in a row run on the same thread.
    def writer() -> None:
        local.x = 1

    await sync_to_async(writer)()
    return await sync_to_async(lambda: hasattr(local, "x"))()


async def round_trip(local: Local) -> bool:
    # task -> sync_to_async -> async_to_sync: back on the task's loop.
    async def reader() -> bool:
        return hasattr(local, "x")

    local.x = 1
    return await sync_to_async(lambda: async_to_sync(reader)())()


async def new_thread_from_task(local: Local) -> bool:
    local.x = 1
    return in_new_thread(lambda: hasattr(local, "x"))


def async_to_sync_callee(local: Local, backend: str) -> bool:
    async def reader() -> bool:
        return hasattr(local, "x")

    local.x = 1
    return async_to_sync(reader, backend=backend)()


def async_to_sync_caller(local: Local, backend: str) -> bool:
    async def writer() -> None:
        local.x = 1

    async_to_sync(writer, backend=backend)()
    return hasattr(local, "x")


def new_thread_from_thread(local: Local, backend: str) -> bool:
    local.x = 1
    return in_new_thread(lambda: hasattr(local, "x"))


ASYNC_ROWS: list[tuple[str, Callable[[Local], Awaitable[bool]]]] = [
    ("task -> code it awaits", awaited_code),
    ("task -> task it spawns", spawned_task),
    ("task -> sibling task", sibling_task),
    ("child task -> parent task", parent_task),
    ("task -> sync_to_async function", sync_to_async_callee),
    ("sync_to_async function -> task", sync_to_async_caller),
    ("sync_to_async function -> next one", later_sensitive_call),
    ("task -> sync_to_async -> async_to_sync", round_trip),
    ("task -> new threading.Thread", new_thread_from_task),
]
SYNC_ROWS: list[tuple[str, Callable[[Local, str], bool]]] = [
    ("thread -> async_to_sync coroutine", async_to_sync_callee),
    ("async_to_sync coroutine -> thread", async_to_sync_caller),
    ("thread -> new threading.Thread", new_thread_from_thread),
]
BACKENDS = ("asyncio", "trio")
KINDS = (False, True)


def table() -> list[tuple[str, list[bool]]]:
    rows = []
    for label, scenario in ASYNC_ROWS:
        cells = [
            anyio.run(scenario, Local(thread_critical=kind), backend=backend)
            for kind in KINDS
            for backend in BACKENDS
        ]
        rows.append((label, cells))
    for label, sync_scenario in SYNC_ROWS:
        cells = [
            sync_scenario(Local(thread_critical=kind), backend)
            for kind in KINDS
            for backend in BACKENDS
        ]
        rows.append((label, cells))
    return rows


def main() -> None:
    rows = table()
    width = max(len(label) for label, _ in rows)
    lines = [
        f"{'':{width}}  {'Local()':<16}  thread_critical=True",
        f"{'who sees the value':{width}}  asyncio  trio     asyncio  trio",
    ]
    for label, cells in rows:
        marks = "  ".join(f"{'yes' if seen else 'no':<7}" for seen in cells)
        lines.append(f"{label:{width}}  {marks}")
    for line in lines:
        print(line.rstrip())


if __name__ == "__main__":
    main()
