"""
A service bound to the event loop it was made on, for the foreign-thread tests.

It stands for the async clients applications keep on their loop (a connection pool,
a channel layer): requests go through that loop's own primitives, so using it from
any other loop fails. On asyncio the requests travel on an :class:`asyncio.Queue`
and each answer comes back in a future of the service's loop (awaiting it from
another loop raises "attached to a different loop"); on trio they travel on trio
memory channels of the run that made it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import anyio
import sniffio

if TYPE_CHECKING:
    from anyio.abc import TaskStatus


class LoopBoundDoubler:
    """Doubles numbers in a task of the loop it was created on; see the module docstring."""

    def __init__(self) -> None:
        self.library = sniffio.current_async_library()
        if self.library == "trio":
            import trio

            self._send, self._receive = trio.open_memory_channel[tuple[int, Any]](0)
        else:
            self._loop = asyncio.get_running_loop()
            self._queue: asyncio.Queue[tuple[int, asyncio.Future[int]]] = (
                asyncio.Queue()
            )

    async def serve(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Answer requests until cancelled; run it in a task of the same loop."""
        task_status.started()
        if self.library == "trio":
            async for number, reply in self._receive:
                await reply.send(number * 2)
        else:
            while True:
                number, future = await self._queue.get()
                if not future.done():  # the asker may have been cancelled
                    future.set_result(number * 2)

    async def ask(self, number: int) -> int:
        """Have the serving task double ``number``; works on the service's loop only."""
        if self.library == "trio":
            import trio

            reply_send, reply_receive = trio.open_memory_channel[int](1)
            await self._send.send((number, reply_send))
            answer: int = await reply_receive.receive()
            return answer
        future: asyncio.Future[int] = self._loop.create_future()
        await self._queue.put((number, future))
        return await future
