"""Tests for the streamed response side of WsgiToAsgi."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from asgibridge_any.wsgi import WsgiToAsgi
from tests.test_wsgi import Environ, Message, StartResponse, call, drive, http_scope

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, MutableMapping

CHUNK = b"x" * 1000


def bodies(messages: list[Message]) -> list[bytes]:
    return [
        m["body"] for m in messages if m["type"] == "http.response.body" and "body" in m
    ]


async def test_write_callable_sends_before_the_iterable() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [])
        write(b"a")
        write(b"b")
        return [b"c"]

    messages = await call(WsgiToAsgi(app))
    assert bodies(messages) == [b"a", b"b", b"c"]
    assert messages[-1] == {"type": "http.response.body"}


async def test_write_before_start_response_is_an_error() -> None:
    errors: list[Exception] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [])
        try:
            start_response("200 OK", [])
        except ValueError as exc:
            errors.append(exc)
        write(b"ok")
        return []

    messages = await call(WsgiToAsgi(app))
    assert bodies(messages) == [b"ok"]
    assert "start_response() was already called" in str(errors[0])


async def test_content_length_caps_the_body_and_stops_iteration() -> None:
    closed = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", "6")])
        try:
            yield b"0123"
            yield b"4567"
            pytest.fail("iterated past Content-Length")
        finally:
            closed.set()

    messages = await call(WsgiToAsgi(app))
    assert bodies(messages) == [b"0123", b"45"]
    assert messages[-1] == {"type": "http.response.body"}
    assert closed.is_set()


async def test_write_past_content_length_is_dropped() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Length", "2")])
        write(b"abc")
        write(b"def")
        return []

    assert bodies(await call(WsgiToAsgi(app))) == [b"ab"]


async def test_close_is_called_on_a_list_subclass() -> None:
    closed = threading.Event()

    class Body(list[bytes]):
        def close(self) -> None:
            closed.set()

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return Body([b"a"])

    await call(WsgiToAsgi(app))
    assert closed.is_set()


async def test_second_start_response_with_exc_info_before_headers_replaces_them() -> (
    None
):
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        try:
            raise ValueError("oops")
        except ValueError:
            start_response("503 Service Unavailable", [], sys.exc_info())
        return [b"unavailable"]

    messages = await call(WsgiToAsgi(app))
    assert messages[0] == {"type": "http.response.start", "status": 503, "headers": []}
    assert bodies(messages) == [b"unavailable"]


async def test_start_response_with_exc_info_after_headers_reraises() -> None:
    closed = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            yield b"partial"
            try:
                raise KeyError("late failure")
            except KeyError:
                start_response("500 Oops", [], sys.exc_info())
            yield b"never"
        finally:
            closed.set()

    async with drive(WsgiToAsgi(app), http_scope()) as driver:
        await driver.feed({"type": "http.request"})
        messages = await driver.outputs()
    with pytest.raises(KeyError, match="late failure"):
        await driver.finished()
    assert messages[0]["status"] == 200
    assert bodies(messages) == [b"partial"]
    assert closed.is_set()


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        ("OK", []),
        (200, []),
        ("200 OK", [("X-Bad", "\u20ac")]),
        ("200 OK", [("Content-Length", "many")]),
        ("200 OK", ("X-A", "b")),
    ],
)
async def test_malformed_start_response_arguments_give_500(
    status: Any, headers: Any
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(status, headers)
        return [b"body"]

    assert (await call(WsgiToAsgi(app)))[0]["status"] == 500


async def test_large_streamed_body_arrives_whole_and_in_order() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        for index in range(300):
            yield b"%d," % index

    async with drive(WsgiToAsgi(app, max_buffer=64), http_scope()) as driver:
        await driver.feed({"type": "http.request"})
        body = await driver.body()
    await driver.finished()
    assert body == b"".join(b"%d," % index for index in range(300))


async def test_slow_client_makes_the_wsgi_thread_wait() -> None:
    lock = threading.Lock()
    produced = consumed = max_gap = 0
    reached = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        nonlocal produced, max_gap
        start_response("200 OK", [])
        for _ in range(60):
            with lock:
                produced += 1
                max_gap = max(max_gap, produced - consumed)
                if produced == 4:
                    reached.set()
            yield CHUNK

    # Room for 3 unsent chunks; send() blocks until the test takes each message.
    adapter = WsgiToAsgi(app, max_buffer=3 * len(CHUNK))
    async with drive(adapter, http_scope(), send_buffer=0) as driver:
        await driver.feed({"type": "http.request"})
        assert (await driver.output())["type"] == "http.response.start"
        assert await anyio.to_thread.run_sync(reached.wait, 5)
        while (await driver.output()).get("more_body"):
            with lock:
                consumed += 1
            # A slow client: give the producer thread time to run ahead if it could.
            await anyio.to_thread.run_sync(threading.Event().wait, 0.0)
    await driver.finished()
    assert produced == 60
    # 3 queued, 1 in send(), 1 in the generator's hand, and the one just taken.
    assert max_gap <= 6


async def test_client_disconnect_stops_and_closes_the_iterable() -> None:
    closed = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            while True:
                yield CHUNK
        finally:
            closed.set()

    async with drive(
        WsgiToAsgi(app, max_buffer=4 * len(CHUNK)), http_scope(), send_buffer=0
    ) as driver:
        await driver.feed({"type": "http.request"})
        assert (await driver.output())["status"] == 200
        assert (await driver.output())["body"] == CHUNK
        await driver.feed({"type": "http.disconnect"})
        # The sender may be blocked in send(): keep taking what comes until the app ends.
        async for _ in driver.outbox[1]:
            pass
    await driver.finished()
    assert closed.is_set()


async def test_cancelled_request_closes_a_response_waiting_for_the_client() -> None:
    closed = threading.Event()
    waiting = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            for count in range(1000):
                if count == 1:
                    waiting.set()
                yield CHUNK
        finally:
            closed.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as task_group:
            adapter = WsgiToAsgi(app, max_buffer=len(CHUNK))
            async with drive(adapter, http_scope(), send_buffer=0) as driver:
                await driver.feed({"type": "http.request"})
                assert await anyio.to_thread.run_sync(waiting.wait, 5)
                await anyio.wait_all_tasks_blocked()
                task_group.cancel_scope.cancel()
    assert closed.is_set()


async def test_send_raising_oserror_stops_and_closes_the_iterable() -> None:
    closed = threading.Event()
    sent: list[Message] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            while True:
                yield CHUNK
        finally:
            closed.set()

    requests = [{"type": "http.request"}]

    async def receive() -> MutableMapping[str, Any]:
        if requests:
            return requests.pop()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        if len(sent) == 3:
            raise ConnectionResetError("peer went away")
        sent.append(dict(message))

    adapter: Any = WsgiToAsgi(app)  # the fake server's callables are untyped dicts
    with anyio.fail_after(5):
        await adapter(http_scope(), receive, send)
    assert closed.is_set()
    assert len(sent) == 3


async def test_app_raising_after_headers_were_sent_propagates() -> None:
    closed = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            yield b"first"
            raise LookupError("mid-body failure")
        finally:
            closed.set()

    async with drive(WsgiToAsgi(app), http_scope()) as driver:
        await driver.feed({"type": "http.request"})
        messages = await driver.outputs()
    with pytest.raises(LookupError, match="mid-body failure"):
        await driver.finished()
    assert bodies(messages) == [b"first"]
    assert closed.is_set()


async def test_bytes_like_chunks_are_sent_as_bytes() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [bytearray(b"ab"), memoryview(b"cd")]  # type: ignore[list-item]

    sent = bodies(await call(WsgiToAsgi(app)))
    assert sent == [b"ab", b"cd"]
    assert {type(body) for body in sent} == {bytes}


async def test_write_waits_for_a_slow_client() -> None:
    lock = threading.Lock()
    written = taken = max_gap = 0

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        nonlocal written, max_gap
        write = start_response("200 OK", [])
        for _ in range(40):
            with lock:
                written += 1
                max_gap = max(max_gap, written - taken)
            write(CHUNK)
        return []

    adapter = WsgiToAsgi(app, max_buffer=2 * len(CHUNK))
    async with drive(adapter, http_scope(), send_buffer=0) as driver:
        await driver.feed({"type": "http.request"})
        assert (await driver.output())["type"] == "http.response.start"
        while (await driver.output()).get("more_body"):
            with lock:
                taken += 1
            await anyio.to_thread.run_sync(threading.Event().wait, 0.0)
    await driver.finished()
    assert written == 40
    # 2 queued, 1 in send(), 1 being written, and the one just taken.
    assert max_gap <= 5
