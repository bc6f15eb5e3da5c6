"""Context variables flow into bridged calls, and what they set flows back."""

from __future__ import annotations

from contextvars import ContextVar

import anyio

from asgibridge_any.sync import async_to_sync, sync_to_async

request_id: ContextVar[str] = ContextVar("request_id", default="-")
user: ContextVar[str] = ContextVar("user", default="anonymous")


def authenticate() -> None:
    # Runs in another thread, in a copy of the caller's context...
    print("  thread sees request_id", request_id.get())
    user.set("alice")  # ...and what it sets is copied back to the caller.


async def handle(rid: str) -> None:
    request_id.set(rid)
    await sync_to_async(authenticate)()
    print("  task sees user", user.get())


async def lookup() -> str:
    user.set("bob")
    return request_id.get()


def sync_view() -> None:
    request_id.set("r-3")
    print("  coroutine sees request_id", async_to_sync(lookup)())
    print("  thread sees user", user.get())


print("sync_to_async under asyncio")
anyio.run(handle, "r-1", backend="asyncio")
print("sync_to_async under trio")
anyio.run(handle, "r-2", backend="trio")
print("async_to_sync from a plain thread")
sync_view()
