"""
Show where the bridge runs each step: which thread, which event loop.

Four round trips, each printed step by step:

1. a plain sync program calls async code through ``async_to_sync``, which calls sync code
   through ``sync_to_async``: the sync code runs on the main thread again;
2. the same from a plain program with ``async_to_sync(..., backend="trio")``;
3. an asyncio application calls sync code through ``sync_to_async``, which calls async
   code through ``async_to_sync``: the async code runs on the application's own loop;
4. the same inside a trio application (the trio token identifies the run).

Run it with ``python examples/bridge_demo.py`` (or ``make demo``).
"""

from __future__ import annotations

import asyncio
import threading

import sniffio
import trio

from asgibridge_any.sync import async_to_sync, sync_to_async


def where() -> str:
    """Describe the current thread and, if one runs here, the event loop."""
    thread = threading.current_thread().name
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return f"thread {thread!r}, no event loop"
    if library == "trio":
        loop = f"trio run, token {id(trio.lowlevel.current_trio_token()):#x}"
    else:
        loop = f"asyncio loop {id(asyncio.get_running_loop()):#x}"
    return f"thread {thread!r}, {loop}"


def step(depth: int, text: str) -> None:
    label = "  " * depth + text
    print(f"  {label:<38} {where()}")


# --- 1 and 2: sync -> async -> sync ---------------------------------------------------------


def sync_leaf() -> str:
    step(2, "sync_leaf() via sync_to_async")
    return threading.current_thread().name


async def async_middle() -> str:
    step(1, "async_middle() via async_to_sync")
    return await sync_to_async(sync_leaf)()


def sync_program(backend: str) -> None:
    step(0, "plain sync program")
    leaf_thread = async_to_sync(async_middle, backend=backend)()
    same = leaf_thread == threading.current_thread().name
    print(f"  -> sync_leaf ran on the calling thread again: {same}")


# --- 3 and 4: async -> sync -> async --------------------------------------------------------


async def async_leaf() -> int:
    step(2, "async_leaf() via async_to_sync")
    if sniffio.current_async_library() == "trio":
        return id(trio.lowlevel.current_trio_token())
    return id(asyncio.get_running_loop())


def sync_middle() -> int:
    step(1, "sync_middle() via sync_to_async")
    return async_to_sync(async_leaf)()


async def async_app() -> None:
    step(0, "async application")
    if sniffio.current_async_library() == "trio":
        mine = id(trio.lowlevel.current_trio_token())
    else:
        mine = id(asyncio.get_running_loop())
    leaf_loop = await sync_to_async(sync_middle)()
    print(f"  -> async_leaf ran on the application's own loop: {leaf_loop == mine}")


def main() -> None:
    print("1. sync -> async_to_sync -> sync_to_async (asyncio loop thread)")
    sync_program("asyncio")
    print('2. the same with async_to_sync(..., backend="trio")')
    sync_program("trio")
    print("3. asyncio app -> sync_to_async -> async_to_sync")
    asyncio.run(async_app())
    print("4. trio app -> sync_to_async -> async_to_sync")
    trio.run(async_app)


if __name__ == "__main__":
    main()
