"""Tests for asgibridge_any.server.StatelessServer, under asyncio and trio."""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from asgibridge_any.server import ApplicationQueue, StatelessServer

Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


async def echo_app(scope: Any, receive: Receive, send: Send) -> None:
    while True:
        await send(await receive())


class ScriptedServer(StatelessServer):
    """A server whose handle() runs a test-supplied coroutine; it records what apps send."""

    application_checker_interval = 0.01

    def __init__(
        self,
        application: Any,
        script: Callable[[ScriptedServer], Awaitable[None]],
        max_applications: int = 1000,
    ) -> None:
        super().__init__(application, max_applications=max_applications)
        self.script = script
        self.sent: list[tuple[Any, Any]] = []
        self.message_arrived = anyio.Event()

    async def handle(self) -> None:
        await self.script(self)

    async def application_send(self, scope: Any, message: Any) -> None:
        self.sent.append((scope, message))
        self.message_arrived.set()
        self.message_arrived = anyio.Event()

    async def wait_for_sent(self, count: int) -> None:
        while len(self.sent) < count:
            await self.message_arrived.wait()

    async def wait_until_reaped(self, scope_id: Hashable) -> None:
        # The checker runs every 10 ms; bounded by the caller's fail_after.
        # Reaping is periodic by design, so this polls at the checker's own period.
        while scope_id in self.application_instances:  # noqa: ASYNC110
            await anyio.sleep(self.application_checker_interval)


async def run_server(server: StatelessServer) -> None:
    with anyio.fail_after(20):
        await server.arun()


async def test_messages_reach_the_instance_and_replies_reach_application_send() -> None:
    async def script(server: ScriptedServer) -> None:
        server.get_or_create_application_instance(
            "alice", {"type": "chat", "user": "a"}
        )
        queue = server.get_or_create_application_instance("alice", {"type": "chat"})
        queue.put_nowait("hello")
        await queue.put("again")
        await server.wait_for_sent(2)

    server = ScriptedServer(echo_app, script)
    await run_server(server)
    scope = {"type": "chat", "user": "a"}
    assert server.sent == [(scope, "hello"), (scope, "again")]


async def test_same_scope_id_gives_the_same_queue_and_others_a_new_one() -> None:
    queues: list[ApplicationQueue[Any]] = []

    async def script(server: ScriptedServer) -> None:
        queues.append(server.get_or_create_application_instance("a", {}))
        queues.append(server.get_or_create_application_instance("a", {}))
        queues.append(server.get_or_create_application_instance("b", {}))
        assert list(server.application_instances) == ["a", "b"]

    await run_server(ScriptedServer(echo_app, script))
    assert queues[0] is queues[1]
    assert queues[0] is not queues[2]


async def test_beyond_max_applications_the_least_recently_used_is_cancelled() -> None:
    cancelled: list[str] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(scope["name"])

    async def script(server: ScriptedServer) -> None:
        first = server.application_instances
        server.get_or_create_application_instance("a", {"name": "a"})
        server.get_or_create_application_instance("b", {"name": "b"})
        await anyio.wait_all_tasks_blocked()
        server.get_or_create_application_instance("a", {"name": "a"})  # a is now newest
        server.get_or_create_application_instance("c", {"name": "c"})
        assert list(first) == ["a", "c"]
        await anyio.wait_all_tasks_blocked()
        assert cancelled == ["b"]
        assert len(server.application_instances) == server.max_applications

    await run_server(ScriptedServer(app, script, max_applications=2))
    assert sorted(cancelled) == ["a", "b", "c"]


async def test_an_instance_evicted_before_it_started_never_runs() -> None:
    started: list[str] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        started.append(scope)

    async def script(server: ScriptedServer) -> None:
        server.get_or_create_application_instance("a", "a")
        server.get_or_create_application_instance("b", "b")  # evicts a at once
        await server.application_instances["b"]["future"].wait()

    await run_server(ScriptedServer(app, script, max_applications=1))
    assert started == ["b"]


async def test_delete_application_instance_cancels_and_drops_it() -> None:
    finished = anyio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        try:
            await receive()
        finally:
            finished.set()

    async def script(server: ScriptedServer) -> None:
        server.get_or_create_application_instance("x", {})
        handle = server.application_instances["x"]["future"]
        await anyio.wait_all_tasks_blocked()
        server.delete_application_instance("x")
        assert "x" not in server.application_instances
        await finished.wait()
        assert handle.done()
        assert handle.cancelled()
        with pytest.raises(KeyError):
            server.delete_application_instance("x")

    await run_server(ScriptedServer(app, script))


async def test_a_failing_application_is_reported_and_the_server_goes_on() -> None:
    reported: list[tuple[BaseException, dict[str, Any]]] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        message = await receive()
        if message == "boom":
            raise ValueError("application failure")
        await send(message)

    class ReportingServer(ScriptedServer):
        async def application_exception(
            self, exception: BaseException, application_details: dict[str, Any]
        ) -> None:
            reported.append((exception, application_details))

    async def script(server: ScriptedServer) -> None:
        server.get_or_create_application_instance("bad", {"id": "bad"}).put_nowait(
            "boom"
        )
        await server.wait_until_reaped("bad")
        server.get_or_create_application_instance("good", {"id": "good"}).put_nowait(
            "ok"
        )
        await server.wait_for_sent(1)

    server = ReportingServer(app, script)
    await run_server(server)
    assert server.sent == [({"id": "good"}, "ok")]
    [(exception, details)] = reported
    assert isinstance(exception, ValueError)
    assert details["scope"] == {"id": "bad"}


async def test_default_application_exception_logs_the_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        raise RuntimeError("logged failure")

    async def script(server: ScriptedServer) -> None:
        server.get_or_create_application_instance("x", {"id": "x"})
        await server.wait_until_reaped("x")

    with caplog.at_level(logging.ERROR, logger="asgibridge_any.server"):
        await run_server(ScriptedServer(app, script))
    [record] = caplog.records
    assert "logged failure" in record.getMessage()
    assert "Traceback" in record.getMessage()


async def test_an_application_exception_hook_that_raises_is_logged_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        raise RuntimeError("first failure")

    class BrokenHookServer(ScriptedServer):
        async def application_exception(
            self, exception: BaseException, application_details: dict[str, Any]
        ) -> None:
            raise KeyError("hook failure")

    async def script(server: ScriptedServer) -> None:
        server.get_or_create_application_instance("x", {})
        await server.wait_until_reaped("x")
        server.get_or_create_application_instance("y", {})
        await server.wait_until_reaped("y")

    with caplog.at_level(logging.ERROR, logger="asgibridge_any.server"):
        await run_server(BrokenHookServer(app, script))
    assert len(caplog.records) == 2
    assert all(
        "application_exception() raised" in r.getMessage() for r in caplog.records
    )


async def test_finished_instances_are_reaped_and_a_new_one_replaces_them() -> None:
    runs: list[int] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        runs.append(await receive())

    async def script(server: ScriptedServer) -> None:
        server.get_or_create_application_instance("x", {}).put_nowait(1)
        await server.wait_until_reaped("x")
        server.get_or_create_application_instance("x", {}).put_nowait(2)
        await server.application_instances["x"]["future"].wait()
        # Finished but not yet reaped: a fresh instance takes the message.
        server.get_or_create_application_instance("x", {}).put_nowait(3)
        await server.application_instances["x"]["future"].wait()

    await run_server(ScriptedServer(app, script))
    assert runs == [1, 2, 3]


async def test_an_unreaped_failure_is_still_reported_after_being_replaced() -> None:
    reported: list[BaseException] = []
    failed = anyio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if await receive() == "fail":
            raise ValueError("replaced before reaping")

    class ReportingServer(ScriptedServer):
        application_checker_interval = 3600  # only the final sweep at shutdown

        async def application_exception(
            self, exception: BaseException, application_details: dict[str, Any]
        ) -> None:
            reported.append(exception)
            failed.set()

    async def script(server: ScriptedServer) -> None:
        server.get_or_create_application_instance("x", {}).put_nowait("fail")
        await server.application_instances["x"]["future"].wait()
        server.get_or_create_application_instance("x", {}).put_nowait("fine")

    await run_server(ReportingServer(app, script))
    assert [str(e) for e in reported] == ["replaced before reaping"]


async def test_arun_returns_with_no_application_left_running() -> None:
    running: set[str] = set()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        running.add(scope)
        try:
            await anyio.sleep_forever()
        finally:
            running.discard(scope)

    async def script(server: ScriptedServer) -> None:
        for name in ("a", "b", "c"):
            server.get_or_create_application_instance(name, name)
        await anyio.wait_all_tasks_blocked()
        assert running == {"a", "b", "c"}

    server = ScriptedServer(app, script)
    await run_server(server)
    assert running == set()
    assert server.application_instances == {}


async def test_cancelling_arun_leaves_no_application_running() -> None:
    running: set[str] = set()
    handles: list[Any] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        running.add(scope)
        try:
            await anyio.sleep_forever()
        finally:
            running.discard(scope)

    async def script(server: ScriptedServer) -> None:
        for name in ("a", "b"):
            server.get_or_create_application_instance(name, name)
            handles.append(server.application_instances[name]["future"])
        await anyio.sleep_forever()

    server = ScriptedServer(app, script)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(server.arun)
            await anyio.wait_all_tasks_blocked()
            assert running == {"a", "b"}
            task_group.cancel_scope.cancel()
    assert running == set()
    assert all(handle.done() and handle.cancelled() for handle in handles)
    assert server.application_instances == {}


async def test_an_exception_from_handle_propagates_unwrapped_after_stopping_apps() -> (
    None
):
    running: set[str] = set()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        running.add(scope)
        try:
            await anyio.sleep_forever()
        finally:
            running.discard(scope)

    async def script(server: ScriptedServer) -> None:
        server.get_or_create_application_instance("a", "a")
        await anyio.wait_all_tasks_blocked()
        raise LookupError("handle failed")

    with pytest.raises(LookupError, match="handle failed"):
        await run_server(ScriptedServer(app, script))
    assert running == set()


async def test_system_exit_from_handle_propagates_unwrapped() -> None:
    async def script(server: ScriptedServer) -> None:
        server.get_or_create_application_instance("a", "a")
        raise SystemExit(3)

    with pytest.raises(SystemExit) as caught:
        await run_server(ScriptedServer(echo_app, script))
    assert caught.value.code == 3


async def test_a_flood_of_messages_is_bounded_by_the_queue_size() -> None:
    """Test that 100,000 messages for one instance never occupy more than the bound."""
    total = 100_000
    received: list[int] = []
    high_water = 0

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        count = 0
        while count < total:
            await receive()
            count += 1
            if count % 1000 == 0:
                # Pause until the producer is stuck on the full queue (back-pressure).
                await anyio.wait_all_tasks_blocked()
        received.append(count)

    async def script(server: ScriptedServer) -> None:
        nonlocal high_water
        queue = server.get_or_create_application_instance("flood", {})
        message = {"type": "flood"}
        for _ in range(total):
            await queue.put(message)
            high_water = max(high_water, queue.qsize())
        await server.application_instances["flood"]["future"].wait()

    class SmallQueueServer(ScriptedServer):
        application_queue_size = 64

    await run_server(SmallQueueServer(app, script))
    assert received == [total]
    assert high_water == 64  # full, so the producer waited; never beyond the bound


async def test_put_nowait_on_a_full_queue_raises_a_clear_error() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await anyio.sleep_forever()

    class TinyQueueServer(ScriptedServer):
        application_queue_size = 3

    async def script(server: ScriptedServer) -> None:
        queue = server.get_or_create_application_instance("x", {})
        for number in range(3):
            queue.put_nowait(number)
        with pytest.raises(asyncio_queue_full(), match="input queue is full"):
            queue.put_nowait(3)

    await run_server(TinyQueueServer(app, script))


def asyncio_queue_full() -> type[Exception]:
    import asyncio

    return asyncio.QueueFull


async def test_a_producer_blocked_on_a_dead_instance_is_released() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        raise ValueError("dies with a full queue")

    class TinyQueueServer(ScriptedServer):
        application_queue_size = 1

        async def application_exception(
            self, exception: BaseException, application_details: dict[str, Any]
        ) -> None:
            pass

    async def script(server: ScriptedServer) -> None:
        queue = server.get_or_create_application_instance("x", {})
        queue.put_nowait("first")
        queue_full_put = 0
        for number in range(10):  # the app dies after one message; none of these blocks
            await queue.put(number)
            queue_full_put += 1
        assert queue_full_put == 10

    await run_server(TinyQueueServer(app, script))


async def test_double_callable_applications_are_served() -> None:
    class Legacy:
        def __init__(self, scope: Any) -> None:
            self.scope = scope

        async def __call__(self, receive: Receive, send: Send) -> None:
            await send((self.scope, await receive()))

    async def script(server: ScriptedServer) -> None:
        server.get_or_create_application_instance("x", "scope-x").put_nowait("hi")
        await server.wait_for_sent(1)

    server = ScriptedServer(Legacy, script)
    await run_server(server)
    assert server.sent == [("scope-x", ("scope-x", "hi"))]


async def test_get_or_create_outside_a_running_server_is_an_error() -> None:
    server = ScriptedServer(echo_app, lambda server: anyio.lowlevel.checkpoint())
    with pytest.raises(RuntimeError, match="from handle"):
        server.get_or_create_application_instance("x", {})


async def test_arun_twice_at_once_is_an_error() -> None:
    second: list[BaseException] = []

    async def script(server: ScriptedServer) -> None:
        try:
            await server.arun()
        except RuntimeError as exc:
            second.append(exc)

    await run_server(ScriptedServer(echo_app, script))
    assert "already running" in str(second[0])


def test_bad_constructor_arguments_are_rejected() -> None:
    with pytest.raises(TypeError, match="needs an ASGI application"):
        StatelessServer("not an app")
    with pytest.raises(ValueError, match="max_applications"):
        StatelessServer(echo_app, max_applications=0)
    with pytest.raises(TypeError, match="max_applications"):
        StatelessServer(echo_app, max_applications=2.5)  # type: ignore[arg-type]


def test_handle_and_application_send_must_be_implemented() -> None:
    with pytest.raises(NotImplementedError, match="handle"):
        StatelessServer(echo_app).run()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_run_starts_its_own_loop_and_returns_when_handle_returns(backend: str) -> None:
    seen: list[str] = []

    async def script(server: ScriptedServer) -> None:
        import sniffio

        seen.append(sniffio.current_async_library())
        server.get_or_create_application_instance("x", {}).put_nowait("ping")
        await server.wait_for_sent(1)

    server = ScriptedServer(echo_app, script)
    done = threading.Event()

    def target() -> None:
        server.run(backend=backend)
        done.set()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(20)
    assert done.is_set()
    assert seen == [backend]
    assert server.sent == [({}, "ping")]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_run_exits_quietly_on_keyboard_interrupt(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def script(server: ScriptedServer) -> None:
        server.get_or_create_application_instance("x", {})
        raise KeyboardInterrupt

    errors: list[BaseException] = []

    def target() -> None:
        try:
            ScriptedServer(echo_app, script).run(backend=backend)
        except BaseException as exc:
            errors.append(exc)

    with caplog.at_level(logging.INFO, logger="asgibridge_any.server"):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join(20)
    assert not thread.is_alive()
    assert errors == []
    assert "Ctrl-C" in caplog.text


def test_run_rejects_an_unknown_backend() -> None:
    with pytest.raises(ValueError, match="'asyncio' or 'trio'"):
        StatelessServer(echo_app).run(backend="curio")
