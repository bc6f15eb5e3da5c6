"""A first round trip between sync and async code, under asyncio and under trio."""

from __future__ import annotations

import asyncio
import threading

import trio

from asgibridge_any.sync import async_to_sync, sync_to_async


def load_user(user_id: int) -> dict[str, object]:
    # Blocking code: a database driver, a file, a requests call...
    return {"id": user_id, "thread": threading.current_thread().name}


async def greet(user_id: int) -> str:
    # Async code calls blocking code through sync_to_async: the event loop keeps running.
    user = await sync_to_async(load_user)(user_id)
    return f"hello user {user['id']}, loaded on {user['thread']}"


# From a plain sync program (a script, a WSGI view, a management command):
print(async_to_sync(greet)(1))
print(async_to_sync(greet, backend="trio")(2))

# From inside an asyncio or a trio application:
print(asyncio.run(greet(3)))
print(trio.run(greet, 4))
