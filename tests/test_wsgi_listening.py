"""Tests that WsgiToAsgi keeps listening to the client whatever the application does,
driven directly as an ASGI application (the cases servers cannot produce on demand),
and the response rules that go with it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from asgibridge_any import _wsgi_exchange
from asgibridge_any.wsgi import WsgiToAsgi
from tests.test_wsgi import Environ, StartResponse, call, drive, http_scope

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

POST = http_scope(method="POST", headers=[(b"content-length", b"41")])
DISCONNECTED = "asgibridge_any.disconnected"


async def test_body_of_an_app_not_reading_is_spooled_and_still_read_whole() -> None:
    """Test that the adapter keeps receiving past max_buffer for an application that
    does not read, and that the application later reads every byte in order."""
    release = threading.Event()
    got: list[bytes] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        release.wait(5)
        got.append(environ["wsgi.input"].read())
        start_response("200 OK", [])
        return []

    async with drive(WsgiToAsgi(app, max_buffer=8), POST) as driver:
        for index in range(10):
            await driver.feed(
                {"type": "http.request", "body": b"%04d" % index, "more_body": True}
            )
        await driver.feed({"type": "http.request", "body": b"!"})
        # Every message was received, and the adapter listens for a disconnect.
        await driver.wait_receive_calls(12)
        release.set()
        assert (await driver.output())["status"] == 200
    await driver.finished()
    assert got == [b"".join(b"%04d" % index for index in range(10)) + b"!"]


async def test_body_beyond_the_spool_of_an_app_not_reading_cuts_the_request() -> None:
    """Test that the request is cut once the temporary file is full: the client gets a
    413, the application sees the client as gone."""
    seen: list[bool] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(environ[DISCONNECTED].wait(5))
        start_response("200 OK", [])
        return [b"never sent"]

    async with drive(WsgiToAsgi(app, max_buffer=8, max_spool=16), POST) as driver:
        for _ in range(20):
            await driver.feed(
                {"type": "http.request", "body": b"abcd", "more_body": True}
            )
        messages = await driver.outputs()
    await driver.finished()
    assert messages[0]["status"] == 413
    assert messages[1]["body"] == b"Request Entity Too Large"
    assert len(messages) == 2
    assert seen == [True]


async def test_app_neither_reading_nor_finishing_sees_the_disconnect() -> None:
    seen: list[bool] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(environ[DISCONNECTED].wait(5))
        start_response("200 OK", [])
        return []

    async with drive(WsgiToAsgi(app), http_scope()) as driver:
        await driver.feed({"type": "http.request"})
        await driver.feed({"type": "http.disconnect"})
        assert await driver.outputs() == []
    await driver.finished()
    assert seen == [True]


async def test_disconnected_flag_stays_clear_for_a_client_that_stays() -> None:
    seen: list[bool] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(environ[DISCONNECTED].is_set())
        seen.append(environ[DISCONNECTED].wait(0))
        start_response("200 OK", [])
        return []

    assert (await call(WsgiToAsgi(app)))[0]["status"] == 200
    assert seen == [False, False]


async def test_response_to_a_request_with_a_body_is_not_held_for_the_body() -> None:
    """Test that an application answering without reading is answered before the
    server delivered anything (receive() would make some servers send 100 Continue)."""

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("413 Content Too Large", [("Content-Length", "0")])
        return []

    scope = http_scope(
        method="POST",
        headers=[(b"content-length", b"100"), (b"expect", b"100-continue")],
    )
    async with drive(WsgiToAsgi(app), scope) as driver:
        assert (await driver.output())["status"] == 413
        assert driver.receive_calls == 0
        # The final message waits for nothing either; the adapter then listens, so
        # that the server can finish the response.
        assert await driver.output() == {"type": "http.response.body"}
        await driver.feed({"type": "http.disconnect"})
    await driver.finished()


@pytest.mark.parametrize(
    "status", ["100 Continue", "101 Switching Protocols", "103 Early Hints", "600 Odd"]
)
async def test_status_that_is_not_a_final_http_status_gets_500(status: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(status, [])
        return []

    messages = await call(WsgiToAsgi(app))
    assert messages[0]["status"] == 500


async def test_write_after_the_response_finished_raises() -> None:
    writes: list[Callable[[bytes], object]] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        writes.append(start_response("200 OK", []))
        return [b"done"]

    messages = await call(WsgiToAsgi(app))
    assert messages[-1] == {"type": "http.response.body"}
    with pytest.raises(RuntimeError, match="after the response finished"):
        writes[0](b"late")


@pytest.mark.parametrize(
    ("options", "value"),
    [({}, "dashed"), ({"underscores_in_headers": True}, "underscored,dashed")],
)
async def test_header_names_with_underscores_are_dropped_unless_allowed(
    options: dict[str, Any], value: str
) -> None:
    seen: list[str] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(environ["HTTP_X_UNDER"])
        start_response("200 OK", [])
        return []

    headers = [(b"x_under", b"underscored"), (b"x-under", b"dashed")]
    await call(WsgiToAsgi(app, **options), http_scope(headers=headers))
    assert seen == [value]


def test_negative_max_spool_is_refused() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return []

    with pytest.raises(ValueError, match="max_spool"):
        WsgiToAsgi(app, max_spool=-1)


async def test_cancelled_request_sets_the_disconnected_flag() -> None:
    waiting = threading.Event()
    seen: list[bool] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        waiting.set()
        seen.append(environ[DISCONNECTED].wait(5))
        return []

    with anyio.fail_after(5):
        async with (
            anyio.create_task_group() as task_group,
            drive(WsgiToAsgi(app), http_scope()),
        ):
            assert await anyio.to_thread.run_sync(waiting.wait, 5)
            task_group.cancel_scope.cancel()
    assert seen == [True]


async def test_tick_between_the_start_of_the_reader_and_its_first_step_is_harmless(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Test that a tick landing after the reader was started but before it ran does
    not take the request for cancelled (only a reader that misses a whole tick is)."""
    start_reader = _wsgi_exchange.Exchange._start_reader

    def start_then_tick(self: _wsgi_exchange.Exchange) -> None:
        start_reader(self)
        self.tick()

    monkeypatch.setattr(_wsgi_exchange.Exchange, "_start_reader", start_then_tick)
    got: list[bytes] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        got.append(environ["wsgi.input"].read())
        start_response("200 OK", [])
        return []

    scope = http_scope(method="POST", headers=[(b"content-length", b"4")])
    async with drive(WsgiToAsgi(app), scope) as driver:
        await driver.feed({"type": "http.request", "body": b"ab", "more_body": True})
        await driver.feed({"type": "http.request", "body": b"cd"})
        assert (await driver.output())["status"] == 200
    await driver.finished()
    assert got == [b"abcd"]
