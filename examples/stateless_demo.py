"""
A tiny UDP chat on StatelessServer, run once under asyncio and once under trio.

The server binds 127.0.0.1 on a free port. Each user gets an ASGI application instance
(scope id: the user name) that greets them and relays what others send them. Two clients
in the same process register, chat, and shut the server down; everything is printed.
Run it with ``python examples/stateless_demo.py``; it exits on its own within seconds.
"""

from __future__ import annotations

import socket
import sys
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from asgibridge_any.server import StatelessServer

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


async def chat_app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """Greet the user, then deliver every message addressed to them."""
    await send({"type": "chat.send", "text": f"welcome, {scope['user']}"})
    while True:
        message = await receive()
        await send(
            {"type": "chat.send", "text": f"{message['from']} says: {message['text']}"}
        )


class UDPChatServer(StatelessServer):
    """Datagrams ``register NAME``, ``to NAME TEXT`` and ``shutdown`` drive the chat."""

    def __init__(self, application: Any) -> None:
        super().__init__(application, max_applications=100)
        self.ready = anyio.Event()
        self.address: tuple[str, int] = ("", 0)
        self._socket: anyio.abc.UDPSocket | None = None
        self._names: dict[tuple[str, int], str] = {}

    async def handle(self) -> None:
        async with await anyio.create_udp_socket(
            family=socket.AF_INET, local_host="127.0.0.1"
        ) as udp:
            self._socket = udp
            self.address = udp.extra(anyio.abc.SocketAttribute.local_address)  # type: ignore[assignment]
            self.ready.set()
            async for data, client in udp:
                command, _, rest = data.decode().partition(" ")
                if command == "shutdown":
                    return
                if command == "register":
                    self._names[client] = rest
                    self.get_or_create_application_instance(
                        rest, {"type": "chat", "user": rest, "client": client}
                    )
                elif command == "to":
                    name, _, text = rest.partition(" ")
                    if name in self.application_instances:
                        scope = self.application_instances[name]["scope"]
                        queue = self.get_or_create_application_instance(name, scope)
                        sender = self._names.get(client, "someone")
                        await queue.put(
                            {"type": "chat.receive", "from": sender, "text": text}
                        )

    async def application_send(self, scope: Any, message: Any) -> None:
        assert self._socket is not None
        host, port = scope["client"]
        await self._socket.sendto(message["text"].encode(), host, port)


async def demo() -> None:
    server = UDPChatServer(chat_app)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(server.arun)
            await server.ready.wait()
            host, port = server.address
            print(f"  server listening on udp://{host}:{port}")
            alice = await anyio.create_udp_socket(
                family=socket.AF_INET, local_host="127.0.0.1"
            )
            bob = await anyio.create_udp_socket(
                family=socket.AF_INET, local_host="127.0.0.1"
            )
            async with alice, bob:
                for name, client in (("alice", alice), ("bob", bob)):
                    await client.sendto(f"register {name}".encode(), host, port)
                    reply, _ = await client.receive()
                    print(f"  {name} got: {reply.decode()}")
                await alice.sendto(b"to bob hello from alice", host, port)
                reply, _ = await bob.receive()
                print(f"  bob got: {reply.decode()}")
                await bob.sendto(b"to alice hi alice", host, port)
                reply, _ = await alice.receive()
                print(f"  alice got: {reply.decode()}")
                print(
                    f"  application instances: {sorted(map(str, server.application_instances))}"
                )
                await alice.sendto(b"shutdown", host, port)
    print(f"  server stopped; instances left: {len(server.application_instances)}")


def main() -> int:
    for backend in ("asyncio", "trio"):
        print(f"StatelessServer chat under {backend}:")
        anyio.run(demo, backend=backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
