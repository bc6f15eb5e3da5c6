"""A StatelessServer: one long-lived application instance per user, on asyncio and trio."""

from __future__ import annotations

from typing import Any

import anyio

from asgibridge_any.server import StatelessServer


async def shout(scope: dict[str, Any], receive: Any, send: Any) -> None:
    # An ordinary ASGI application; one instance runs per scope id (here: per user).
    count = 0
    while True:
        message = await receive()
        count += 1
        await send({"type": "reply", "text": f"{message['text'].upper()} (#{count})"})


class ListServer(StatelessServer):
    """Reads (user, text) events from a list; a real one would read a socket or queue."""

    def __init__(self, events: list[tuple[str, str]]) -> None:
        super().__init__(shout, max_applications=100)
        self.events = events
        self.replies: list[str] = []
        self.all_replied = anyio.Event()

    async def handle(self) -> None:
        for user, text in self.events:
            scope = {"type": "chat", "user": user}
            queue = self.get_or_create_application_instance(user, scope)
            await queue.put({"type": "chat.message", "text": text})
        await self.all_replied.wait()  # the server stops when handle() returns

    async def application_send(self, scope: Any, message: Any) -> None:
        self.replies.append(f"{scope['user']} <- {message['text']}")
        if len(self.replies) == len(self.events):
            self.all_replied.set()


events = [("ann", "hi"), ("bob", "hello"), ("ann", "how are you")]
for backend in ("asyncio", "trio"):
    server = ListServer(events)
    server.run(backend=backend)  # or: await server.arun() inside a running loop
    print(backend, sorted(server.replies))
