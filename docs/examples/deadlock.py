"""A thread-sensitive call that could never run raises RuntimeError instead of hanging."""

from __future__ import annotations

import threading

import anyio
import anyio.from_thread
import anyio.lowlevel

from asgibridge_any.sync import async_to_sync, sync_to_async


async def main() -> None:
    token = anyio.lowlevel.current_token()

    def wrong() -> None:
        # Runs on the thread-sensitive thread and waits for the loop *without*
        # async_to_sync; the loop then asks for that very thread, which is busy waiting.
        anyio.from_thread.run(sync_to_async(threading.current_thread), token=token)

    def right() -> bool:
        # async_to_sync lends this thread out while it waits: no deadlock, and the
        # thread-sensitive call below runs right here.
        inner = async_to_sync(sync_to_async(threading.current_thread))()
        return inner is threading.current_thread()

    try:
        await sync_to_async(wrong)()
    except RuntimeError as exc:
        print("RuntimeError:", str(exc).split(":")[0])
    print(
        "with async_to_sync, served by the waiting thread:",
        await sync_to_async(right)(),
    )


anyio.run(main, backend="asyncio")
anyio.run(main, backend="trio")
