"""Tests for the streaming ``wsgi.input`` of WsgiToAsgi."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from asgibridge_any import _wsgi_exchange
from asgibridge_any.wsgi import WsgiToAsgi
from tests.test_wsgi import Environ, StartResponse, call, drive, http_scope

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

POST_CHUNKED = http_scope(method="POST", headers=[(b"transfer-encoding", b"chunked")])


def reading_app(
    read: Callable[[Any], object], results: list[object]
) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    """Build an app that records ``read(environ["wsgi.input"])`` and answers 200."""

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        results.append(read(environ["wsgi.input"]))
        start_response("200 OK", [])
        return []

    return app


async def post(
    read: Callable[[Any], object], *chunks: bytes, scope: dict[str, Any] = POST_CHUNKED
) -> object:
    """POST ``chunks`` as separate messages and return what ``read`` got from the input."""
    results: list[object] = []
    async with drive(WsgiToAsgi(reading_app(read, results)), scope) as driver:
        for index, chunk in enumerate(chunks):
            more = index < len(chunks) - 1
            await driver.feed(
                {"type": "http.request", "body": chunk, "more_body": more}
            )
        assert (await driver.output())["status"] == 200
    await driver.finished()
    return results[0]


async def test_read_returns_the_whole_body() -> None:
    assert await post(lambda f: f.read(), b"ab", b"", b"cd", b"e") == b"abcde"


async def test_read_n_blocks_for_n_bytes_across_messages() -> None:
    def read(f: Any) -> object:
        return [f.read(3), f.read(0), f.read(4), f.read(10), f.read(1)]

    assert await post(read, b"ab", b"cdef", b"ghi") == [
        b"abc",
        b"",
        b"defg",
        b"hi",
        b"",
    ]


async def test_readline_splits_on_newlines_across_messages() -> None:
    def read(f: Any) -> object:
        return [f.readline(), f.readline(), f.readline(), f.readline()]

    assert await post(read, b"one\ntw", b"o\nthr", b"ee") == [
        b"one\n",
        b"two\n",
        b"three",
        b"",
    ]


async def test_readline_with_size_stops_early() -> None:
    def read(f: Any) -> object:
        return [f.readline(2), f.readline(10), f.readline(0), f.readline(None)]

    assert await post(read, b"abc\n", b"def\n") == [b"ab", b"c\n", b"", b"def\n"]


async def test_readlines_and_iteration_yield_every_line() -> None:
    assert await post(lambda f: f.readlines(), b"a\nb", b"\nc") == [
        b"a\n",
        b"b\n",
        b"c",
    ]
    assert await post(list, b"x\n", b"y\nz\n") == [b"x\n", b"y\n", b"z\n"]


async def test_readlines_with_hint_stops_after_hint_bytes() -> None:
    assert await post(lambda f: f.readlines(3), b"ab\ncd\nef\n") == [b"ab\n"]


@pytest.mark.parametrize("streamed", [False, True])
async def test_request_without_body_is_answered_after_its_request_message(
    streamed: bool,
) -> None:
    """Test that nothing is sent before the server delivered the request message of a
    request without a body (asgiref's adapter behaves so, and tests rely on it)."""
    ran = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        ran.set()
        return iter([b"streamed"]) if streamed else [b"listed"]

    async with drive(WsgiToAsgi(app), http_scope(method="GET")) as driver:
        assert await anyio.to_thread.run_sync(ran.wait, 5)
        await driver.receiving.wait()
        await anyio.wait_all_tasks_blocked()
        assert driver.outbox[1].statistics().current_buffer_used == 0
        await driver.feed({"type": "http.request"})
        assert (await driver.output())["status"] == 200
        assert (await driver.output())["body"] in (b"streamed", b"listed")
    await driver.finished()


@pytest.mark.parametrize(
    "headers",
    [[(b"content-length", b"0")], [], [(b"content-length", b"3")]],
    ids=["content-length-0", "no-framing-headers", "content-length-too-small"],
)
async def test_body_is_delivered_as_the_server_sent_it_whatever_the_headers_say(
    headers: list[tuple[bytes, bytes]],
) -> None:
    """Test that wsgi.input holds what came in http.request messages, not what the
    headers announced (an ASGI middleware may rewrite the body and drop them)."""
    scope = http_scope(method="POST", headers=headers)
    assert await post(lambda f: f.read(), b"hello ", b"world", scope=scope) == (
        b"hello world"
    )


async def test_app_starts_before_the_body_arrives_and_nothing_is_read_first() -> None:
    called = threading.Event()
    receive_calls_at_call: list[int] = []
    body: list[bytes] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        receive_calls_at_call.append(driver.receive_calls)
        called.set()
        body.append(environ["wsgi.input"].read())
        start_response("200 OK", [])
        return []

    scope = http_scope(method="POST", headers=[(b"content-length", b"6")])
    async with drive(WsgiToAsgi(app), scope) as driver:
        assert await anyio.to_thread.run_sync(called.wait, 5)
        await driver.feed({"type": "http.request", "body": b"abc", "more_body": True})
        await driver.feed({"type": "http.request", "body": b"def"})
        assert (await driver.output())["status"] == 200
    await driver.finished()
    assert receive_calls_at_call == [0]
    assert body == [b"abcdef"]


async def test_adapter_reads_at_most_max_buffer_ahead_of_a_reading_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Test the back-pressure on the client while the application reads (with the
    adapter's ticks stopped: no tick decides that the application stalled)."""
    monkeypatch.setattr(_wsgi_exchange.Exchange, "tick", lambda self: None)
    release = threading.Event()
    first = threading.Event()
    got: list[bytes] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        stream = environ["wsgi.input"]
        got.append(stream.read(1))
        first.set()
        release.wait(5)
        got.append(stream.read())
        start_response("200 OK", [])
        return []

    async with drive(WsgiToAsgi(app, max_buffer=10), POST_CHUNKED) as driver:
        for index in range(10):
            await driver.feed(
                {"type": "http.request", "body": b"wxyz", "more_body": index < 9}
            )
        assert await anyio.to_thread.run_sync(first.wait, 5)
        await anyio.wait_all_tasks_blocked()
        # One message went to the app, then at most 10 bytes (3 messages) were read
        # ahead, and one more is held until there is room.
        assert driver.receive_calls == 5
        assert driver.inbox[1].statistics().current_buffer_used == 5
        release.set()
        assert (await driver.output())["status"] == 200
    await driver.finished()
    assert b"".join(got) == b"wxyz" * 10


async def test_client_disconnect_makes_read_raise_oserror() -> None:
    errors: list[BaseException] = []
    closed = threading.Event()

    class Body(list[bytes]):
        def close(self) -> None:
            closed.set()

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            environ["wsgi.input"].read()
        except OSError as exc:
            errors.append(exc)
        start_response("200 OK", [])
        return Body()

    async with drive(WsgiToAsgi(app), POST_CHUNKED) as driver:
        await driver.feed(
            {"type": "http.request", "body": b"partial", "more_body": True}
        )
        await driver.feed({"type": "http.disconnect"})
    await driver.finished()
    assert len(errors) == 1
    assert "disconnected" in str(errors[0])
    assert closed.is_set()


async def test_cancelled_request_releases_the_thread_blocked_on_input() -> None:
    blocked = threading.Event()
    errors: list[BaseException] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        blocked.set()
        try:
            environ["wsgi.input"].read()
        except OSError as exc:
            errors.append(exc)
            raise
        return []

    with anyio.fail_after(5):
        async with (
            anyio.create_task_group() as task_group,
            drive(WsgiToAsgi(app), POST_CHUNKED),
        ):
            assert await anyio.to_thread.run_sync(blocked.wait, 5)
            await anyio.wait_all_tasks_blocked()
            task_group.cancel_scope.cancel()
    assert len(errors) == 1


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"type": "http.response.start"}, "message\\['type'\\]"),
        ({"body": b"x"}, "'type'"),
        ({"type": "http.request", "body": "text"}, "message\\['body'\\]"),
    ],
)
async def test_malformed_message_is_a_value_error_naming_the_field(
    message: dict[str, Any], field: str
) -> None:
    results: list[object] = []

    def read(f: Any) -> object:
        try:
            return f.read()
        except OSError as exc:
            return exc

    async with drive(WsgiToAsgi(reading_app(read, results)), POST_CHUNKED) as driver:
        await driver.feed(message)
    with pytest.raises(ValueError, match=field):
        await driver.finished()
    assert isinstance(results[0], OSError)


async def test_content_length_body_is_read_whole() -> None:
    scope = http_scope(method="POST", headers=[(b"content-length", b"12")])
    assert (
        await post(lambda f: f.read(12), b"Hello ", b"World!", scope=scope)
        == b"Hello World!"
    )


async def test_unread_body_does_not_block_the_response() -> None:
    messages = await call(
        WsgiToAsgi(reading_app(lambda f: None, [])), POST_CHUNKED, b"ignored"
    )
    assert messages[0]["status"] == 200


async def test_app_error_after_the_client_left_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            environ["wsgi.input"].read()
        except OSError:
            raise RuntimeError("upload incomplete") from None
        raise AssertionError("the body cannot be complete")

    async with drive(WsgiToAsgi(app), POST_CHUNKED) as driver:
        await driver.feed(
            {"type": "http.request", "body": b"partial", "more_body": True}
        )
        await driver.feed({"type": "http.disconnect"})
        assert await driver.outputs() == []
    await driver.finished()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
