# The event loop AsgiToWsgi runs its ASGI application on: one thread per adapter and
# process, running anyio (asyncio or trio) with a BlockingPortal and one task group for
# every request task, plus the application's lifespan.
#
# The thread is started by hand rather than with anyio's start_blocking_portal(): that
# context manager is a suspended generator, and in a forked child (a pre-fork server's
# worker) collecting it would call into the parent's loop, which does not exist there, and
# wait forever.  A plain daemon thread can simply be forgotten after a fork, and never
# holds up the interpreter's exit.
#
# Requests are started with the loop token's run_sync_soon, which returns at once: the
# portal's own start_task_soon() would make every request wait for a round trip to the
# loop before it even starts (as it does with an anyio too old to have run_sync_soon).
# Everything here stays loop-neutral (anyio's API only).
from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.abc import AsyncBackend
from anyio.from_thread import BlockingPortal

from ._asgi_to_wsgi_scope import ASGI_VERSION, LIFESPAN_SPEC_VERSION

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

logger = logging.getLogger("asgibridge_any.wsgi")

_Message = MutableMapping[str, Any]
#: An ASGI 3 application: ``await app(scope, receive, send)``.
AsgiApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[_Message]],
        Callable[[_Message], Awaitable[None]],
    ],
    Awaitable[None],
]

# anyio's fire-and-forget call into a loop from another thread (recent anyio); with
# an older anyio, waking the loop waits for it to run the callback: slower, as correct.
_FIRE_AND_FORGET = hasattr(AsyncBackend, "run_sync_soon")

#: Startup outcome of an application that does not speak the lifespan protocol.
_UNSUPPORTED = "unsupported"


class _Lifespan:
    """The ``lifespan`` connection of one loop: startup, then shutdown when asked."""

    def __init__(self, app: AsgiApp, required: bool) -> None:
        self.app = app
        self.required = required
        self.state: dict[str, Any] = {}
        #: None once started; _UNSUPPORTED; or why startup failed
        self.startup: Future[str | None] = Future()
        self.shutdown: Future[None] = Future()
        self._shutdown_requested: anyio.Event | None = None
        self._received = 0

    async def run(self) -> None:
        self._shutdown_requested = anyio.Event()
        scope = {
            "type": "lifespan",
            "asgi": {"version": ASGI_VERSION, "spec_version": LIFESPAN_SPEC_VERSION},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive, self._send)
        except anyio.get_cancelled_exc_class():
            self._settle("the event loop stopped during lifespan startup")
            raise
        except BaseException as exc:
            if self.startup.done():
                logger.error("ASGI lifespan raised during shutdown", exc_info=exc)
            elif self.required:
                logger.error("ASGI lifespan startup raised", exc_info=exc)
                self._settle(f"lifespan startup raised {exc!r}")
            else:
                # The ASGI spec's signal for "no lifespan support": serve without it.
                logger.debug("ASGI application has no lifespan support: %r", exc)
                self._settle(_UNSUPPORTED)
        else:
            self._settle(
                "the application returned during lifespan startup"
                if self.required
                else _UNSUPPORTED
            )
        finally:
            if not self.shutdown.done():
                self.shutdown.set_result(None)

    def _settle(self, outcome: str | None) -> None:
        if not self.startup.done():
            self.startup.set_result(outcome)

    def spawn_failed(self, exc: BaseException) -> None:
        self._settle(f"lifespan could not start: {exc!r}")

    def request_shutdown(self) -> None:
        assert self._shutdown_requested is not None
        self._shutdown_requested.set()

    async def _receive(self) -> _Message:
        self._received += 1
        if self._received == 1:
            return {"type": "lifespan.startup"}
        assert self._shutdown_requested is not None
        await self._shutdown_requested.wait()
        if self._received == 2:
            return {"type": "lifespan.shutdown"}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, message: _Message) -> None:
        kind = message.get("type") if isinstance(message, MutableMapping) else None
        if kind == "lifespan.startup.complete":
            self._settle(None)
        elif kind == "lifespan.startup.failed":
            reason = message.get("message", "")
            logger.error("ASGI lifespan startup failed: %s", reason)
            self._settle(f"lifespan startup failed: {reason}")
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            if kind == "lifespan.shutdown.failed":
                logger.error(
                    "ASGI lifespan shutdown failed: %s", message.get("message")
                )
            if not self.shutdown.done():
                self.shutdown.set_result(None)
        else:
            raise ValueError(
                "ASGI lifespan message['type'] must be 'lifespan.startup.complete', "
                "'lifespan.startup.failed', 'lifespan.shutdown.complete' or "
                f"'lifespan.shutdown.failed', got {kind!r}"
            )


class LoopThread:
    """
    An event loop in a daemon thread, with a task group for the requests.

    :param app: the ASGI application (for its lifespan)
    :param backend: ``"asyncio"`` or ``"trio"``
    :param backend_options: passed to :func:`anyio.run`
    :param lifespan: ``"auto"``, ``"on"`` or ``"off"``
    :param startup_timeout: seconds to wait for lifespan startup
    """

    def __init__(
        self,
        app: AsgiApp,
        backend: str,
        backend_options: dict[str, Any] | None,
        lifespan: str,
        startup_timeout: float,
    ) -> None:
        #: the lifespan state, when the application completed a lifespan startup
        self.state: dict[str, Any] | None = None
        #: why requests cannot be served (lifespan startup failed), or None
        self.failure: str | None = None
        self._lifespan: _Lifespan | None = None
        ready: Future[tuple[BlockingPortal, TaskGroup, anyio.lowlevel.EventLoopToken]]
        ready = Future()
        self._stop: anyio.Event | None = None

        def run() -> None:
            try:
                anyio.run(
                    self._main, ready, backend=backend, backend_options=backend_options
                )
            except BaseException as exc:
                if not ready.done():
                    ready.set_exception(exc)
                else:
                    logger.error("AsgiToWsgi event loop crashed", exc_info=exc)

        self.thread = threading.Thread(
            target=run, name=f"AsgiToWsgi event loop ({backend})", daemon=True
        )
        self.thread.start()
        self.portal, self._tasks, self._token = ready.result()
        if lifespan != "off":
            try:
                self._start_lifespan(_Lifespan(app, lifespan == "on"), startup_timeout)
            except BaseException:
                self.stop(startup_timeout)  # no loop thread left behind
                raise

    async def _main(
        self,
        ready: Future[tuple[BlockingPortal, TaskGroup, anyio.lowlevel.EventLoopToken]],
    ) -> None:
        self._stop = anyio.Event()
        async with BlockingPortal() as portal, anyio.create_task_group() as tasks:
            ready.set_result((portal, tasks, anyio.lowlevel.current_token()))
            await self._stop.wait()
            tasks.cancel_scope.cancel()

    def _start_lifespan(self, lifespan: _Lifespan, timeout: float) -> None:
        # (not portal.call(start_soon): that would wait for the task handle, i.e. the task)
        self.portal.call(self._spawn, lifespan.run, (), lifespan.spawn_failed)
        try:
            outcome = lifespan.startup.result(timeout)
        except FutureTimeout:
            outcome = f"lifespan startup did not finish within {timeout:g} s"
            logger.error("ASGI %s", outcome)
        if outcome is None:
            self.state = lifespan.state
            self._lifespan = lifespan
        elif outcome != _UNSUPPORTED:
            self.failure = outcome

    def call_soon(self, func: Callable[..., object], *args: object) -> None:
        """
        Run ``func(*args)`` on the loop soon, without waiting for it; from a thread other
        than the loop's.

        ``func`` must not raise (trio would end the run).

        :raises anyio.RunFinishedError: if the loop has stopped
        """
        token = self._token
        if _FIRE_AND_FORGET:
            token.backend_class.run_sync_soon(func, args, token.native_token)
        else:
            anyio.from_thread.run_sync(func, *args, token=token)

    def start_soon(
        self,
        func: Callable[..., Coroutine[Any, Any, object]],
        args: tuple[object, ...],
        on_failure: Callable[[BaseException], object],
    ) -> None:
        """
        Start ``func(*args)`` as a task of the loop's task group; from a foreign thread.

        ``func`` must handle its own exceptions, cancellation excepted.  If the task
        cannot be started because the loop is stopping, ``on_failure(exc)`` is called on
        the loop instead.

        :raises anyio.RunFinishedError: if the loop has stopped (``func`` never starts)
        """
        self.call_soon(self._spawn, func, args, on_failure)

    def _spawn(
        self,
        func: Callable[..., Coroutine[Any, Any, object]],
        args: tuple[object, ...],
        on_failure: Callable[[BaseException], object],
    ) -> None:
        try:
            self._tasks.start_soon(func, *args)
        except Exception as exc:
            on_failure(exc)

    def alive(self) -> bool:
        """Return whether the loop still runs (a request waiting on it can expect news)."""
        return self.thread.is_alive()

    def stop(self, shutdown_timeout: float) -> None:
        """
        Run lifespan shutdown, cancel what still runs, stop the loop and join its thread.

        :param shutdown_timeout: seconds to wait for lifespan shutdown
        """
        if not self.thread.is_alive():
            return
        lifespan, self._lifespan = self._lifespan, None
        if lifespan is not None:
            try:
                self.portal.call(lifespan.request_shutdown)
                lifespan.shutdown.result(shutdown_timeout)
            except FutureTimeout:
                logger.error(
                    "ASGI lifespan shutdown did not finish within %g s",
                    shutdown_timeout,
                )
            except RuntimeError:
                pass  # the loop is already stopping
        stop = self._stop
        if stop is not None:
            try:
                self.portal.call(stop.set)
            except RuntimeError:
                pass
        self.thread.join(shutdown_timeout)
        if self.thread.is_alive():
            logger.error(
                "the AsgiToWsgi event loop did not stop within %g s: a request task "
                "ignores cancellation",
                shutdown_timeout,
            )
