"""
A base class for servers without incoming connections (chat bots, queue consumers).

Such a server turns events from some source into ASGI messages for long-lived application
instances, one per *scope id* (a user, a channel, a queue name). :class:`StatelessServer`
runs those instances in an anyio task group on asyncio or trio, limits their number, reaps
finished ones and reports their exceptions; a subclass supplies the event source
(:meth:`~StatelessServer.handle`) and the way out (:meth:`~StatelessServer.application_send`).
"""

from __future__ import annotations

__all__ = ("ApplicationQueue", "ApplicationQueueFull", "StatelessServer")

import logging
import time
import traceback
from collections import OrderedDict
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from ._server_instance import ApplicationInstanceTask
from ._server_queue import ApplicationQueue, ApplicationQueueFull
from .compatibility import guarantee_single_callable

if TYPE_CHECKING:
    from collections.abc import Hashable

    from .typing import ASGI3Application

logger = logging.getLogger(__name__)

_BACKENDS = ("asyncio", "trio")


class StatelessServer:
    """
    Run and pool ASGI application instances for a protocol without connections.

    Subclass it and implement :meth:`handle` (read events; for each, call
    :meth:`get_or_create_application_instance` and put a message on the queue it returns)
    and :meth:`application_send` (deliver what an application sends). Then call
    :meth:`run`, or ``await`` :meth:`arun` inside a running asyncio or trio loop.

    :attr:`application_instances` maps each scope id to a dict with the keys
    ``"input_queue"`` (an :class:`ApplicationQueue`), ``"future"`` (an awaitable handle
    with ``cancel()``, ``done()``, ``cancelled()``, ``exception()`` and ``result()``),
    ``"scope"`` and ``"last_used"`` (a :func:`time.time` timestamp), least recently used
    first.

    Input queues hold at most :attr:`application_queue_size` messages (1000 by default;
    set the class attribute, ``0`` for unbounded): a producer outrunning its application
    waits in ``await queue.put()`` or gets :exc:`ApplicationQueueFull` from
    ``queue.put_nowait()``, so memory stays bounded. Messages for an instance that has
    finished are dropped.

    :param application: the ASGI application (ASGI 3, or ASGI 2 double-callable)
    :param max_applications: the most application instances alive at once; creating one
        more cancels the least recently used one
    :raises TypeError: if ``application`` is not callable, or ``max_applications`` is
        not an int
    :raises ValueError: if ``max_applications`` is less than 1
    """

    #: Seconds between two sweeps for finished application instances.
    application_checker_interval: float = 0.1
    #: Messages an instance's input queue holds before producers must wait (0: no bound).
    application_queue_size: int = 1000

    def __init__(self, application: Any, max_applications: int = 1000) -> None:
        self._single_callable: ASGI3Application = guarantee_single_callable(application)
        # asgiref calls it with keyword arguments, which applications may rely on.
        self._keyword_callable: Any = self._single_callable
        if isinstance(max_applications, bool) or not isinstance(max_applications, int):
            raise TypeError(
                f"max_applications must be an int, got {type(max_applications).__name__}"
            )
        if max_applications < 1:
            raise ValueError(
                f"max_applications must be at least 1, got {max_applications}"
            )
        self.application = application
        self.max_applications = max_applications
        self.application_instances: OrderedDict[Hashable, dict[str, Any]] = (
            OrderedDict()
        )
        self._task_group: anyio.abc.TaskGroup | None = None
        # Instances that finished and were replaced before the checker saw them.
        self._finished_unchecked: list[dict[str, Any]] = []

    # --- main loop -------------------------------------------------------------------------

    def run(
        self, backend: str = "asyncio", backend_options: dict[str, Any] | None = None
    ) -> None:
        """
        Run the server in a new event loop until :meth:`handle` returns.

        Ctrl-C stops it quietly (logged at INFO level).

        :param backend: ``"asyncio"`` or ``"trio"``
        :param backend_options: keyword arguments for the backend's ``run()`` (see
            :func:`anyio.run`)
        :raises ValueError: for another ``backend``
        :raises RuntimeError: if called in a thread that runs an event loop; there,
            ``await server.arun()`` instead
        """
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be 'asyncio' or 'trio', got {backend!r}")
        try:
            anyio.run(self.arun, backend=backend, backend_options=backend_options)
        except KeyboardInterrupt:
            logger.info("Exiting due to Ctrl-C/interrupt")

    async def arun(self) -> None:
        """
        Run the server in the current asyncio or trio loop until :meth:`handle` returns.

        Application instances run in a task group owned by this call: when it returns,
        raises (the exception :meth:`handle` raised comes out unchanged) or is cancelled,
        every instance has been cancelled and has finished.

        :raises RuntimeError: if this server is already running
        """
        if self._task_group is not None:
            raise RuntimeError(f"{self!r} is already running; one arun() at a time")
        failure: BaseException | None = None
        try:
            async with anyio.create_task_group() as task_group:
                self._task_group = task_group
                task_group.start_soon(
                    self.application_checker, name="application checker"
                )
                try:
                    await self.handle()
                except anyio.get_cancelled_exc_class():
                    raise
                except BaseException as exc:
                    # Kept aside so that it leaves unwrapped, not in an ExceptionGroup
                    # (which would also hide a KeyboardInterrupt from run()).
                    failure = exc
                finally:
                    task_group.cancel_scope.cancel()
            # Instances that failed just before shutdown are still reported.
            with anyio.move_on_after(1, shield=True):
                await self._check_instances()
        finally:
            self._task_group = None
            self.application_instances.clear()
            self._finished_unchecked.clear()
        if failure is not None:
            raise failure

    async def handle(self) -> None:
        """
        Receive events and dispatch them to application instances; override this.

        The server stops when it returns.
        """
        raise NotImplementedError("You must implement handle()")

    async def application_send(self, scope: Any, message: Any) -> None:
        """
        Deliver ``message`` sent by the application instance for ``scope``; override this.

        :param scope: the scope the instance was created with
        :param message: what the application passed to ``send``
        """
        raise NotImplementedError("You must implement application_send()")

    # --- application instances --------------------------------------------------------------

    def get_or_create_application_instance(
        self, scope_id: Hashable, scope: Any
    ) -> ApplicationQueue[Any]:
        """
        Return the input queue of the instance for ``scope_id``, starting one if needed.

        A new instance runs ``application(scope=scope, receive=..., send=...)`` where
        ``receive`` takes from the returned queue and ``send`` calls
        :meth:`application_send` with ``scope``. An instance that has finished is
        replaced by a fresh one. If ``max_applications`` instances are alive, the least
        recently used one is cancelled and dropped first.

        :param scope_id: identifies the instance (any hashable value)
        :param scope: the instance's scope; stored and passed as given
        :returns: the instance's input queue
        :raises RuntimeError: if the server is not running (call it from :meth:`handle`)
        """
        task_group = self._task_group
        if task_group is None:
            raise RuntimeError(
                "get_or_create_application_instance() needs a running server: call it "
                "from handle() while run()/arun() is running"
            )
        details = self.application_instances.get(scope_id)
        if details is not None:
            if not details["future"].done():
                details["last_used"] = time.time()
                self.application_instances.move_to_end(scope_id)
                queue: ApplicationQueue[Any] = details["input_queue"]
                return queue
            del self.application_instances[scope_id]
            self._finished_unchecked.append(details)
        while len(self.application_instances) >= self.max_applications:
            self.delete_oldest_application_instance()
        queue = ApplicationQueue(self.application_queue_size)
        instance = ApplicationInstanceTask()
        task_group.start_soon(
            self._run_instance,
            instance,
            scope,
            queue,
            name=f"ASGI application {scope_id!r}",
        )
        self.application_instances[scope_id] = {
            "input_queue": queue,
            "future": instance,
            "scope": scope,
            "last_used": time.time(),
        }
        return queue

    async def _run_instance(
        self,
        instance: ApplicationInstanceTask,
        scope: Any,
        queue: ApplicationQueue[Any],
    ) -> None:
        try:
            await instance.run(
                partial(
                    self._keyword_callable,
                    scope=scope,
                    receive=queue.get,
                    send=partial(self.application_send, scope),
                )
            )
        finally:
            queue.discard_from_now_on()

    def delete_oldest_application_instance(self) -> None:
        """Cancel and drop the least recently used application instance, if any."""
        if self.application_instances:
            self.delete_application_instance(next(iter(self.application_instances)))

    def delete_application_instance(self, scope_id: Hashable) -> None:
        """
        Cancel and drop the application instance for ``scope_id``.

        It is cancelled at its next checkpoint; its queue drops further messages.

        :raises KeyError: if there is no instance for ``scope_id``
        """
        details = self.application_instances.pop(scope_id)
        details["future"].cancel()

    async def application_checker(self) -> None:
        """
        Every :attr:`application_checker_interval` seconds, reap finished instances.

        Each instance that raised is passed to :meth:`application_exception`; an
        exception from that hook is logged, never propagated.
        """
        while True:
            await anyio.sleep(self.application_checker_interval)
            await self._check_instances()

    async def _check_instances(self) -> None:
        finished, self._finished_unchecked = self._finished_unchecked, []
        for scope_id, details in list(self.application_instances.items()):
            if details["future"].done():
                if self.application_instances.get(scope_id) is details:
                    del self.application_instances[scope_id]
                finished.append(details)
        for details in finished:
            exception = details["future"].exception()
            if exception is None:
                continue
            try:
                await self.application_exception(exception, details)
            except Exception:
                logger.exception(
                    "application_exception() raised while reporting %r", exception
                )

    async def application_exception(
        self, exception: BaseException, application_details: dict[str, Any]
    ) -> None:
        """
        Report an exception an application instance raised; logs it by default.

        Override it to do more (the server keeps running whatever it does).

        :param exception: what the instance raised
        :param application_details: the instance's entry (see
            :attr:`application_instances`); it has already been removed
        """
        logger.error(
            "Exception inside application for scope %r: %s\n%s",
            application_details.get("scope"),
            exception,
            "".join(traceback.format_exception(exception)),
        )
