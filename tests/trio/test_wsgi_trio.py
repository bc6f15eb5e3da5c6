"""WsgiToAsgi driven by plain trio primitives, the way hypercorn's trio worker calls it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import trio
import trio.testing

from asgibridge_any.wsgi import WsgiToAsgi
from tests.test_wsgi import Message, http_scope, upper_lines_app

if TYPE_CHECKING:
    from tests.test_wsgi import Environ, StartResponse


async def test_streams_both_ways_in_a_trio_nursery() -> None:
    """Test that a request run by a trio nursery, with trio channels, streams and ends."""
    closed = threading.Event()

    to_app, app_inbox = trio.open_memory_channel[Message](10)
    app_outbox, from_app = trio.open_memory_channel[Message](0)
    adapter: Any = WsgiToAsgi(upper_lines_app(closed))
    scope = http_scope(method="POST", headers=[(b"transfer-encoding", b"chunked")])
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(adapter, scope, app_inbox.receive, app_outbox.send)
            await to_app.send(
                {"type": "http.request", "body": b"one\n", "more_body": True}
            )
            assert (await from_app.receive())["status"] == 200
            # The first line comes back before the rest of the body was even sent.
            assert (await from_app.receive())["body"] == b"ONE\n"
            await to_app.send({"type": "http.request", "body": b"two\n"})
            assert (await from_app.receive())["body"] == b"TWO\n"
            assert await from_app.receive() == {"type": "http.response.body"}
    assert closed.is_set()
    for channel in (to_app, app_inbox, app_outbox, from_app):
        channel.close()


async def test_cancelled_nursery_releases_the_thread() -> None:
    """Test that cancelling the nursery running a request frees a thread waiting for input."""
    waiting = threading.Event()
    failures: list[BaseException] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        waiting.set()
        try:
            environ["wsgi.input"].read()
        except OSError as exc:
            failures.append(exc)
        start_response("200 OK", [])
        return []

    async def receive() -> Message:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        raise AssertionError(f"nothing should be sent, got {message!r}")

    adapter: Any = WsgiToAsgi(app)
    scope = http_scope(method="POST", headers=[(b"content-length", b"10")])
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(adapter, scope, receive, send)
            assert await trio.to_thread.run_sync(waiting.wait, 5)
            nursery.cancel_scope.cancel()
    assert len(failures) == 1


async def test_repeated_cancellation_still_waits_for_the_thread() -> None:
    """Test that cancelling the request's scope, then an outer one, does not let the
    request return while the application still runs in its thread."""
    running = threading.Event()
    release = threading.Event()
    events: list[str] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        running.set()
        release.wait(5)
        events.append("app finished")
        start_response("200 OK", [])
        return []

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        events.append(message["type"])

    adapter: Any = WsgiToAsgi(app)
    outer, inner = trio.CancelScope(), trio.CancelScope()

    async def request() -> None:
        try:
            with outer, inner:
                await adapter(http_scope(), receive, send)
        finally:
            events.append("request returned")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(request)
            assert await trio.to_thread.run_sync(running.wait, 5)
            for scope in (inner, inner, outer):
                scope.cancel()
                await trio.testing.wait_all_tasks_blocked()
                assert events == []
            release.set()
    assert events == ["app finished", "request returned"]
