"""AsgiToWsgi called directly as a WSGI application, the test playing the WSGI server.

Here the test controls exactly when the response is pulled, when it is closed and what
``wsgi.input`` holds (tests/_wsgi_by_hand.py): the back-pressure bound, the request body
read only on demand, early closes, errors, lifespan modes, and requests the loop's end
cuts short.  Both event loops each time.
"""

from __future__ import annotations

import io
import logging
import threading
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from asgibridge_any import _asgi_to_wsgi_loop
from asgibridge_any.wsgi import AsgiToWsgi

from ._wsgi_by_hand import CHUNK, WAIT, Message, Server, adapter, environ

if TYPE_CHECKING:
    from collections.abc import Callable


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class RecordingInput:
    """A ``wsgi.input`` that counts reads and never gives more than it holds."""

    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)
        self.reads: list[int] = []

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        return self.stream.read(size)


def test_request_body_is_read_only_as_the_app_asks(backend: str) -> None:
    body = bytes(range(256)) * 1024  # 256 KiB
    source = RecordingInput(body)
    reads_seen: list[int] = []
    received: list[bytes] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            reads_seen.append(len(source.reads))
            received.append(message["body"])
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})

    env = environ(
        REQUEST_METHOD="POST", CONTENT_LENGTH=str(len(body)), **{"wsgi.input": source}
    )
    with adapter(app, backend, chunk_size=CHUNK) as wrapped:
        Server().get(wrapped, env)
    assert b"".join(received) == body
    # one read per receive(), none ahead of the app, none past Content-Length
    assert reads_seen == [1, 2, 3, 4]
    assert source.reads == [CHUNK] * 4


def test_body_is_not_read_when_the_app_does_not_ask(backend: str) -> None:
    source = RecordingInput(b"x" * 1000)

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"ignored the body"})

    env = environ(
        REQUEST_METHOD="POST", CONTENT_LENGTH="1000", **{"wsgi.input": source}
    )
    with adapter(app, backend) as wrapped:
        assert Server().get(wrapped, env) == b"ignored the body"
    assert source.reads == []


def test_body_without_length_is_read_to_its_end_when_input_is_terminated(
    backend: str,
) -> None:
    received: list[bytes] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            received.append(message["body"])
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})

    data = b"y" * 150_000
    env = environ(
        REQUEST_METHOD="POST",
        **{"wsgi.input": io.BytesIO(data), "wsgi.input_terminated": True},
    )
    with adapter(app, backend) as wrapped:
        Server().get(wrapped, env)
    assert b"".join(received) == data


def test_short_body_ends_in_a_disconnect(backend: str) -> None:
    messages: list[str] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        while (message := await receive())["type"] == "http.request":
            messages.append(message["type"])
        messages.append(message["type"])
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})

    # the client promised 1000 bytes and left after 10
    env = environ(
        REQUEST_METHOD="POST",
        CONTENT_LENGTH="1000",
        **{"wsgi.input": io.BytesIO(b"x" * 10)},
    )
    with adapter(app, backend) as wrapped:
        Server().get(wrapped, env)
    assert messages == ["http.request", "http.disconnect"]


# -- response streaming --------------------------------------------------------------------


def test_send_waits_while_the_response_buffer_is_full(backend: str) -> None:
    """Test that a server that stops pulling holds the app to ``max_buffer`` bytes ahead."""
    max_buffer = 4 * CHUNK
    progress = {"sent": 0, "at_block": -1}
    blocked = threading.Event()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})

        async def produce() -> None:
            for _ in range(64):
                await send(
                    {
                        "type": "http.response.body",
                        "body": b"b" * CHUNK,
                        "more_body": True,
                    }
                )
                progress["sent"] += CHUNK
            await send({"type": "http.response.body"})

        async def watch() -> None:
            # every other task of the loop is blocked: the producer waits in send()
            await anyio.wait_all_tasks_blocked()
            progress["at_block"] = progress["sent"]
            blocked.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(produce)
            tasks.start_soon(watch)

    with adapter(app, backend, max_buffer=max_buffer) as wrapped:
        result = iter(Server().call(wrapped, environ()))
        first = next(result)
        assert blocked.wait(WAIT)
        rest = b"".join(result)
    assert len(first) + len(rest) == 64 * CHUNK
    # queued at most max_buffer beyond what the server took, plus the chunk in flight
    assert len(first) <= progress["at_block"] <= len(first) + max_buffer + CHUNK


def test_closing_the_response_early_is_a_disconnect_for_the_app(backend: str) -> None:
    saw: list[str] = []
    done = threading.Event()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"1", "more_body": True})
        assert (await receive())["type"] == "http.request"
        saw.append((await receive())["type"])
        try:
            await send({"type": "http.response.body", "body": b"2", "more_body": True})
        except OSError as exc:
            saw.append(type(exc).__name__)
        done.set()

    with adapter(app, backend) as wrapped:
        result = Server().call(wrapped, environ())
        assert next(iter(result)) == b"1"
        result.close()  # type: ignore[attr-defined]
        assert done.wait(WAIT)
    assert saw == ["http.disconnect", "ClientDisconnected"]


def test_error_after_the_response_started_raises_from_the_iterator(
    backend: str,
) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise KeyError("late failure")

    with adapter(app, backend) as wrapped:
        result = iter(Server().call(wrapped, environ()))
        assert next(result) == b"part"
        with pytest.raises(KeyError, match="late failure"):
            next(result)


def test_app_returning_without_a_response_is_a_500(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        return None

    with (
        caplog.at_level(logging.ERROR, logger="asgibridge_any.wsgi"),
        adapter(app, backend) as wrapped,
    ):
        server = Server()
        server.get(wrapped, environ())
    assert server.status == "500 Internal Server Error"
    assert "returned before it started a response" in caplog.text


def test_close_during_a_request_ends_it_instead_of_hanging(backend: str) -> None:
    started = threading.Event()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        started.set()
        await anyio.sleep_forever()

    with adapter(app, backend) as wrapped:
        result = iter(Server().call(wrapped, environ()))
        assert next(result) == b"a"
        assert started.wait(WAIT)
        wrapped.close()
        with pytest.raises(RuntimeError, match="cancelled"):
            next(result)


def test_lifespan_on_makes_a_missing_lifespan_a_startup_failure(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan here")
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})

    with (
        caplog.at_level(logging.ERROR, logger="asgibridge_any.wsgi"),
        AsgiToWsgi(app, backend=backend, lifespan="on") as wrapped,  # type: ignore[arg-type]
    ):
        server = Server()
        server.get(wrapped, environ())
    assert server.status == "500 Internal Server Error"
    assert "no lifespan here" in caplog.text


def test_lifespan_off_never_calls_the_app_with_a_lifespan_scope(backend: str) -> None:
    kinds: list[str] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        kinds.append(scope["type"])
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})

    with adapter(app, backend) as wrapped:  # adapter() passes lifespan="off"
        Server().get(wrapped, environ())
    assert kinds == ["http"]


def test_malformed_lifespan_message_raises_value_error_naming_the_field(
    backend: str,
) -> None:
    caught: list[BaseException] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            try:
                await send({"type": "lifespan.startup.compete"})
            except ValueError as exc:
                caught.append(exc)
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})

    with AsgiToWsgi(app, backend=backend) as wrapped:  # type: ignore[arg-type]
        server = Server()
        server.get(wrapped, environ())
    assert server.status == "200 OK"
    with pytest.raises(ValueError, match=r"lifespan message\['type'\]"):
        raise caught[0]


def test_server_refusing_the_headers_gets_a_500_with_exc_info(backend: str) -> None:
    calls: list[tuple[str, object]] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], object]:
        calls.append((status, exc_info))
        if len(calls) == 1:
            raise ValueError("this server refuses the header")
        return lambda data: None

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"x-odd", b"1")],
            }
        )
        await send({"type": "http.response.body"})

    with adapter(app, backend) as wrapped:
        body = b"".join(wrapped(environ(), start_response))
    assert [status for status, _ in calls] == ["200 OK", "500 Internal Server Error"]
    assert isinstance(calls[1][1], tuple)
    assert body == b"Internal Server Error"


def test_without_anyio_fire_and_forget_calls_requests_still_stream(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Test the path for an anyio without ``run_sync_soon``: waking the loop waits for it."""
    monkeypatch.setattr(_asgi_to_wsgi_loop, "_FIRE_AND_FORGET", False)

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        more = True
        while more:
            message = await receive()
            more = message["more_body"]
            await send(
                {
                    "type": "http.response.body",
                    "body": message["body"],
                    "more_body": more,
                }
            )

    data = bytes(range(256)) * 4096  # 1 MiB: body reads and back-pressure wake the loop
    env = environ(
        REQUEST_METHOD="POST",
        CONTENT_LENGTH=str(len(data)),
        **{"wsgi.input": io.BytesIO(data)},
    )
    with adapter(app, backend, chunk_size=CHUNK, max_buffer=CHUNK) as wrapped:
        assert Server().get(wrapped, env) == data
