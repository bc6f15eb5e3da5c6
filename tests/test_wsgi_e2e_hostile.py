"""End-to-end tests of WsgiToAsgi against clients that leave, upload what is not read,
or send odd requests, behind hypercorn (asyncio and trio workers) and uvicorn.

Clients speak raw HTTP/1.1 over a socket, so that they can stop at any byte.  Every
test checks that the adapter's ASGI call returned (the request is really over: no task
stuck in the server, no thread, no limiter token held).
"""

from __future__ import annotations

import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from asgibridge_any import stats
from asgibridge_any.wsgi import WsgiToAsgi
from tests.test_e2e_servers import anyio_backend, server_kind, serving

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Iterator

    from anyio.abc import SocketStream

    from tests.test_wsgi import Environ, StartResponse

__all__ = ("anyio_backend", "server_kind")

CHUNK = 64 * 1024


@dataclass
class State:
    """What the application saw, and events shared with the test."""

    closed: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    noticed: list[bool] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


class Closing(list[bytes]):
    """A list body whose ``close()`` sets an event."""

    def __init__(self, items: Iterable[bytes], closed: threading.Event) -> None:
        super().__init__(items)
        self._closed = closed

    def close(self) -> None:
        self._closed.set()


def make_app(state: State) -> Any:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        state.paths.append(path)
        if path == "/stream":
            # Streams forever and never reads the request body.
            start_response("200 OK", [("Content-Type", "application/octet-stream")])

            def endless() -> Iterator[bytes]:
                try:
                    while True:
                        yield b"z" * CHUNK
                finally:
                    state.closed.set()

            return endless()
        if path == "/idle":
            # Neither reads nor finishes: only the adapter can notice the client leave.
            state.started.set()
            state.noticed.append(environ["asgibridge_any.disconnected"].wait(5))
            start_response("200 OK", [])
            return Closing([b"too late"], state.closed)
        if path == "/small":
            start_response("200 OK", [("Content-Length", "2")])
            return Closing([b"ok"], state.closed)
        if path == "/refuse":
            start_response("413 Content Too Large", [("Content-Length", "7")])
            return Closing([b"refused"], state.closed)
        if path == "/block":
            state.started.set()
            state.release.wait(5)
            start_response("200 OK", [("Content-Length", "2")])
            return [b"ok"]
        if path == "/headers":
            return plain(start_response, environ.get("HTTP_X_UNDER", "-").encode())
        if path == "/switch":
            start_response("101 Switching Protocols", [("Upgrade", "x")])
            return []
        return plain(start_response, path.encode("latin-1"))

    return app


def plain(start_response: StartResponse, body: bytes) -> list[bytes]:
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


class Tracker:
    """An ASGI wrapper that knows how many ``http`` calls of the adapter are running."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.running = 0
        #: how many times the adapter received http.disconnect
        self.disconnects = 0
        self._changed = anyio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def watched_receive() -> Any:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnects += 1
                self._changed.set()
            return message

        self.running += 1
        self._changed.set()
        try:
            await self.app(scope, watched_receive, send)
        finally:
            self.running -= 1
            self._changed.set()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds (fails after 5 s)."""
        with anyio.fail_after(5):
            while not predicate():
                self._changed = anyio.Event()
                await self._changed.wait()

    async def wait_running(self, count: int) -> None:
        """Wait until exactly ``count`` calls are running (fails after 5 s)."""
        await self.wait_until(lambda: self.running == count)

    async def wait_idle(self) -> None:
        """Wait until every call returned (fails after 5 s)."""
        await self.wait_running(0)


@dataclass
class Served:
    host: str
    port: int
    state: State
    tracker: Tracker
    limiter: anyio.CapacityLimiter

    async def connect(self) -> SocketStream:
        return await anyio.connect_tcp(self.host, self.port)

    async def settled(self) -> None:
        """Wait for every call to return, then check the threads' tokens are back."""
        await self.tracker.wait_idle()
        assert self.limiter.borrowed_tokens == 0


@asynccontextmanager
async def serve(kind: str, tokens: int = 4, **options: Any) -> AsyncIterator[Served]:
    state = State()
    limiter = anyio.CapacityLimiter(tokens)
    tracker = Tracker(WsgiToAsgi(make_app(state), limiter=limiter, **options))
    async with serving(kind, tracker) as url:
        host, port = url.removeprefix("http://").split(":")
        yield Served(host, int(port), state, tracker, limiter)
        state.release.set()


async def read_head(stream: SocketStream, buffered: bytes = b"") -> tuple[bytes, bytes]:
    """Read one response head; return it and the bytes read past it."""
    data = buffered
    with anyio.fail_after(5):
        while b"\r\n\r\n" not in data:
            data += await stream.receive()
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


async def final_head(stream: SocketStream) -> tuple[bytes, bytes]:
    """Read response heads until a final (non-1xx) one."""
    head, rest = await read_head(stream)
    while head.startswith(b"HTTP/1.1 1"):
        head, rest = await read_head(stream, rest)
    return head, rest


async def get(served: Served, target: bytes, *headers: bytes) -> tuple[bytes, bytes]:
    """Send a GET with ``headers`` on a new connection; return the head and the body."""
    async with await served.connect() as stream:
        lines = [b"GET " + target + b" HTTP/1.1", b"Host: x", b"Connection: close"]
        await stream.send(b"\r\n".join([*lines, *headers]) + b"\r\n\r\n")
        head, body = await final_head(stream)
        with anyio.fail_after(5):
            while True:
                try:
                    body += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
    return head, body


def status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


async def test_endless_response_with_unread_large_body_stops_when_the_client_leaves(
    server_kind: str,
) -> None:
    """Test that a client leaving an endless response, after an upload larger than the
    memory buffer that the application never reads, stops and closes the iterable."""
    async with serve(server_kind, max_buffer=CHUNK) as served:
        async with await served.connect() as stream:
            size = 64 * CHUNK
            await stream.send(
                b"POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size
            )
            async with anyio.create_task_group() as uploads:

                async def upload() -> None:
                    for _ in range(size // CHUNK // 2):
                        await stream.send(b"u" * CHUNK)

                uploads.start_soon(upload)
                head, data = await final_head(stream)
                assert status(head) == 200
                with anyio.fail_after(5):
                    while len(data) < 4 * CHUNK:
                        data += await stream.receive()
                uploads.cancel_scope.cancel()
        assert await anyio.to_thread.run_sync(served.state.closed.wait, 5)
        await served.settled()


@pytest.mark.parametrize("upload", [False, True], ids=["no-body", "unread-body"])
async def test_app_neither_reading_nor_finishing_learns_that_the_client_left(
    server_kind: str, upload: bool
) -> None:
    async with serve(server_kind) as served:
        async with await served.connect() as stream:
            if upload:
                await stream.send(
                    b"POST /idle HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
                    + b"u" * 100_000
                )
            else:
                await stream.send(b"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")
            assert await anyio.to_thread.run_sync(served.state.started.wait, 5)
        assert await anyio.to_thread.run_sync(served.state.closed.wait, 5)
        assert served.state.noticed == [True]
        await served.settled()


async def test_unread_upload_of_a_client_reading_the_whole_response_ends_cleanly(
    server_kind: str,
) -> None:
    """Test that an application answering without reading a 4 MB upload frees its
    request once the response is out (the server must be able to finish it)."""
    size = 64 * CHUNK
    async with serve(server_kind) as served:
        async with await served.connect() as stream:
            await stream.send(
                b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size
            )
            async with anyio.create_task_group() as uploads:

                async def upload() -> None:
                    try:
                        for _ in range(size // CHUNK):
                            await stream.send(b"u" * CHUNK)
                    except (anyio.BrokenResourceError, OSError):
                        pass  # the server may close once it answered

                uploads.start_soon(upload)
                try:
                    head, body = await final_head(stream)
                    with anyio.fail_after(5):
                        while len(body) < 2:
                            body += await stream.receive()
                except (anyio.BrokenResourceError, OSError):
                    # hypercorn closes a connection whose upload nobody read without
                    # a lingering close: the reset may beat the answer to the client.
                    answer = None
                else:
                    answer = (status(head), body)
                assert answer in ((200, b"ok"), None)
                await served.settled()
                uploads.cancel_scope.cancel()
        assert served.state.closed.is_set()


async def test_answer_without_reading_does_not_solicit_the_body(
    server_kind: str,
) -> None:
    """Test that a request announcing a body with ``Expect: 100-continue`` is answered
    at once by an application that does not read it, and that the adapter does not make
    the server send ``100 Continue`` (hypercorn sends it by itself, at once)."""
    async with serve(server_kind) as served:
        async with await served.connect() as stream:
            await stream.send(
                b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            head, rest = await read_head(stream)
            if server_kind.startswith("hypercorn"):
                assert head.startswith(b"HTTP/1.1 100")
                head, rest = await read_head(stream, rest)
            assert status(head) == 413
        await served.settled()


async def test_request_whose_client_left_while_queued_for_a_thread_is_not_started(
    server_kind: str,
) -> None:
    async with serve(server_kind, tokens=1) as served, anyio.create_task_group() as tg:
        tg.start_soon(get, served, b"/block")
        assert await anyio.to_thread.run_sync(served.state.started.wait, 5)
        async with await served.connect() as stream:
            await stream.send(b"GET /queued HTTP/1.1\r\nHost: x\r\n\r\n")
            await served.tracker.wait_running(2)
            await anyio.wait_all_tasks_blocked()
            assert stats().wsgi.queued == 1
        # The adapter hears that the client left while it waits for a token.
        await served.tracker.wait_until(lambda: served.tracker.disconnects == 1)
        served.state.release.set()
        await served.settled()
    assert served.state.paths == ["/block"]


@pytest.mark.parametrize(
    ("target", "path_info"),
    [(b"/env/%FF", b"/env/\xff"), (b"/a%20b/%C3%A9", b"/a b/\xc3\xa9")],
)
async def test_path_info_is_the_raw_path_percent_decoded_as_latin1(
    server_kind: str, target: bytes, path_info: bytes
) -> None:
    async with serve(server_kind) as served:
        head, body = await get(served, target)
        assert (status(head), body) == (200, path_info)
        await served.settled()


async def test_informational_status_from_the_app_is_answered_500(
    server_kind: str,
) -> None:
    async with serve(server_kind) as served:
        head, _ = await get(served, b"/switch")
        assert status(head) == 500
        # The server survived and keeps serving.
        head, body = await get(served, b"/fine")
        assert (status(head), body) == (200, b"/fine")
        await served.settled()


async def test_header_names_with_underscores_are_dropped(server_kind: str) -> None:
    """Test that ``X_Under`` cannot pass for, or merge with, ``X-Under``."""
    async with serve(server_kind) as served:
        _, body = await get(served, b"/headers", b"X_Under: spoofed", b"X-Under: real")
        assert body == b"real"
        _, body = await get(served, b"/headers", b"X_Under: spoofed")
        assert body == b"-"
        await served.settled()
