"""
Drive an ASGI application from a test, message by message.

:class:`ApplicationCommunicator` plays the server's part: it feeds messages to the
application's ``receive`` and collects what it passes to ``send``. It works under asyncio
and trio, as a plain object (the application runs in a background task) or as
``async with ApplicationCommunicator(app, scope) as comm:`` (the application runs in a task
group that the block owns, and is stopped when the block ends).

Once the application has been cancelled (a :meth:`~ApplicationCommunicator.receive_output`
or :meth:`~ApplicationCommunicator.wait` that timed out, or
:meth:`~ApplicationCommunicator.stop`), the communicator's calls raise
:exc:`ApplicationCancelled`, an :exc:`asyncio.CancelledError`, as asgiref's raise the
outcome of their cancelled asyncio task.
"""

from __future__ import annotations

__all__ = ("ApplicationCancelled", "ApplicationCommunicator")

import asyncio
import contextvars
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Self

import anyio
import anyio.lowlevel

from ._backends._background import start_background_task
from ._server_instance import ApplicationInstanceTask
from ._server_queue import ApplicationQueue, NoMoreMessages
from .compatibility import guarantee_single_callable

if TYPE_CHECKING:
    from types import TracebackType

    from anyio.abc import TaskGroup

    from .typing import ASGI3Application


# Only the exception type comes from asyncio: asgiref's users catch asyncio.CancelledError.
class ApplicationCancelled(asyncio.CancelledError):
    """
    Raised by an :class:`ApplicationCommunicator` whose application has been cancelled.

    asgiref's communicator re-raises the outcome of its application's asyncio task, which
    is :exc:`asyncio.CancelledError` once the task was cancelled. This class *is* an
    :exc:`asyncio.CancelledError`, so tests written for asgiref
    (``pytest.raises(asyncio.CancelledError)``, or Channels'
    ``WebsocketCommunicator.disconnect()`` after a timeout) behave the same under asyncio.

    trio's own :exc:`trio.Cancelled` can only be raised by trio, for one of its cancel
    scopes, so under trio the communicator raises this same class. Catch
    :exc:`ApplicationCancelled` in a test meant for both loops. Like any cancellation it
    derives from :exc:`BaseException`: ``except Exception`` does not catch it.
    """


class ApplicationCommunicator:
    """
    Run an ASGI application for a test, sending it messages and receiving what it sends.

    The application starts on the first call to :meth:`send_input`,
    :meth:`receive_output`, :meth:`receive_nothing` or :meth:`wait`, in an *empty*
    :mod:`contextvars` context (as under a real server: nothing the test set leaks in).
    An exception the application raised is re-raised by the next of those calls (and by
    ``stop()`` and the end of an ``async with`` block, if no call raised it yet). Once the
    application was cancelled (a timeout of :meth:`receive_output` or :meth:`wait`,
    :meth:`stop`), :meth:`send_input`, :meth:`receive_output`, :meth:`receive_nothing`
    and ``stop()`` raise :exc:`ApplicationCancelled`, as asgiref's raise
    :exc:`asyncio.CancelledError`; :meth:`wait` returns.

    Outside ``async with``, the application runs as a background task (on trio, a system
    task); inside, it runs in a task group owned by the block and is cancelled, and waited
    for, when the block ends.

    :param application: the ASGI application (ASGI 3, or ASGI 2 double-callable)
    :param scope: the scope to call it with
    :raises TypeError: if ``application`` is not callable or ``scope`` is not a mapping
    :raises ValueError: if ``scope["type"]`` is present but not a string
    """

    def __init__(self, application: Any, scope: Mapping[str, Any]) -> None:
        self.application: ASGI3Application = guarantee_single_callable(application)
        # Scopes in tests are often partial dicts, so the application is called untyped.
        self._call: Any = self.application
        if not isinstance(scope, Mapping):
            raise TypeError(
                f"the ASGI scope must be a dict, got {type(scope).__name__} {scope!r}"
            )
        if "type" in scope and not isinstance(scope["type"], str):
            raise ValueError(
                f"scope['type'] must be a string such as 'http', got {scope['type']!r}"
            )
        self.scope = scope
        self.input_queue: ApplicationQueue[Any] = ApplicationQueue()
        self.output_queue: ApplicationQueue[Any] = ApplicationQueue()
        self._task: ApplicationInstanceTask | None = None
        self._task_group: TaskGroup | None = None
        self._failure_raised = False

    # --- starting the application, and its outcome -----------------------------------------

    @property
    def future(self) -> ApplicationInstanceTask:
        """
        The running application's handle, starting the application if needed (as asgiref).

        It offers ``done()``, ``cancel()``, ``cancelled()``, ``exception()`` and
        ``result()``, and ``await comm.future`` waits for the application and re-raises
        what it raised.
        """
        return self._started()

    def _started(self) -> ApplicationInstanceTask:
        if self._task is not None:
            return self._task
        task = ApplicationInstanceTask()
        # An empty context: a fresh Context() is current while the task is created, and
        # both asyncio and trio give a new task a copy of the current context.
        empty = contextvars.Context()
        if self._task_group is not None:
            empty.run(self._task_group.start_soon, self._run, task)
        else:
            start_background_task(partial(self._run, task), empty)
        self._task = task
        return task

    async def _run(self, task: ApplicationInstanceTask) -> None:
        try:
            await task.run(
                partial(
                    self._call, self.scope, self.input_queue.get, self.output_queue.put
                )
            )
        finally:
            self.output_queue.end()

    def _raise_failure(self, task: ApplicationInstanceTask) -> None:
        failure = task.exception()
        if failure is not None:
            self._failure_raised = True
            raise failure

    def _raise_outcome(self, task: ApplicationInstanceTask) -> None:
        # asgiref's calls start with future.result() once the task is done: the
        # application's exception, or CancelledError if it was cancelled.
        self._raise_failure(task)
        if task.cancelled():
            raise ApplicationCancelled(
                "the application was cancelled (a timeout or stop() of this "
                "communicator); create a new ApplicationCommunicator to run it again"
            )

    async def _cancel_and_wait(self, task: ApplicationInstanceTask) -> None:
        task.cancel()
        await task.wait()

    # --- the test's side of the conversation --------------------------------------------------

    async def send_input(self, message: Any) -> None:
        """
        Send ``message`` to the application's ``receive``.

        :param message: the ASGI event to deliver
        :raises Exception: what the application raised, if it failed
        :raises ApplicationCancelled: if the application was cancelled
        """
        task = self._started()
        self._raise_outcome(task)
        await self.input_queue.put(message)

    async def receive_output(self, timeout: float = 1) -> Any:  # noqa: ASYNC109
        """
        Return the next message the application sent, waiting up to ``timeout`` seconds.

        :param timeout: seconds to wait
        :returns: the message
        :raises Exception: what the application raised, if it failed before sending
        :raises ApplicationCancelled: if the application was cancelled before sending
        :raises TimeoutError: if nothing arrived in time (the application is then
            cancelled), or the application finished without sending another message
        """
        task = self._started()
        self._raise_outcome(task)
        try:
            with anyio.fail_after(timeout):
                return await self.output_queue.get()
        except NoMoreMessages:
            self._raise_outcome(task)
            raise TimeoutError(
                "the application finished without sending another message"
            ) from None
        except TimeoutError:
            await self._cancel_and_wait(task)
            self._raise_failure(task)
            raise

    async def receive_nothing(
        self,
        timeout: float = 0.1,  # noqa: ASYNC109 - asgiref's signature
        interval: float = 0.01,
    ) -> bool:
        """
        Check that the application sends nothing within ``timeout`` seconds.

        Returns as soon as a message is waiting. The wait is event-driven; ``interval``
        (the polling period of asgiref's version) only matters when it exceeds
        ``timeout``: the wait then lasts ``interval``.

        :param timeout: seconds to wait; ``0`` just checks without waiting
        :param interval: see above
        :returns: ``True`` if no message is waiting, ``False`` otherwise (the message
            stays for :meth:`receive_output`)
        :raises Exception: what the application raised, if it failed
        :raises ApplicationCancelled: if the application was cancelled before the call
        """
        task = self._started()
        self._raise_outcome(task)
        if timeout > 0:
            with anyio.move_on_after(max(timeout, interval)):
                await self.output_queue.wait_not_empty()
        else:
            await anyio.lowlevel.checkpoint()
        if not self.output_queue.empty():
            return False
        self._raise_failure(task)
        return True

    async def wait(self, timeout: float = 1) -> None:  # noqa: ASYNC109
        """
        Wait up to ``timeout`` seconds for the application to finish.

        Returns normally if it returned or was cancelled (so ``comm.stop()`` followed by
        ``await comm.wait()`` cancels the application and waits until it has finished).

        :param timeout: seconds to wait
        :raises Exception: what the application raised
        :raises TimeoutError: if it was still running (it is then cancelled)
        """
        task = self._started()
        try:
            with anyio.fail_after(timeout):
                await task.wait()
        except TimeoutError:
            await self._cancel_and_wait(task)
            self._raise_failure(task)
            raise
        self._raise_failure(task)

    def stop(self, exceptions: bool = True) -> None:
        """
        Cancel the application if it is running; return at once, as asgiref's does.

        The application is cancelled at its next checkpoint; ``await comm.wait()``
        afterwards waits until it has finished.

        :param exceptions: whether to raise the outcome of an application that has
            already finished
        :raises Exception: what the application raised, if it already failed and
            ``exceptions`` is true
        :raises ApplicationCancelled: if the application had already been cancelled and
            has finished, and ``exceptions`` is true
        """
        task = self._task
        if task is None:
            return
        if not task.done():
            task.cancel()
        elif exceptions:
            self._raise_outcome(task)

    # --- structured form -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._task_group is not None:
            raise RuntimeError(
                "this ApplicationCommunicator's async with block is already open"
            )
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        task_group, self._task_group = self._task_group, None
        assert task_group is not None, "__aexit__ without __aenter__"
        task = self._task
        if task is not None:
            task.cancel()
        # The block's own exception is not handed to the task group (which would wrap
        # it in an ExceptionGroup); only a cancellation is, so that it is honoured.
        if isinstance(exc_val, anyio.get_cancelled_exc_class()):
            await task_group.__aexit__(exc_type, exc_val, exc_tb)
        else:
            await task_group.__aexit__(None, None, None)
        if task is not None:
            # Started before the block (plain form): wait for it all the same.
            await task.wait()
            if exc_val is None and not self._failure_raised:
                self._raise_failure(task)
