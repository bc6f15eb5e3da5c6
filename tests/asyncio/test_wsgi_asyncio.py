"""WsgiToAsgi driven by plain asyncio primitives, the way asyncio servers call it."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import anyio

from asgibridge_any.wsgi import WsgiToAsgi
from tests.test_wsgi import http_scope, upper_lines_app

if TYPE_CHECKING:
    from tests.test_wsgi import Environ, Message, StartResponse


async def test_streams_both_ways_in_a_bare_asyncio_task() -> None:
    """Test that a request in an asyncio.Task (not an anyio task group) streams and ends."""
    closed = threading.Event()

    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue(maxsize=1)
    adapter: Any = WsgiToAsgi(upper_lines_app(closed))
    scope = http_scope(method="POST", headers=[(b"transfer-encoding", b"chunked")])
    task = asyncio.create_task(adapter(scope, inbox.get, outbox.put))
    await inbox.put({"type": "http.request", "body": b"one\n", "more_body": True})
    assert (await asyncio.wait_for(outbox.get(), 5))["status"] == 200
    # The first line comes back before the rest of the body was even sent.
    assert (await asyncio.wait_for(outbox.get(), 5))["body"] == b"ONE\n"
    await inbox.put({"type": "http.request", "body": b"two\n"})
    assert (await asyncio.wait_for(outbox.get(), 5))["body"] == b"TWO\n"
    assert await asyncio.wait_for(outbox.get(), 5) == {"type": "http.response.body"}
    await asyncio.wait_for(task, 5)
    assert closed.is_set()


async def test_cancelling_the_asyncio_task_releases_the_thread() -> None:
    """Test that Task.cancel(), as uvicorn does at shutdown, frees a thread waiting for input."""
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

    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    adapter: Any = WsgiToAsgi(app)
    scope = http_scope(method="POST", headers=[(b"content-length", b"10")])
    task = asyncio.create_task(adapter(scope, inbox.get, outbox.put))
    assert await asyncio.to_thread(waiting.wait, 5)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5)
    assert task in done
    assert task.cancelled()
    assert len(failures) == 1


async def test_task_cancelled_while_waiting_for_a_thread_never_calls_the_app() -> None:
    """Test that a request cancelled before it got a worker thread is dropped whole."""
    first_in = threading.Event()
    release = threading.Event()
    paths: list[str] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        paths.append(environ["PATH_INFO"])
        if environ["PATH_INFO"] == "/first":
            first_in.set()
            release.wait(5)
        start_response("200 OK", [])
        return []

    adapter: Any = WsgiToAsgi(app, limiter=anyio.CapacityLimiter(1))
    outbox: asyncio.Queue[Message] = asyncio.Queue()

    async def receive() -> Message:
        return {"type": "http.request"}

    first = asyncio.create_task(adapter(http_scope(path="/first"), receive, outbox.put))
    assert await asyncio.to_thread(first_in.wait, 5)
    second = asyncio.create_task(
        adapter(http_scope(path="/second"), receive, outbox.put)
    )
    await anyio.wait_all_tasks_blocked()
    second.cancel()
    done, _ = await asyncio.wait([second], timeout=5)
    assert second in done
    release.set()
    await asyncio.wait_for(first, 5)
    assert paths == ["/first"]


async def test_repeated_task_cancel_still_waits_for_the_thread() -> None:
    """Test that Task.cancel() called again and again (anyio's shields cannot stop it)
    does not let the request return while the application still runs in its thread."""
    running = threading.Event()
    release = threading.Event()
    finished: list[bool] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        running.set()
        release.wait(5)
        finished.append(True)
        start_response("200 OK", [])
        return []

    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    adapter: Any = WsgiToAsgi(app)
    task = asyncio.create_task(adapter(http_scope(), inbox.get, outbox.put))
    assert await asyncio.to_thread(running.wait, 5)
    for _ in range(3):
        task.cancel()
        await anyio.wait_all_tasks_blocked()
        assert not task.done()
    release.set()
    done, _ = await asyncio.wait([task], timeout=5)
    assert task in done
    assert task.cancelled()
    assert finished == [True]
