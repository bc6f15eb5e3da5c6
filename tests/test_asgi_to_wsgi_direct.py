"""AsgiToWsgi called directly as a WSGI application, the test playing the WSGI server.

Here the test controls exactly when the response is pulled, when it is closed and what
``wsgi.input`` holds: the checks of malformed messages and options, the back-pressure
bound, the request body read only on demand, the PEP 3333 scope details, and the
requests the loop's end cuts short.  Both event loops each time.
"""

from __future__ import annotations

import io
import logging
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from asgibridge_any import _asgi_to_wsgi_loop
from asgibridge_any.wsgi import AsgiToWsgi

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

Message = dict[str, Any]
WAIT = 10.0
CHUNK = 64 * 1024


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def environ(**extra: Any) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
    }
    env.update(extra)
    return env


class Server:
    """Plays a WSGI server: calls the app, records start_response."""

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], object]:
        self.status = status
        self.headers = headers
        return lambda data: None

    def call(self, app: AsgiToWsgi, env: dict[str, Any]) -> Iterable[bytes]:
        return app(env, self.start_response)

    def get(self, app: AsgiToWsgi, env: dict[str, Any]) -> bytes:
        result = self.call(app, env)
        try:
            return b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


@contextmanager
def adapter(app: Any, backend: str, **options: Any) -> Iterator[AsgiToWsgi]:
    wrapped = AsgiToWsgi(app, backend=backend, lifespan="off", **options)  # type: ignore[arg-type]
    try:
        yield wrapped
    finally:
        wrapped.close()


# -- malformed messages --------------------------------------------------------------------

BAD_MESSAGES = [
    ({"type": "http.response.start", "status": "200"}, r"message\['status'\]"),
    ({"type": "http.response.start", "status": 101}, r"message\['status'\]"),
    (
        {"type": "http.response.start", "status": 200, "headers": [b"x"]},
        r"message\['headers'\]\[0\]",
    ),
    (
        {"type": "http.response.start", "status": 200, "headers": [(b"x", "text")]},
        r"message\['headers'\]\[0\]",
    ),
    (
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"x", b"a\r\nSet-Cookie: 1")],
        },
        r"message\['headers'\]\[0\]",
    ),
    (
        {"type": "http.response.start", "status": 200, "headers": "nope"},
        r"message\['headers'\]",
    ),
    ({"type": "http.response.body", "body": b"early"}, r"message\['type'\]"),
    ({"type": "http.response.strat", "status": 200}, r"message\['type'\]"),
    ("not a mapping", "mapping"),
]


@pytest.mark.parametrize(("message", "field"), BAD_MESSAGES)
def test_malformed_start_message_raises_value_error_naming_the_field(
    backend: str, message: Any, field: str
) -> None:
    caught: list[BaseException] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        try:
            await send(message)
        except ValueError as exc:
            caught.append(exc)
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    with adapter(app, backend) as wrapped:
        server = Server()
        server.get(wrapped, environ())
    assert server.status == "204 No Content"
    assert len(caught) == 1
    with pytest.raises(ValueError, match=field):
        raise caught[0]


BAD_BODIES = [
    ({"type": "http.response.body", "body": "text"}, r"message\['body'\]"),
    (
        {"type": "http.response.body", "body": b"", "more_body": "yes"},
        r"message\['more_body'\]",
    ),
    ({"type": "http.response.start", "status": 200}, r"message\['type'\]"),
]


@pytest.mark.parametrize(("message", "field"), BAD_BODIES)
def test_malformed_body_message_raises_value_error_naming_the_field(
    backend: str, message: Any, field: str
) -> None:
    caught: list[BaseException] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        try:
            await send(message)
        except ValueError as exc:
            caught.append(exc)
        await send({"type": "http.response.body", "body": b"fine"})

    with adapter(app, backend) as wrapped:
        assert Server().get(wrapped, environ()) == b"fine"
    with pytest.raises(ValueError, match=field):
        raise caught[0]


def test_hop_by_hop_headers_from_the_app_are_dropped(backend: str) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        headers = [
            (b"connection", b"close"),
            (b"x-kept", b"1"),
            (b"Transfer-Encoding", b"chunked"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body"})

    with adapter(app, backend) as wrapped:
        server = Server()
        server.get(wrapped, environ())
    assert server.headers == [("x-kept", "1")]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"backend": "curio"}, ValueError),
        ({"lifespan": "maybe"}, ValueError),
        ({"max_buffer": 0}, ValueError),
        ({"startup_timeout": -1}, ValueError),
    ],
)
def test_bad_options_are_refused(
    options: dict[str, Any], error: type[Exception]
) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        raise AssertionError("never called")

    with pytest.raises(error, match=next(iter(options))):
        AsgiToWsgi(app, **options)


def test_non_callable_app_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="ASGI application"):
        AsgiToWsgi("app")


def test_bad_content_length_is_400_without_calling_the_app(backend: str) -> None:
    called: list[bool] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        called.append(True)

    with adapter(app, backend) as wrapped:
        server = Server()
        body = server.get(wrapped, environ(REQUEST_METHOD="POST", CONTENT_LENGTH="-5"))
    assert server.status == "400 Bad Request"
    assert b"Content-Length" in body
    assert called == []


# -- scope ---------------------------------------------------------------------------------


def test_scope_follows_pep_3333(backend: str) -> None:
    seen: list[Message] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})

    env = environ(
        REQUEST_METHOD="POST",
        SCRIPT_NAME="/m\xc3\xbcnchen",  # UTF-8 bytes, as PEP 3333 passes them
        PATH_INFO="/caf\xc3\xa9 x",
        QUERY_STRING="a=%20b",
        SERVER_PROTOCOL="HTTP/1.0",
        REMOTE_ADDR="10.1.2.3",
        REMOTE_PORT="5555",
        CONTENT_TYPE="text/plain",
        CONTENT_LENGTH="0",
        HTTP_X_FORWARDED_FOR="1.1.1.1",
        HTTP_CONTENT_TYPE="ignored duplicate",
        **{"wsgi.url_scheme": "https"},
    )
    with adapter(app, backend) as wrapped:
        Server().get(wrapped, env)
    scope = seen[0]
    assert scope["type"] == "http"
    assert scope["method"] == "POST"
    assert scope["scheme"] == "https"
    assert scope["http_version"] == "1.0"
    assert scope["root_path"] == "/münchen"
    assert scope["path"] == "/münchen/café x"
    assert scope["raw_path"] == b"/m%C3%BCnchen/caf%C3%A9%20x"
    assert scope["query_string"] == b"a=%20b"
    assert scope["headers"] == [
        (b"content-type", b"text/plain"),
        (b"content-length", b"0"),
        (b"x-forwarded-for", b"1.1.1.1"),
    ]
    assert scope["client"] == ("10.1.2.3", 5555)
    assert scope["server"] == ("testserver", 80)
    assert "state" not in scope  # no lifespan ran


def test_raw_path_keeps_the_request_target_the_server_passes_on(backend: str) -> None:
    seen: list[Message] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})

    env = environ(PATH_INFO="/a/b", RAW_URI="/a%2Fb?x=1")
    with adapter(app, backend) as wrapped:
        Server().get(wrapped, env)
    assert seen[0]["raw_path"] == b"/a%2Fb"
    assert seen[0]["path"] == "/a/b"


# -- request body on demand ----------------------------------------------------------------


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
