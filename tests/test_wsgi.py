"""Tests for WsgiToAsgi: options, scope types, small responses, errors and concurrency.

The helpers at the top drive an ASGI application the way a server would; the other
tests/test_wsgi_*.py modules import them.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from asgibridge_any.wsgi import WsgiToAsgi, WsgiToAsgiInstance

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

Message = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]
Environ = dict[str, Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def http_scope(**fields: Any) -> dict[str, Any]:
    """Return a complete ``http`` scope, with ``fields`` replacing the defaults.

    ``raw_path`` follows ``path`` (its UTF-8 bytes) unless given.
    """
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }
    scope.update(fields)
    if "raw_path" not in fields and isinstance(scope["path"], str):
        scope["raw_path"] = scope["path"].encode("utf-8")
    return scope


class Driver:
    """Play the server for one ASGI connection: feed ``receive()``, collect ``send()``."""

    def __init__(self, send_buffer: float) -> None:
        self.inbox: tuple[
            MemoryObjectSendStream[Message], MemoryObjectReceiveStream[Message]
        ]
        self.inbox = anyio.create_memory_object_stream[Message](math.inf)
        self.outbox: tuple[
            MemoryObjectSendStream[Message], MemoryObjectReceiveStream[Message]
        ]
        self.outbox = anyio.create_memory_object_stream[Message](send_buffer)
        #: how many times the application called receive()
        self.receive_calls = 0
        #: set on the first call of receive()
        self.receiving = anyio.Event()
        self._receive_called = anyio.Event()
        self.done = anyio.Event()
        self.error: BaseException | None = None

    async def receive(self) -> Message:
        self.receive_calls += 1
        self.receiving.set()
        self._receive_called.set()
        return await self.inbox[1].receive()

    async def wait_receive_calls(self, count: int) -> None:
        """Wait until the application called ``receive()`` ``count`` times (fails after 5 s)."""
        with anyio.fail_after(5):
            while self.receive_calls < count:
                self._receive_called = anyio.Event()
                await self._receive_called.wait()

    async def send(self, message: Any) -> None:
        await self.outbox[0].send(dict(message))

    async def feed(self, message: Message) -> None:
        """Make ``message`` the next result of ``receive()``."""
        await self.inbox[0].send(message)

    async def output(self) -> Message:
        """Return the next message the application sent (fails after 5 s)."""
        with anyio.fail_after(5):
            return await self.outbox[1].receive()

    async def outputs(self) -> list[Message]:
        """Return every message sent until the application returned."""
        with anyio.fail_after(5):
            return [message async for message in self.outbox[1]]

    async def body(self) -> bytes:
        """Return the concatenated response body, checking the messages' shape."""
        messages = await self.outputs()
        assert messages[0]["type"] == "http.response.start"
        assert all(m["type"] == "http.response.body" for m in messages[1:])
        assert not messages[-1].get("more_body", False)
        return b"".join(m.get("body", b"") for m in messages[1:])

    async def finished(self) -> None:
        """Wait for the application to return, and raise what it raised."""
        with anyio.fail_after(5):
            await self.done.wait()
        if self.error is not None:
            raise self.error


@asynccontextmanager
async def drive(
    app: Any, scope: dict[str, Any], *, send_buffer: float = math.inf
) -> AsyncIterator[Driver]:
    """Run ``app`` on ``scope`` in the background for the duration of the block."""
    driver = Driver(send_buffer)

    async def run() -> None:
        try:
            await app(scope, driver.receive, driver.send)
        except BaseException as exc:
            driver.error = exc
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise
        finally:
            driver.done.set()
            driver.outbox[0].close()

    with driver.inbox[0], driver.inbox[1], driver.outbox[0], driver.outbox[1]:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(run)
            yield driver
            with anyio.fail_after(5):
                await driver.done.wait()


async def call(
    app: Any, scope: dict[str, Any] | None = None, body: bytes = b""
) -> list[Message]:
    """Send one request with ``body`` and return every message of the response."""
    async with drive(app, scope or http_scope()) as driver:
        await driver.feed({"type": "http.request", "body": body})
        messages = await driver.outputs()
    await driver.finished()
    return messages


def hello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, ", b"world"]


# -- options -------------------------------------------------------------------------------


def test_non_callable_application_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="WSGI application callable"):
        WsgiToAsgi("not an app")  # type: ignore[arg-type]


def test_async_application_is_a_type_error() -> None:
    async def asgi_app(scope: object, receive: object, send: object) -> None:
        pass

    with pytest.raises(TypeError, match="serve it directly"):
        WsgiToAsgi(asgi_app)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"max_buffer": 0}, "max_buffer"),
        ({"duplicate_header_limit": -1}, "duplicate_header_limit"),
        ({"limiter": 3}, "limiter"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], match: str) -> None:
    with pytest.raises((TypeError, ValueError), match=match):
        WsgiToAsgi(hello, **options)


# -- scope types ---------------------------------------------------------------------------


async def test_lifespan_startup_and_shutdown_are_answered() -> None:
    async with drive(WsgiToAsgi(hello), {"type": "lifespan"}) as driver:
        await driver.feed({"type": "lifespan.startup"})
        assert await driver.output() == {"type": "lifespan.startup.complete"}
        await driver.feed({"type": "lifespan.shutdown"})
        assert await driver.output() == {"type": "lifespan.shutdown.complete"}
        await driver.finished()


async def test_websocket_connection_is_closed() -> None:
    async with drive(WsgiToAsgi(hello), {"type": "websocket", "path": "/"}) as driver:
        await driver.feed({"type": "websocket.connect"})
        assert (await driver.output())["type"] == "websocket.close"
        await driver.finished()


async def test_unknown_scope_type_is_a_value_error() -> None:
    async with drive(WsgiToAsgi(hello), {"type": "smtp"}) as driver:
        with pytest.raises(ValueError, match="scope\\['type'\\] 'smtp'"):
            await driver.finished()


async def test_bad_lifespan_message_is_a_value_error() -> None:
    async with drive(WsgiToAsgi(hello), {"type": "lifespan"}) as driver:
        await driver.feed({"type": "lifespan.party"})
        with pytest.raises(ValueError, match="lifespan message\\['type'\\]"):
            await driver.finished()


async def test_websocket_message_of_the_wrong_kind_is_a_value_error() -> None:
    async with drive(WsgiToAsgi(hello), {"type": "websocket", "path": "/"}) as driver:
        await driver.feed({"type": "http.request"})
        with pytest.raises(ValueError, match="websocket message\\['type'\\]"):
            await driver.finished()


async def test_lifespan_message_that_is_not_a_mapping_is_a_value_error() -> None:
    async with drive(WsgiToAsgi(hello), {"type": "lifespan"}) as driver:
        await driver.feed("lifespan.startup")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="mapping with a 'type'"):
            await driver.finished()


# -- small responses -----------------------------------------------------------------------


async def test_list_response_is_sent_as_asgiref_does() -> None:
    assert await call(WsgiToAsgi(hello)) == [
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        },
        {"type": "http.response.body", "body": b"Hello, ", "more_body": True},
        {"type": "http.response.body", "body": b"world", "more_body": True},
        {"type": "http.response.body"},
    ]


async def test_generator_response_is_sent_chunk_by_chunk() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("201 Created", [("X-Colour", "Blue")])
        yield b"first "
        yield b""
        yield b"second"

    assert await call(WsgiToAsgi(app)) == [
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"x-colour", b"Blue")],
        },
        {"type": "http.response.body", "body": b"first ", "more_body": True},
        {"type": "http.response.body", "body": b"", "more_body": True},
        {"type": "http.response.body", "body": b"second", "more_body": True},
        {"type": "http.response.body"},
    ]


async def test_empty_response_still_sends_its_start() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("204 No Content", [])
        return []

    assert await call(WsgiToAsgi(app)) == [
        {"type": "http.response.start", "status": 204, "headers": []},
        {"type": "http.response.body"},
    ]


# -- hostile input and failing applications ------------------------------------------------


async def test_too_many_duplicate_headers_is_400_without_calling_the_app() -> None:
    called = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        called.append(True)
        return hello(environ, start_response)

    scope = http_scope(headers=[(b"x-dup", b"1")] * 4)
    messages = await call(WsgiToAsgi(app, duplicate_header_limit=3), scope)
    assert messages[0]["status"] == 400
    assert messages[1] == {
        "type": "http.response.body",
        "body": b"Bad Request: Too many duplicate headers",
    }
    assert called == []


async def test_duplicate_headers_up_to_the_limit_are_joined() -> None:
    seen = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(environ["HTTP_X_DUP"])
        return hello(environ, start_response)

    scope = http_scope(headers=[(b"x-dup", b"v")] * 3)
    messages = await call(WsgiToAsgi(app, duplicate_header_limit=3), scope)
    assert messages[0]["status"] == 200
    assert seen == ["v,v,v"]


async def test_duplicate_header_limit_none_disables_the_limit() -> None:
    scope = http_scope(headers=[(b"x-dup", b"v")] * 300)
    messages = await call(WsgiToAsgi(hello, duplicate_header_limit=None), scope)
    assert messages[0]["status"] == 200


async def test_app_raising_before_start_response_gets_500_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("boom")
        return hello(environ, start_response)

    adapter = WsgiToAsgi(app)
    messages = await call(adapter, http_scope(path="/boom"))
    assert messages[0]["status"] == 500
    assert messages[1]["body"] == b"Internal Server Error"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [str(r.exc_info[1]) for r in errors if r.exc_info] == ["boom"]
    # The adapter keeps serving.
    assert (await call(adapter))[0]["status"] == 200


async def test_app_raising_in_iteration_before_headers_gets_500_and_close() -> None:
    closed = threading.Event()

    class Body:
        def __iter__(self) -> Body:
            return self

        def __next__(self) -> bytes:
            raise RuntimeError("broken body")

        def close(self) -> None:
            closed.set()

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return Body()

    messages = await call(WsgiToAsgi(app))
    assert messages[0]["status"] == 500
    assert closed.is_set()


async def test_app_not_calling_start_response_gets_500() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return []

    assert (await call(WsgiToAsgi(app)))[0]["status"] == 500


async def test_app_yielding_str_gets_500() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return ["text"]  # type: ignore[list-item]

    assert (await call(WsgiToAsgi(app)))[0]["status"] == 500


# -- concurrency ---------------------------------------------------------------------------


async def test_several_requests_run_at_once() -> None:
    barrier = threading.Barrier(3, timeout=5)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        barrier.wait()
        return hello(environ, start_response)

    adapter = WsgiToAsgi(app)
    statuses = []

    async def one() -> None:
        statuses.append((await call(adapter))[0]["status"])

    async with anyio.create_task_group() as task_group:
        for _ in range(3):
            task_group.start_soon(one)
    assert statuses == [200, 200, 200]


async def test_limiter_bounds_the_requests_running_at_once() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()
    first_in = threading.Event()
    release = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        first_in.set()
        release.wait(5)
        with lock:
            running -= 1
        return hello(environ, start_response)

    adapter = WsgiToAsgi(app, limiter=anyio.CapacityLimiter(1))
    async with anyio.create_task_group() as task_group:
        for _ in range(3):
            task_group.start_soon(call, adapter)
        assert await anyio.to_thread.run_sync(first_in.wait, 5)
        await anyio.wait_all_tasks_blocked()
        assert adapter.limiter is not None
        assert adapter.limiter.borrowed_tokens == 1
        assert len(adapter.limiter.statistics().borrowers) == 1
        release.set()
    assert peak == 1


async def test_instance_serves_one_connection() -> None:
    instance = WsgiToAsgiInstance(hello)
    messages = await call(instance)
    assert messages[0]["status"] == 200
    assert instance.scope is not None
    assert instance.scope["path"] == "/"


async def test_default_limiter_is_anyio_default_thread_limiter() -> None:
    running = threading.Event()
    release = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        running.set()
        release.wait(5)
        return hello(environ, start_response)

    default = anyio.to_thread.current_default_thread_limiter()
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(call, WsgiToAsgi(app))
        assert await anyio.to_thread.run_sync(running.wait, 5)
        # The request's token, besides the one this very wait borrowed and returned.
        assert default.borrowed_tokens == 1
        release.set()
    assert default.borrowed_tokens == 0


async def test_duplicate_header_limit_zero_disables_the_limit_as_in_asgiref() -> None:
    scope = http_scope(headers=[(b"x-dup", b"v")] * 300)
    messages = await call(WsgiToAsgi(hello, duplicate_header_limit=0), scope)
    assert messages[0]["status"] == 200


def upper_lines_app(closed: threading.Event) -> WsgiApp:
    """A WSGI app that streams each request line back upper-cased, then sets ``closed``."""

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            for line in environ["wsgi.input"]:
                yield line.upper()
        finally:
            closed.set()

    return app
