"""backend= chooses the loop of async_to_sync; AsyncSingleThreadContext keeps one loop."""

from __future__ import annotations

import threading

import sniffio

from asgibridge_any.sync import AsyncSingleThreadContext, async_to_sync


async def where() -> tuple[str, threading.Thread]:
    return sniffio.current_async_library(), threading.current_thread()


print(async_to_sync(where)()[0])  # asyncio, the default
print(async_to_sync(where, backend="trio")()[0])

# Loop-bound state (a connection pool, a client session) needs the same loop every time:
with AsyncSingleThreadContext():
    first = async_to_sync(where)()[1]
    second = async_to_sync(where)()[1]
    print("same loop thread inside the context:", first is second)
