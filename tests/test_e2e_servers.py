"""End-to-end tests: a Flask app behind WsgiToAsgi, served by real ASGI servers on 127.0.0.1.

Each test runs once per server: hypercorn's asyncio worker, hypercorn's trio worker and
uvicorn, each on its own event loop, in the test's task group.  The listening socket is
bound and listening before the server starts, so clients can connect at once (no
readiness polling); the servers are shut down through their own shutdown hooks.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import flask
import httpx
import pytest

from asgibridge_any.wsgi import WsgiToAsgi

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

SERVERS = ("hypercorn-asyncio", "hypercorn-trio", "uvicorn")
CHUNK = 64 * 1024


@dataclass
class State:
    """Events shared by a test and the Flask app it talks to."""

    upload_started: threading.Event = field(default_factory=threading.Event)
    upload_failed: threading.Event = field(default_factory=threading.Event)
    client_has_first: threading.Event = field(default_factory=threading.Event)
    stream_closed: threading.Event = field(default_factory=threading.Event)


def make_app(state: State) -> flask.Flask:
    app = flask.Flask("e2e")
    # Let exceptions reach the adapter instead of Flask's own 500 page.
    app.config["PROPAGATE_EXCEPTIONS"] = True

    @app.get("/hello")
    def hello() -> str:
        return "Hello, world"

    @app.get("/peer")
    def peer() -> dict[str, str]:
        return {"port": flask.request.environ["REMOTE_PORT"]}

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    @app.post("/upload")
    def upload() -> dict[str, Any]:
        digest = hashlib.sha256()
        size = 0
        state.upload_started.set()
        try:
            while chunk := flask.request.stream.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        except Exception:
            state.upload_failed.set()
            raise
        return {"size": size, "sha256": digest.hexdigest()}

    @app.get("/download")
    def download() -> flask.Response:
        count = int(flask.request.args["chunks"])

        def generate() -> Iterator[bytes]:
            yield b"first;"
            # Only a streamed response lets the client see the first chunk now.
            state.client_has_first.wait(5)
            for index in range(count):
                yield b"%d;" % index

        return flask.Response(generate(), mimetype="text/plain")

    @app.get("/forever")
    def forever() -> flask.Response:
        def generate() -> Iterator[bytes]:
            try:
                while True:
                    yield b"z" * CHUNK
            finally:
                state.stream_closed.set()

        return flask.Response(generate(), mimetype="application/octet-stream")

    return app


@pytest.fixture(params=SERVERS)
def server_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def anyio_backend(server_kind: str) -> str:
    return "trio" if server_kind == "hypercorn-trio" else "asyncio"


@pytest.fixture
def state() -> State:
    return State()


@asynccontextmanager
async def serving(kind: str, app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with server ``kind`` for the duration of the block; yield its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(200)
    sock.setblocking(False)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with anyio.create_task_group() as task_group:
        if kind.startswith("hypercorn"):
            from hypercorn.config import Config

            config = Config()
            config.bind = [f"fd://{sock.detach()}"]
            config.graceful_timeout = 2
            stop = anyio.Event()
            if kind == "hypercorn-trio":
                from hypercorn.trio import serve as trio_serve

                task_group.start_soon(
                    partial(trio_serve, app, config, shutdown_trigger=stop.wait)
                )
            else:
                from hypercorn.asyncio import serve as asyncio_serve

                task_group.start_soon(
                    partial(asyncio_serve, app, config, shutdown_trigger=stop.wait)
                )
            try:
                yield url
            finally:
                stop.set()
        else:
            import uvicorn

            server = uvicorn.Server(
                uvicorn.Config(app, log_level="warning", ws="none", lifespan="on")
            )
            task_group.start_soon(server.serve, [sock])
            try:
                yield url
            finally:
                server.should_exit = True


@pytest.fixture
async def url(server_kind: str, state: State) -> AsyncIterator[str]:
    async with serving(server_kind, WsgiToAsgi(make_app(state))) as base:
        yield base


@pytest.fixture
async def client(url: str) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as http:
        yield http


async def test_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/hello")
    assert response.status_code == 200
    assert response.text == "Hello, world"
    assert response.headers["content-length"] == "12"


async def _body(state: State, size: int) -> AsyncIterator[bytes]:
    # The first chunk, then the rest only once the app runs: proves it started early.
    yield b"a" * CHUNK
    assert await anyio.to_thread.run_sync(state.upload_started.wait, 5)
    sent = CHUNK
    while sent < size:
        yield b"a" * CHUNK
        sent += CHUNK


async def test_content_length_upload_streams_through(
    client: httpx.AsyncClient, state: State
) -> None:
    size = 16 * CHUNK
    response = await client.post(
        "/upload", content=_body(state, size), headers={"content-length": str(size)}
    )
    assert response.json() == {
        "size": size,
        "sha256": hashlib.sha256(b"a" * size).hexdigest(),
    }


async def test_chunked_upload_streams_through(
    client: httpx.AsyncClient, state: State
) -> None:
    size = 16 * CHUNK
    response = await client.post("/upload", content=_body(state, size))
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.json() == {
        "size": size,
        "sha256": hashlib.sha256(b"a" * size).hexdigest(),
    }


async def test_download_streams(client: httpx.AsyncClient, state: State) -> None:
    received = b""
    async with client.stream("GET", "/download", params={"chunks": 500}) as response:
        async for data in response.aiter_bytes():
            received += data
            if received.startswith(b"first;"):
                state.client_has_first.set()
    assert state.client_has_first.is_set()
    assert received == b"first;" + b"".join(b"%d;" % index for index in range(500))


async def test_100_concurrent_requests_all_succeed(client: httpx.AsyncClient) -> None:
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await client.get("/hello")).status_code)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as task_group:
            for _ in range(100):
                task_group.start_soon(one)
    assert statuses == [200] * 100


async def test_keep_alive_connection_serves_several_requests(
    client: httpx.AsyncClient,
) -> None:
    ports = {(await client.get("/peer")).json()["port"] for _ in range(5)}
    assert len(ports) == 1


async def test_client_leaving_mid_download_closes_the_iterable(
    url: str, state: State
) -> None:
    host, port = url.removeprefix("http://").split(":")
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await stream.receive()).startswith(b"HTTP/1.1 200")
    assert await anyio.to_thread.run_sync(state.stream_closed.wait, 5)


async def test_client_leaving_mid_upload_fails_the_read(url: str, state: State) -> None:
    host, port = url.removeprefix("http://").split(":")
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
            + b"a" * 1000
        )
        assert await anyio.to_thread.run_sync(state.upload_started.wait, 5)
    assert await anyio.to_thread.run_sync(state.upload_failed.wait, 5)


async def test_too_many_duplicate_headers_get_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/hello", headers=[("x-dup", "1")] * 101)
    assert response.status_code == 400
    assert response.text == "Bad Request: Too many duplicate headers"


async def test_app_error_gets_500_and_the_server_keeps_serving(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.get("/boom")
    assert response.status_code == 500
    assert "boom" in caplog.text
    assert (await client.get("/hello")).status_code == 200


@pytest.mark.parametrize("server_kind", ["hypercorn-asyncio", "hypercorn-trio"])
async def test_http2_requests_without_content_length_stream_their_body(
    url: str,
) -> None:
    """Test that an HTTP/2 body with no Content-Length (no HTTP/1 framing) is read whole."""

    async def body() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        yield b"y" * 1000

    async with httpx.AsyncClient(
        base_url=url, http1=False, http2=True, timeout=10
    ) as http2:
        response = await http2.post("/upload", content=body())
        assert response.http_version == "HTTP/2"
        assert "content-length" not in response.request.headers
        assert response.json() == {
            "size": 2000,
            "sha256": hashlib.sha256(b"x" * 1000 + b"y" * 1000).hexdigest(),
        }
        assert (await http2.get("/hello")).text == "Hello, world"
