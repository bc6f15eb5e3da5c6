"""Cap the threads of ThreadSensitiveContext blocks: request 3 waits for a thread."""

from __future__ import annotations

import threading

import anyio

import asgibridge_any
from asgibridge_any.sync import (
    ThreadSensitiveContext,
    async_to_sync,
    set_context_thread_limit,
    sync_to_async,
)

set_context_thread_limit(2)
release = threading.Event()


def view(name: str) -> str:
    # Blocking code (say, the ORM): each request's calls share its context's thread.
    release.wait(5)
    return async_to_sync(render)(name)


async def render(name: str) -> str:
    # Nested calls go back to the request's own thread: they never wait for the cap.
    thread = await sync_to_async(threading.current_thread)()
    return f"{name} on its own thread: {thread.name}"


async def request(name: str, results: list[str]) -> None:
    async with ThreadSensitiveContext():  # what a framework does per request
        results.append(await sync_to_async(view)(name))


async def main() -> None:
    results: list[str] = []
    async with anyio.create_task_group() as tasks:
        for name in ("request 1", "request 2", "request 3"):
            tasks.start_soon(request, name, results)
        await anyio.wait_all_tasks_blocked()
        sensitive = asgibridge_any.stats().sensitive
        print(f"context threads: {sensitive.context_threads}")
        print(f"contexts waiting for one: {sensitive.contexts_waiting}")
        release.set()
    print(*sorted(results), sep="\n")


anyio.run(main)
