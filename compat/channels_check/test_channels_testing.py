"""
Channels 4.3's test communicators, running on asgibridge_any (``make compat``).

Channels' ``WebsocketCommunicator`` and ``HttpCommunicator`` subclass asgiref's
``ApplicationCommunicator``; the alias plugin (asgiref_alias.py) makes them subclass
asgibridge_any's, and Channels' consumers use its ``sync_to_async`` too. Each test
drives a Channels consumer the way a Channels user's test does.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asgiref.testing  # asgibridge_any's, through the alias
import pytest
from channels.generic.http import AsyncHttpConsumer  # type: ignore[import-untyped]
from channels.generic.websocket import (  # type: ignore[import-untyped]
    WebsocketConsumer,
)
from channels.testing import (  # type: ignore[import-untyped]
    HttpCommunicator,
    WebsocketCommunicator,
)

import asgibridge_any.testing


def test_channels_communicators_are_built_on_asgibridge_any() -> None:
    assert asgiref.testing is asgibridge_any.testing
    assert issubclass(
        WebsocketCommunicator, asgibridge_any.testing.ApplicationCommunicator
    )


class Reverser(AsyncHttpConsumer):  # type: ignore[misc]
    async def handle(self, body: bytes) -> None:
        query = self.scope["query_string"].decode()
        await self.send_response(200, body[::-1] + b"?" + query.encode())


async def test_http_communicator_gets_the_whole_response() -> None:
    comm = HttpCommunicator(Reverser.as_asgi(), "POST", "/r/?x=1", body=b"abc")
    response = await comm.get_response()
    assert response["status"] == 200
    assert response["body"] == b"cba?x=1"


class Echo(WebsocketConsumer):  # type: ignore[misc]
    def connect(self) -> None:
        self.accept()

    def receive(self, text_data: str | None = None, bytes_data: Any = None) -> None:
        self.send(text_data=text_data, bytes_data=bytes_data)


async def test_websocket_conversation_through_a_sync_consumer() -> None:
    comm = WebsocketCommunicator(Echo.as_asgi(), "/echo/")
    connected, subprotocol = await comm.connect()
    assert connected
    assert subprotocol is None
    await comm.send_to(text_data="hi")
    assert await comm.receive_from() == "hi"
    await comm.send_to(bytes_data=b"\x00\x01")
    assert await comm.receive_from() == b"\x00\x01"
    await comm.send_json_to({"n": [1, 2]})
    assert await comm.receive_json_from() == {"n": [1, 2]}
    await comm.disconnect()


class Refuser(WebsocketConsumer):  # type: ignore[misc]
    def connect(self) -> None:
        self.close(code=4003)


async def test_websocket_refused_connection_reports_the_close_code() -> None:
    comm = WebsocketCommunicator(Refuser.as_asgi(), "/no/")
    connected, code = await comm.connect()
    assert connected is False
    assert code == 4003
    # What a server sends next; the consumer then ends.
    await comm.send_input({"type": "websocket.disconnect", "code": code})
    await comm.wait()


class Silent(WebsocketConsumer):  # type: ignore[misc]
    def connect(self) -> None:
        self.accept()

    def receive(self, text_data: str | None = None, bytes_data: Any = None) -> None:
        pass  # never answers


async def test_disconnect_after_a_receive_timeout_raises_cancelled_error() -> None:
    """Test that, as with asgiref, the communicator reports the app it cancelled."""
    comm = WebsocketCommunicator(Silent.as_asgi(), "/silent/")
    connected, _ = await comm.connect()
    assert connected
    await comm.send_to(text_data="anyone?")
    with pytest.raises(TimeoutError):
        await comm.receive_from(timeout=0.1)
    with pytest.raises(asyncio.CancelledError):
        await comm.disconnect()
